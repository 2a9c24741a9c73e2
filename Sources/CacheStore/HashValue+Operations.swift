// Hash operations (redis t_hash.c storage side): every change goes through these methods so the running memory
// estimate stays right and the storage stays dense (removal swaps the last entry into the hole, so positions only
// ever move from the end down); the command layer only parses, checks types and replies.
import OrderedCollections

extension HashValue {
    /// The number of fields.
    public var count: Int { storage.count }

    /// The value of `field`, or `nil`.
    public func value(forField field: CompactBytes) -> CompactBytes? { storage[field] }

    /// The field and value at `position` (`0..<count`).
    public func entry(at position: Int) -> (key: CompactBytes, value: CompactBytes) { storage.elements[position] }

    /// Sets `field` to `value`. Returns `true` if the field is new, `false` if an existing value was replaced.
    @discardableResult
    public func set(field: CompactBytes, value: CompactBytes) -> Bool {
        if let old = storage.updateValue(value, forKey: field) {
            memoryUsage += memberCost(value) - memberCost(old)
            return false
        }
        account(field: field, value: value, sign: 1)
        return true
    }

    /// Removes `field` in O(1), moving the last entry into its place. Returns whether it was present.
    @discardableResult
    public func remove(field: CompactBytes) -> Bool {
        guard let index = storage.index(forKey: field) else { return false }
        let last = storage.count - 1
        if index != last { storage.swapAt(index, last) }
        let (key, value) = storage.removeLast()
        account(field: key, value: value, sign: -1)
        return true
    }

    /// One HSCAN step: see ``CollectionSampling/scanStep(count:cursor:limit:wholeBelow:_:)``.
    public func scan(cursor: UInt64, count: Int, _ body: (CompactBytes, CompactBytes) -> Void) -> UInt64 {
        let elements = storage.elements
        return CollectionSampling.scanStep(count: elements.count, cursor: cursor, limit: count) { position in
            let (field, value) = elements[position]
            body(field, value)
        }
    }
}

extension CompactBytes {
    /// The decimal form of `value` (HINCRBY results), built without going through `String`.
    public static func decimal(_ value: Int) -> CompactBytes {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits and a sign
        return withUnsafeMutableBytes(of: &digits) { raw -> CompactBytes in
            var magnitude = value.magnitude
            var index = raw.count
            repeat {
                index -= 1
                raw[index] = UInt8(truncatingIfNeeded: magnitude % 10) &+ 48
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                index -= 1
                raw[index] = UInt8(ascii: "-")
            }
            return CompactBytes(UnsafeRawBufferPointer(rebasing: raw[index...]))
        }
    }
}
