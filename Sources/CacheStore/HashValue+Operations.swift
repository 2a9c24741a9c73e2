// Hash operations (redis t_hash.c storage side): every change goes through these methods so the running memory
// estimate stays right; the command layer only parses, checks types and replies.

extension HashValue {
    /// The number of fields.
    @inlinable public var count: Int { fields.count }

    /// Sets `field` to `value`. Returns `true` if the field is new, `false` if an existing value was replaced.
    @discardableResult
    public func set(field: CompactBytes, value: CompactBytes) -> Bool {
        if let old = fields.updateValue(value, forKey: field) {
            memoryUsage += memberCost(value) - memberCost(old)
            return false
        }
        account(field: field, value: value, sign: 1)
        return true
    }

    /// Removes `field`. Returns whether it was present.
    @discardableResult
    public func remove(field: CompactBytes) -> Bool {
        guard let index = fields.index(forKey: field) else { return false }
        let (key, value) = fields.remove(at: index)
        account(field: key, value: value, sign: -1)
        return true
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
