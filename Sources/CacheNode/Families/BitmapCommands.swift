// The bitmap family (redis bitops.c): strings read and written as arrays of bits, bit 0 being the most significant
// bit of the first byte. SETBIT and BITFIELD grow the string with zero bytes as needed and change a heap string in
// place when the key holds its only reference (as redis changes an unshared sds), so one bit costs O(1) however long
// the bitmap is; BITCOUNT, BITPOS and BITOP read in place.
import CacheStore
import RESPServer

extension CommandTable {
    static let bitmapCommands: [CommandSpec] = [
        // SETBIT key offset value
        CommandSpec("setbit", arity: 4, flags: [.write, .denyOOM], keys: .first, group: .bitmap,
                    summary: "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.",
                    since: "2.2.0") { context, reply throws(CommandError) in
            let offset = try BitmapFamily.bitOffset(context, 2)
            guard let on = context.arguments.integer(3), on == 0 || on == 1 else {
                throw CommandError("bit is not an integer or out of range")
            }
            let (old, dirty) = try BitmapFamily.modifyBits(context, bitLength: offset + 1) { bits -> (UInt8, Bool) in
                let old = BitmapFamily.bit(bits, offset)
                if Int(old) != on { BitmapFamily.setBit(bits, offset, on == 1) }
                return (old, Int(old) != on)
            }
            if dirty { context.notify(.string, "setbit", argument: 1) } else { context.suppressPropagation() }
            reply.integer(Int(old))
        },
        // GETBIT key offset
        CommandSpec("getbit", arity: 3, flags: [.readonly, .fast], keys: .first, group: .bitmap,
                    summary: "Returns a bit value by offset.", since: "2.2.0") { context, reply throws(CommandError) in
            let offset = try BitmapFamily.bitOffset(context, 2)
            let bit = try BitmapFamily.read(context) { bits in offset >> 3 < bits.count ? BitmapFamily.bit(bits, offset) : 0 } ?? 0
            reply.integer(Int(bit))
        },
        // BITCOUNT key [start end [BYTE | BIT]]
        CommandSpec("bitcount", arity: -2, flags: [.readonly], keys: .first, group: .bitmap,
                    summary: "Counts the number of set bits (population counting) in a string.", since: "2.6.0") {
            context, reply throws(CommandError) in
            reply.integer(try BitmapFamily.count(context))
        },
        // BITPOS key bit [start [end [BYTE | BIT]]]
        CommandSpec("bitpos", arity: -3, flags: [.readonly], keys: .first, group: .bitmap,
                    summary: "Finds the first set (1) or clear (0) bit in a string.", since: "2.8.7") {
            context, reply throws(CommandError) in
            reply.integer(try BitmapFamily.position(context))
        },
        // BITOP <AND | OR | XOR | NOT> destkey key [key ...]
        CommandSpec("bitop", arity: -4, flags: [.write, .denyOOM], keys: .range(first: 2, last: -1, step: 1), group: .bitmap,
                    summary: "Performs bitwise operations on multiple strings, and stores the result.", since: "2.6.0") {
            context, reply throws(CommandError) in
            reply.integer(try BitmapFamily.operation(context))
        },
        // BITFIELD key [GET encoding offset | [OVERFLOW <WRAP | SAT | FAIL>] <SET encoding offset value |
        //   INCRBY encoding offset increment> ...]
        CommandSpec("bitfield", arity: -2, flags: [.write, .denyOOM], keys: .first, group: .bitmap,
                    summary: "Performs arbitrary bitfield integer operations on strings.", since: "3.2.0") {
            context, reply throws(CommandError) in
            try BitmapFamily.bitfield(&context, &reply, readOnly: false)
        },
        // BITFIELD_RO key [GET encoding offset ...]
        CommandSpec("bitfield_ro", arity: -2, flags: [.readonly, .fast], keys: .first, group: .bitmap,
                    summary: "Performs arbitrary read-only bitfield integer operations on strings.", since: "6.0.0") {
            context, reply throws(CommandError) in
            try BitmapFamily.bitfield(&context, &reply, readOnly: true)
        },
    ]
}

/// Shared implementations of the bitmap commands.
enum BitmapFamily {
    static let offsetError = CommandError("bit offset is not an integer or out of range")

    // MARK: bits

    /// Bit `offset` of `bits` (0 or 1); the byte must exist.
    @inline(__always)
    static func bit(_ bits: UnsafeRawBufferPointer, _ offset: Int) -> UInt8 {
        (bits[offset >> 3] >> (7 - UInt8(offset & 7))) & 1
    }

    @inline(__always)
    static func bit(_ bits: UnsafeMutableRawBufferPointer, _ offset: Int) -> UInt8 {
        bit(UnsafeRawBufferPointer(bits), offset)
    }

    @inline(__always)
    static func setBit(_ bits: UnsafeMutableRawBufferPointer, _ offset: Int, _ on: Bool) {
        let mask = UInt8(1) << (7 - UInt8(offset & 7))
        if on { bits[offset >> 3] |= mask } else { bits[offset >> 3] &= ~mask }
    }

    /// A bit offset argument (redis getBitOffsetFromArgument): a non-negative integer below
    /// `proto-max-bulk-len` × 8; with `typeBits`, `#N` means N × typeBits (BITFIELD).
    static func bitOffset(_ context: CommandContext, _ index: Int, typeBits: Int? = nil) throws(CommandError) -> Int {
        let arguments = context.arguments
        var offset: Int?
        if let typeBits, arguments.withBytes(index, { $0.first == UInt8(ascii: "#") }) {
            offset = arguments.withBytes(index) { RESPNumberParsing.parseInteger(UnsafeRawBufferPointer(rebasing: $0.dropFirst())) }
                .flatMap { $0.multipliedReportingOverflow(by: typeBits).overflow ? nil : $0 * typeBits }
        } else {
            offset = arguments.integer(index)
        }
        guard let offset, offset >= 0, offset >> 3 < context.node.configuration.protoMaxBulkLength else { throw offsetError }
        return offset
    }

    // MARK: reading and writing strings as bits

    /// Calls `body` with the bytes of the string at argument 1; `nil` if the key is missing, WRONGTYPE if it holds
    /// another type.
    static func read<Result>(_ context: CommandContext, _ body: (UnsafeRawBufferPointer) throws(CommandError) -> Result)
        throws(CommandError) -> Result?
    {
        guard let value = context.db.value(context.key(1)) else { return nil }
        guard value.type == .string else { throw .wrongType }
        var result: Swift.Result<Result, CommandError>?
        _ = value.withStringBytes { bytes in
            do throws(CommandError) { result = .success(try body(bytes)) } catch { result = .failure(error) }
        }
        return try result!.get()
    }

    /// Runs `body` on the string at argument 1 grown with zero bytes to hold `bitLength` bits (created if missing),
    /// in place when the key holds the string's only heap block. `body` returns its result and whether it changed a
    /// bit. Returns the result and whether the key changed at all (created, grown or a bit changed), as redis's
    /// `dirty` counts it.
    static func modifyBits<Result>(
        _ context: CommandContext, bitLength: Int, _ body: (UnsafeMutableRawBufferPointer) -> (Result, Bool)
    ) throws(CommandError) -> (Result, dirty: Bool) {
        let length = (bitLength + 7) >> 3
        return try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> (Result, dirty: Bool) in
            if let current = value, current.type != .string { throw .wrongType }
            let outcome = withGrownBytes(&value, length: length, body)
            if outcome.dirty { modified = true }
            return outcome
        }
    }

    /// Runs `body` on the bytes of the string in `value` (which must be a string or `nil`) grown with zero bytes to
    /// at least `length`: in place when `value` holds the only reference to a heap block with room, else in a new
    /// block. `body` returns its result and whether it changed a byte; the second result says whether the value
    /// changed at all (created, grown or changed). Also HyperLogLog's way to update a dense sketch in place.
    static func withGrownBytes<Result>(
        _ value: inout StoredValue?, length: Int, _ body: (UnsafeMutableRawBufferPointer) -> (Result, Bool)
    ) -> (Result, dirty: Bool) {
        if case .string(var block)? = value {
            // Drop the value's own reference so the block's uniqueness can be seen.
            value = nil
            if isKnownUniquelyReferenced(&block) {
                let inPlace = block.withMutableBytes { (storage, count) -> (Result, dirty: Bool)? in
                    guard storage.count >= length else { return nil }
                    var grew = false
                    if count < length {
                        (storage.baseAddress! + count).initializeMemory(as: UInt8.self, repeating: 0, count: length - count)
                        count = length
                        grew = true
                    }
                    let (result, changed) = body(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
                    return (result, grew || changed)
                }
                if let inPlace {
                    value = .string(block)
                    return inPlace
                }
            }
            value = .string(block)
        }
        // A new block: the key is missing, holds a short string, shares its block, or needs more room (which grows
        // as sds does: double up to 1 MiB, then 1 MiB more; a copy that does not grow keeps the size).
        let existed = value != nil
        let oldLength = value?.stringLength ?? 0
        let newLength = max(oldLength, length)
        let capacity = newLength == oldLength ? newLength
            : newLength < 1024 * 1024 ? newLength * 2 : newLength + 1024 * 1024
        let block = value.flatMap { $0.withStringBytes { HeapBytes.make(copying: $0, capacity: capacity) } }
            ?? HeapBytes.make(copying: UnsafeRawBufferPointer(start: nil, count: 0), capacity: capacity)
        let (result, changed) = block.withMutableBytes { (storage, count) -> (Result, Bool) in
            if count < newLength {
                (storage.baseAddress! + count).initializeMemory(as: UInt8.self, repeating: 0, count: newLength - count)
                count = newLength
            }
            return body(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
        }
        value = newLength <= StoredValue.shortStringCapacity ? block.withBytes { .string(copying: $0) } : .string(block)
        return (result, !existed || newLength > oldLength || changed)
    }

    // MARK: BITCOUNT / BITPOS

    /// BITCOUNT (redis bitcountCommand).
    static func count(_ context: CommandContext) throws(CommandError) -> Int {
        let arguments = context.arguments
        guard arguments.count == 2 || arguments.count == 4 || arguments.count == 5 else { throw .syntax }
        var start = 0, end = 0, inBits = false
        if arguments.count >= 4 {
            start = try context.integer(2)
            end = try context.integer(3)
            if arguments.count == 5 {
                if arguments.matches(4, "bit") { inBits = true } else if !arguments.matches(4, "byte") { throw .syntax }
            }
        }
        let hasRange = arguments.count >= 4
        return try read(context) { bytes -> Int in
            if hasRange && start < 0 && end < 0 && start > end { return 0 }
            let total = inBits ? bytes.count * 8 : bytes.count
            guard let range = clamped(hasRange ? start : 0, hasRange ? end : total - 1, total: total) else { return 0 }
            if !inBits { return popcount(UnsafeRawBufferPointer(rebasing: bytes[range])) }
            return countBits(bytes, from: range.lowerBound, through: range.upperBound)
        } ?? 0
    }

    /// redis's rule for a `start end` range over `total` units: negative indices count from the end, then both are
    /// clamped into the string; `nil` when nothing is left.
    private static func clamped(_ start: Int, _ end: Int, total: Int) -> ClosedRange<Int>? {
        let first = max(start < 0 ? start + total : start, 0)
        let last = min(max(end < 0 ? end + total : end, 0), total - 1)
        return first <= last ? first...last : nil
    }

    /// Set bits in whole bytes.
    static func popcount(_ bytes: UnsafeRawBufferPointer) -> Int {
        var total = 0
        var index = 0
        let count = bytes.count
        while index + 8 <= count {
            total += bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self).nonzeroBitCount
            index += 8
        }
        while index < count {
            total += bytes[index].nonzeroBitCount
            index += 1
        }
        return total
    }

    /// Set bits from bit `first` through bit `last`.
    private static func countBits(_ bytes: UnsafeRawBufferPointer, from first: Int, through last: Int) -> Int {
        let firstByte = first >> 3, lastByte = last >> 3
        let headMask = UInt8(0xFF) >> UInt8(first & 7)
        let tailMask = UInt8(0xFF) << UInt8(7 - (last & 7))
        if firstByte == lastByte { return (bytes[firstByte] & headMask & tailMask).nonzeroBitCount }
        var total = (bytes[firstByte] & headMask).nonzeroBitCount + (bytes[lastByte] & tailMask).nonzeroBitCount
        if lastByte - firstByte > 1 { total += popcount(UnsafeRawBufferPointer(rebasing: bytes[(firstByte + 1)..<lastByte])) }
        return total
    }

    /// BITPOS (redis bitposCommand): the first bit equal to `bit` in the range; -1 if none. Without an explicit end,
    /// the string is taken as followed by zero bits, so a search for 0 in a string of ones finds the bit after it.
    static func position(_ context: CommandContext) throws(CommandError) -> Int {
        let arguments = context.arguments
        guard let wanted = arguments.integer(2) else { throw .notInteger }
        guard wanted == 0 || wanted == 1 else { throw CommandError("The bit argument must be 1 or 0.") }
        guard arguments.count <= 6 else { throw .syntax }
        var start = 0, end = 0, inBits = false
        let hasStart = arguments.count >= 4, endGiven = arguments.count >= 5
        if hasStart { start = try context.integer(3) }
        if arguments.count == 6 {
            if arguments.matches(5, "bit") { inBits = true } else if !arguments.matches(5, "byte") { throw .syntax }
        }
        if endGiven { end = try context.integer(4) }
        return try read(context) { bytes -> Int in
            let total = inBits ? bytes.count * 8 : bytes.count
            guard let range = clamped(hasStart ? start : 0, endGiven ? end : total - 1, total: total) else { return -1 }
            let firstBit = inBits ? range.lowerBound : range.lowerBound * 8
            let lastBit = inBits ? range.upperBound : range.upperBound * 8 + 7
            if let found = findBit(bytes, UInt8(wanted), from: firstBit, through: lastBit) { return found }
            return wanted == 0 && !endGiven ? lastBit + 1 : -1
        } ?? (wanted == 1 ? -1 : 0)
    }

    /// The first bit equal to `wanted` from bit `first` through bit `last`, skipping whole bytes that cannot hold it.
    private static func findBit(_ bytes: UnsafeRawBufferPointer, _ wanted: UInt8, from first: Int, through last: Int) -> Int? {
        let skip: UInt8 = wanted == 1 ? 0x00 : 0xFF
        var offset = first
        while offset <= last {
            if offset & 7 == 0 && offset + 7 <= last && bytes[offset >> 3] == skip {
                offset += 8
                continue
            }
            if bit(bytes, offset) == wanted { return offset }
            offset += 1
        }
        return nil
    }

    // MARK: BITOP

    /// BITOP (redis bitopCommand): the result is as long as the longest source (missing keys are empty strings,
    /// shorter ones padded with zeros); an empty result deletes the destination. Returns the result's length.
    static func operation(_ context: CommandContext) throws(CommandError) -> Int {
        let arguments = context.arguments
        enum Operator { case and, or, xor, not }
        let op: Operator
        if arguments.matches(1, "and") { op = .and }
        else if arguments.matches(1, "or") { op = .or }
        else if arguments.matches(1, "xor") { op = .xor }
        else if arguments.matches(1, "not") { op = .not }
        else { throw .syntax }
        if op == .not && arguments.count != 4 { throw CommandError("BITOP NOT must be called with a single source key.") }
        let db = context.db
        var sources: [[UInt8]] = []
        sources.reserveCapacity(arguments.count - 3)
        for index in 3..<arguments.count {
            guard let value = db.value(context.key(index)) else {
                sources.append([])
                continue
            }
            guard let bytes = value.withStringBytes({ Array($0) }) else { throw .wrongType }
            sources.append(bytes)
        }
        let length = sources.map(\.count).max() ?? 0
        var result = [UInt8](repeating: 0, count: length)
        for position in 0..<length {
            var output: UInt8
            switch op {
            case .not:
                output = ~sources[0][position]
            case .and:
                output = 0xFF
                for source in sources { output &= position < source.count ? source[position] : 0 }
            case .or:
                output = 0
                for source in sources where position < source.count { output |= source[position] }
            case .xor:
                output = 0
                for source in sources where position < source.count { output ^= source[position] }
            }
            result[position] = output
        }
        let destination = context.key(2)
        if length > 0 {
            result.withUnsafeBytes { db.set(destination, .string(copying: $0)) }
            context.notify(.string, "set", argument: 2)
        } else if db.delete(destination) {
            context.notify(.generic, "del", argument: 2)
        }
        return length
    }

    // MARK: BITFIELD

    private enum Overflow { case wrap, saturate, fail }

    private struct FieldOperation {
        enum Kind { case get, set, increment }
        var kind: Kind
        var signed: Bool
        var bits: Int
        var offset: Int
        var value: Int64
        var overflow: Overflow
    }

    /// BITFIELD and BITFIELD_RO (redis bitfieldGeneric): every operation is parsed before any runs, so a bad one
    /// changes nothing; the reply has one entry per GET, SET (the old value) and INCRBY (the new value, or nil when
    /// OVERFLOW FAIL refused it).
    static func bitfield(_ context: inout CommandContext, _ reply: inout ReplyWriter, readOnly: Bool) throws(CommandError) {
        let arguments = context.arguments
        var operations: [FieldOperation] = []
        var overflow = Overflow.wrap
        var highestWrittenBit = -1
        var index = 2
        while index < arguments.count {
            let remaining = arguments.count - index - 1
            let kind: FieldOperation.Kind
            if arguments.matches(index, "get") && remaining >= 2 { kind = .get }
            else if arguments.matches(index, "set") && remaining >= 3 { kind = .set }
            else if arguments.matches(index, "incrby") && remaining >= 3 { kind = .increment }
            else if arguments.matches(index, "overflow") && remaining >= 1 {
                if arguments.matches(index + 1, "wrap") { overflow = .wrap }
                else if arguments.matches(index + 1, "sat") { overflow = .saturate }
                else if arguments.matches(index + 1, "fail") { overflow = .fail }
                else { throw CommandError("Invalid OVERFLOW type specified") }
                index += 2
                continue
            } else {
                throw .syntax
            }
            let (signed, bits) = try fieldType(arguments, index + 1)
            let offset = try bitOffset(context, index + 2, typeBits: bits)
            var value: Int64 = 0
            if kind != .get {
                highestWrittenBit = max(highestWrittenBit, offset + bits - 1)
                guard let parsed = arguments.integer(index + 3) else { throw .notInteger }
                value = Int64(parsed)
            }
            operations.append(FieldOperation(kind: kind, signed: signed, bits: bits, offset: offset, value: value, overflow: overflow))
            index += kind == .get ? 3 : 4
        }
        if highestWrittenBit < 0 {
            // Only GETs: read in place (a missing key reads as zeros).
            let results = try read(context) { bytes in operations.map { getField(bytes, $0) } } ?? operations.map { _ in 0 }
            reply.arrayHeader(results.count)
            for result in results { reply.integer(Int(result)) }
            return
        }
        if readOnly { throw CommandError("BITFIELD_RO only supports the GET subcommand") }
        let (results, dirty) = try modifyBits(context, bitLength: highestWrittenBit + 1) { bits -> ([Int64?], Bool) in
            var results: [Int64?] = []
            var changed = false
            for operation in operations {
                if operation.kind == .get {
                    results.append(getField(UnsafeRawBufferPointer(bits), operation))
                    continue
                }
                let (result, newValue) = apply(operation, to: getField(UnsafeRawBufferPointer(bits), operation))
                results.append(result)
                if let newValue {
                    let old = getField(UnsafeRawBufferPointer(bits), operation)
                    setField(bits, operation, newValue)
                    if old != newValue { changed = true }
                }
            }
            return (results, changed)
        }
        reply.arrayHeader(results.count)
        for result in results {
            if let result { reply.integer(Int(result)) } else { reply.null() }
        }
        if dirty { context.notify(.string, "setbit", argument: 1) } else { context.suppressPropagation() }
    }

    /// `i1`…`i64` or `u1`…`u63`.
    private static func fieldType(_ arguments: CommandArguments, _ index: Int) throws(CommandError) -> (signed: Bool, bits: Int) {
        let text = arguments.string(index)
        let error = CommandError("Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
        guard let marker = text.first, marker == "i" || marker == "u", let bits = Int(text.dropFirst()), bits >= 1 else {
            throw error
        }
        let signed = marker == "i"
        guard bits <= (signed ? 64 : 63) else { throw error }
        return (signed, bits)
    }

    /// The field's value (sign-extended for signed fields); bits past the string's end read as zeros.
    private static func getField(_ bytes: UnsafeRawBufferPointer, _ operation: FieldOperation) -> Int64 {
        var raw: UInt64 = 0
        for step in 0..<operation.bits {
            let offset = operation.offset + step
            let bit: UInt64 = offset >> 3 < bytes.count ? UInt64(BitmapFamily.bit(bytes, offset)) : 0
            raw = raw << 1 | bit
        }
        if operation.signed && operation.bits < 64 && raw & (1 << UInt64(operation.bits - 1)) != 0 {
            raw |= ~0 << UInt64(operation.bits)
        }
        return Int64(bitPattern: raw)
    }

    private static func setField(_ bytes: UnsafeMutableRawBufferPointer, _ operation: FieldOperation, _ value: Int64) {
        let raw = UInt64(bitPattern: value)
        for step in 0..<operation.bits {
            let on = raw & (1 << UInt64(operation.bits - 1 - step)) != 0
            setBit(bytes, operation.offset + step, on)
        }
    }

    /// What SET or INCRBY replies and stores, given the field's current value (redis's overflow rules): SET replies
    /// the old value, INCRBY the new one; `nil` for both when OVERFLOW FAIL refused the operation.
    private static func apply(_ operation: FieldOperation, to old: Int64) -> (reply: Int64?, stored: Int64?) {
        let increment = operation.kind == .increment
        let stored: Int64
        if operation.signed {
            let maximum: Int64 = operation.bits == 64 ? .max : (1 << Int64(operation.bits - 1)) - 1
            let minimum = -maximum - 1
            let (sum, wide) = increment ? old.addingReportingOverflow(operation.value) : (operation.value, false)
            let tooHigh = wide ? operation.value > 0 : sum > maximum
            let tooLow = wide ? operation.value < 0 : sum < minimum
            if tooHigh || tooLow {
                switch operation.overflow {
                case .fail: return (nil, nil)
                case .saturate: stored = tooHigh ? maximum : minimum
                case .wrap: stored = wrapSigned(UInt64(bitPattern: sum), bits: operation.bits)
                }
            } else {
                stored = sum
            }
        } else {
            let maximum = (UInt64(1) << UInt64(operation.bits)) - 1
            let current = UInt64(bitPattern: old)
            // SET takes a negative value as the huge unsigned number it is in two's complement, as redis does.
            let target = increment ? current &+ UInt64(bitPattern: operation.value) : UInt64(bitPattern: operation.value)
            let tooHigh = increment
                ? operation.value > 0 && UInt64(operation.value) > maximum - current
                : target > maximum
            let tooLow = increment && operation.value < 0 && operation.value.magnitude > current
            if tooHigh || tooLow {
                switch operation.overflow {
                case .fail: return (nil, nil)
                case .saturate: stored = Int64(bitPattern: tooHigh ? maximum : 0)
                case .wrap: stored = Int64(bitPattern: target & maximum)
                }
            } else {
                stored = Int64(bitPattern: target)
            }
        }
        return (increment ? stored : old, stored)
    }

    /// `value`'s low `bits` bits as a signed field value (the sign bit extended).
    private static func wrapSigned(_ value: UInt64, bits: Int) -> Int64 {
        guard bits < 64 else { return Int64(bitPattern: value) }
        let mask = ~UInt64(0) << UInt64(bits)
        let signed = value & (UInt64(1) << UInt64(bits - 1)) != 0 ? value | mask : value & ~mask
        return Int64(bitPattern: signed)
    }
}
