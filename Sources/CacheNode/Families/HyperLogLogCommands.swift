// The HyperLogLog family (redis hyperloglog.c): PFADD PFCOUNT PFMERGE and the PFDEBUG/PFSELFTEST tools, on redis's
// own string representation, so a sketch read with GET or DUMP from redis and written here with SET or RESTORE (or
// the reverse) keeps working. The value is a string: a 16-byte header ("HYLL", the encoding, three zero bytes, the
// cached cardinality in 8 little-endian bytes whose top bit marks it stale) and then either 16384 registers of 6
// bits (dense, 12288 bytes) or a run-length encoding of them (sparse: ZERO, XZERO and VAL opcodes), which is
// promoted to dense once it would pass `hll-sparse-max-bytes` or hold a register over 32. Elements are hashed with
// MurmurHash64A (seed 0xadc83b19); the estimate is redis's (Ertl's improved estimator over the register histogram).
import CacheStore
import Foundation
import RESPServer

extension CommandTable {
    static let hyperLogLogCommands: [CommandSpec] = [
        // PFADD key [element [element ...]]
        CommandSpec("pfadd", arity: -2, flags: [.write, .denyOOM, .fast], keys: .first, group: .hyperloglog,
                    summary: "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.", since: "2.8.9") {
            context, reply throws(CommandError) in
            reply.integer(try HyperLogLogFamily.add(&context) ? 1 : 0)
        },
        // PFCOUNT key [key ...]
        CommandSpec("pfcount", arity: -2, flags: [.readonly, .mayReplicate], keys: .range(first: 1, last: -1, step: 1), group: .hyperloglog,
                    summary: "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).",
                    since: "2.8.9") { context, reply throws(CommandError) in
            reply.integer(Int(try HyperLogLogFamily.count(context)))
        },
        // PFMERGE destkey [sourcekey [sourcekey ...]]
        CommandSpec("pfmerge", arity: -2, flags: [.write, .denyOOM], keys: .range(first: 1, last: -1, step: 1), group: .hyperloglog,
                    summary: "Merges one or more HyperLogLog values into a single key.", since: "2.8.9") {
            context, reply throws(CommandError) in
            try HyperLogLogFamily.merge(context)
            reply.ok()
        },
        // PFDEBUG <GETREG | DECODE | ENCODING | TODENSE> key
        CommandSpec("pfdebug", arity: 3, flags: [.write, .denyOOM, .admin], keys: .custom({ $0.count > 2 ? [2] : [] }),
                    group: .hyperloglog, summary: "Internal commands for debugging HyperLogLog values.", since: "2.8.9") {
            context, reply throws(CommandError) in
            try HyperLogLogFamily.debug(&context, &reply)
        },
        // PFSELFTEST
        CommandSpec("pfselftest", arity: 1, flags: [.admin], group: .hyperloglog,
                    summary: "An internal command for testing HyperLogLog values.", since: "2.8.9") { context, reply throws(CommandError) in
            try HyperLogLog.selfTest(sparseMaxBytes: HyperLogLogFamily.sparseMaxBytes(context))
            reply.ok()
        },
    ]
}

/// The HyperLogLog representation and algorithms, on the bytes of the string value.
enum HyperLogLog {
    static let precision = 14
    static let registerCount = 1 << precision
    /// Hash bits left once the register index is taken: runs of zeros count up to `q + 1`.
    static let q = 64 - precision
    static let registerBits = 6
    static let registerMax: UInt8 = 63
    static let headerSize = 16
    static let denseSize = headerSize + (registerCount * registerBits + 7) / 8
    static let denseEncoding: UInt8 = 0
    static let sparseEncoding: UInt8 = 1
    /// Sparse opcodes' limits.
    static let sparseValueMax: UInt8 = 32
    static let sparseValueMaxRun = 4
    static let sparseZeroMaxRun = 64
    static let sparseXZeroMaxRun = 16384

    static let invalid = CommandError(code: "INVALIDOBJ", "Corrupted HLL object detected")
    static let notHLL = CommandError(code: "WRONGTYPE", "Key is not a valid HyperLogLog string value.")

    // MARK: hashing

    /// MurmurHash64A as redis has it (little-endian reads).
    static func murmurHash64A(_ key: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let m: UInt64 = 0xc6a4_a793_5bd1_e995
        let r: UInt64 = 47
        let length = key.count
        var h = seed ^ (UInt64(length) &* m)
        var offset = 0
        while offset + 8 <= length {
            var k = UInt64(littleEndian: key.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            k = k &* m
            k ^= k >> r
            k = k &* m
            h ^= k
            h = h &* m
            offset += 8
        }
        let remaining = length & 7
        if remaining > 0 {
            for index in stride(from: remaining - 1, through: 0, by: -1) {
                h ^= UInt64(key[offset + index]) << (8 * UInt64(index))
            }
            h = h &* m
        }
        h ^= h >> r
        h = h &* m
        h ^= h >> r
        return h
    }

    /// The register an element selects and the length of its run of zeros plus one (redis hllPatLen).
    static func pattern(_ element: UnsafeRawBufferPointer) -> (index: Int, count: UInt8) {
        var hash = murmurHash64A(element, seed: 0xadc8_3b19)
        let index = Int(hash & UInt64(registerCount - 1))
        hash >>= UInt64(precision)
        hash |= 1 << UInt64(q)
        return (index, UInt8(hash.trailingZeroBitCount + 1))
    }

    // MARK: the header

    /// An empty sketch: sparse, every register zero (one XZERO run of 16384).
    static func empty() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: headerSize)
        bytes[0] = UInt8(ascii: "H"); bytes[1] = UInt8(ascii: "Y"); bytes[2] = UInt8(ascii: "L"); bytes[3] = UInt8(ascii: "L")
        bytes[4] = sparseEncoding
        var remaining = registerCount
        while remaining > 0 {
            let run = min(remaining, sparseXZeroMaxRun)
            appendXZero(&bytes, run)
            remaining -= run
        }
        return bytes
    }

    /// Whether `bytes` is a HyperLogLog redis would accept (isHLLObjectOrReply): the magic, a known encoding, the
    /// dense size for a dense one.
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= headerSize, bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "Y"),
              bytes[2] == UInt8(ascii: "L"), bytes[3] == UInt8(ascii: "L"), bytes[4] <= sparseEncoding
        else { return false }
        return bytes[4] != denseEncoding || bytes.count == denseSize
    }

    /// The cached cardinality, if it is not stale.
    static func cachedCardinality(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard bytes[15] & 0x80 == 0 else { return nil }
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[8 + $1]) << (8 * UInt64($1)) }
    }

    static func storeCardinality(_ bytes: UnsafeMutableRawBufferPointer, _ cardinality: UInt64) {
        for index in 0..<8 { bytes[8 + index] = UInt8(truncatingIfNeeded: cardinality >> (8 * UInt64(index))) }
    }

    static func invalidateCache(_ bytes: UnsafeMutableRawBufferPointer) {
        bytes[15] |= 0x80
    }

    // MARK: dense registers

    /// Register `index` of a dense sketch (`bytes` from the header on).
    @inline(__always)
    static func denseRegister(_ bytes: UnsafeRawBufferPointer, _ index: Int) -> UInt8 {
        let byte = headerSize + index * registerBits / 8
        let shift = UInt8(index * registerBits & 7)
        let low = UInt16(bytes[byte])
        let high: UInt16 = byte + 1 < bytes.count ? UInt16(bytes[byte + 1]) : 0
        return UInt8(truncatingIfNeeded: (low >> UInt16(shift) | high << UInt16(8 - shift))) & registerMax
    }

    @inline(__always)
    static func setDenseRegister(_ bytes: UnsafeMutableRawBufferPointer, _ index: Int, _ value: UInt8) {
        let byte = headerSize + index * registerBits / 8
        let shift = UInt8(index * registerBits & 7)
        let value16 = UInt16(value)
        bytes[byte] = bytes[byte] & ~UInt8(truncatingIfNeeded: UInt16(registerMax) << UInt16(shift))
            | UInt8(truncatingIfNeeded: value16 << UInt16(shift))
        if byte + 1 < bytes.count {
            bytes[byte + 1] = bytes[byte + 1] & ~UInt8(truncatingIfNeeded: UInt16(registerMax) >> UInt16(8 - shift))
                | UInt8(truncatingIfNeeded: value16 >> UInt16(8 - shift))
        }
    }

    /// Raises register `index` of a dense sketch to `count`; whether it changed.
    static func denseSet(_ bytes: UnsafeMutableRawBufferPointer, _ index: Int, _ count: UInt8) -> Bool {
        guard count > denseRegister(UnsafeRawBufferPointer(bytes), index) else { return false }
        setDenseRegister(bytes, index, count)
        return true
    }

    // MARK: sparse opcodes

    private static func isZero(_ op: UInt8) -> Bool { op & 0xC0 == 0 }
    private static func isXZero(_ op: UInt8) -> Bool { op & 0xC0 == 0x40 }
    private static func zeroRun(_ op: UInt8) -> Int { Int(op & 0x3F) + 1 }
    private static func xzeroRun(_ op: UInt8, _ next: UInt8) -> Int { (Int(op & 0x3F) << 8 | Int(next)) + 1 }
    private static func valueOf(_ op: UInt8) -> UInt8 { (op >> 2 & 0x1F) + 1 }
    private static func valueRun(_ op: UInt8) -> Int { Int(op & 0x3) + 1 }
    private static func valueOp(_ value: UInt8, _ run: Int) -> UInt8 { (value - 1) << 2 | UInt8(run - 1) | 0x80 }
    private static func zeroOp(_ run: Int) -> UInt8 { UInt8(run - 1) }

    private static func appendXZero(_ bytes: inout [UInt8], _ run: Int) {
        bytes.append(UInt8((run - 1) >> 8) | 0x40)
        bytes.append(UInt8((run - 1) & 0xFF))
    }

    /// A run of `run` zero registers (none when 0): ZERO up to 64, XZERO beyond.
    private static func appendZeroRun(_ bytes: inout [UInt8], _ run: Int) {
        if run > sparseZeroMaxRun {
            appendXZero(&bytes, run)
        } else if run > 0 {
            bytes.append(zeroOp(run))
        }
    }

    /// Calls `body(firstRegister, run, value)` for each run of a sparse sketch; `false` if the runs do not cover
    /// exactly 16384 registers (a corrupted sketch).
    static func forEachSparseRun(_ bytes: UnsafeRawBufferPointer, _ body: (Int, Int, UInt8) -> Void) -> Bool {
        var position = headerSize
        var index = 0
        while position < bytes.count {
            let op = bytes[position]
            let run: Int, value: UInt8
            if isZero(op) {
                (run, value) = (zeroRun(op), 0)
                position += 1
            } else if isXZero(op) {
                guard position + 1 < bytes.count else { return false }
                (run, value) = (xzeroRun(op, bytes[position + 1]), 0)
                position += 2
            } else {
                (run, value) = (valueRun(op), valueOf(op))
                position += 1
            }
            guard index + run <= registerCount else { return false }
            body(index, run, value)
            index += run
        }
        return index == registerCount
    }

    /// The dense form of a sparse sketch (the header, and so the cached cardinality, kept); `nil` if corrupted.
    static func toDense(_ bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        var dense = [UInt8](repeating: 0, count: denseSize)
        for index in 0..<headerSize { dense[index] = bytes[index] }
        dense[4] = denseEncoding
        let valid = dense.withUnsafeMutableBytes { target in
            forEachSparseRun(bytes) { first, run, value in
                guard value > 0 else { return }
                for index in first..<(first + run) { setDenseRegister(target, index, value) }
            }
        }
        return valid ? dense : nil
    }

    /// Raises register `index` to `count` in a sketch of either encoding (redis hllSparseSet / hllDenseSet),
    /// promoting a sparse sketch to dense when the value does not fit a VAL opcode or the encoding would pass
    /// `sparseMaxBytes`. Returns whether it changed; throws on a corrupted sketch.
    static func set(_ bytes: inout [UInt8], _ index: Int, _ count: UInt8, sparseMaxBytes: Int) throws(CommandError) -> Bool {
        if bytes[4] == denseEncoding {
            return bytes.withUnsafeMutableBytes { denseSet($0, index, count) }
        }
        if count > sparseValueMax { return try promote(&bytes, index, count) }
        // Find the opcode covering `index`.
        var position = headerSize
        var first = 0
        var previous: Int?
        var span = 0
        while position < bytes.count {
            let op = bytes[position]
            let length: Int
            if isZero(op) {
                span = zeroRun(op)
                length = 1
            } else if isXZero(op) {
                guard position + 1 < bytes.count else { throw invalid }
                span = xzeroRun(op, bytes[position + 1])
                length = 2
            } else {
                span = valueRun(op)
                length = 1
            }
            if index <= first + span - 1 { break }
            previous = position
            position += length
            first += span
        }
        guard span > 0, position < bytes.count else { throw invalid }
        let op = bytes[position]
        let zero = isZero(op), xzero = isXZero(op)
        let run = zero ? zeroRun(op) : xzero ? xzeroRun(op, bytes[position + 1]) : valueRun(op)
        updated: do {
            if !zero && !xzero {
                if valueOf(op) >= count { return false }
                if run == 1 {
                    bytes[position] = valueOp(count, 1)
                    break updated
                }
            }
            if zero && run == 1 {
                bytes[position] = valueOp(count, 1)
                break updated
            }
            // Split the run into up to three opcodes: before, the register, after.
            var sequence: [UInt8] = []
            let last = first + span - 1
            if zero || xzero {
                appendZeroRun(&sequence, index - first)
                sequence.append(valueOp(count, 1))
                appendZeroRun(&sequence, last - index)
            } else {
                let current = valueOf(op)
                if index != first { sequence.append(valueOp(current, index - first)) }
                sequence.append(valueOp(count, 1))
                if index != last { sequence.append(valueOp(current, last - index)) }
            }
            let oldLength = xzero ? 2 : 1
            if sequence.count > oldLength && bytes.count + sequence.count - oldLength > sparseMaxBytes {
                return try promote(&bytes, index, count)
            }
            bytes.replaceSubrange(position..<(position + oldLength), with: sequence)
        }
        // Merge adjacent VAL opcodes of the same value, scanning up to five opcodes from the one before.
        var scan = previous ?? headerSize
        var budget = 5
        while scan < bytes.count && budget > 0 {
            budget -= 1
            let op = bytes[scan]
            if isXZero(op) {
                scan += 2
                continue
            }
            if isZero(op) {
                scan += 1
                continue
            }
            if scan + 1 < bytes.count, bytes[scan + 1] & 0x80 != 0, valueOf(op) == valueOf(bytes[scan + 1]) {
                let merged = valueRun(op) + valueRun(bytes[scan + 1])
                if merged <= sparseValueMaxRun {
                    bytes[scan + 1] = valueOp(valueOf(op), merged)
                    bytes.remove(at: scan)
                    continue
                }
            }
            scan += 1
        }
        bytes.withUnsafeMutableBytes { invalidateCache($0) }
        return true
    }

    /// Converts a sparse sketch to dense and sets the register there.
    private static func promote(_ bytes: inout [UInt8], _ index: Int, _ count: UInt8) throws(CommandError) -> Bool {
        guard let dense = bytes.withUnsafeBytes({ toDense($0) }) else { throw invalid }
        bytes = dense
        return bytes.withUnsafeMutableBytes { denseSet($0, index, count) }
    }

    // MARK: counting

    /// How many registers hold each value (0…63); `nil` for a corrupted sparse sketch.
    static func histogram(_ bytes: UnsafeRawBufferPointer) -> [Int]? {
        var histogram = [Int](repeating: 0, count: 64)
        if bytes[4] == denseEncoding {
            for index in 0..<registerCount { histogram[Int(denseRegister(bytes, index))] += 1 }
            return histogram
        }
        let valid = forEachSparseRun(bytes) { _, run, value in histogram[Int(value)] += run }
        return valid ? histogram : nil
    }

    /// The histogram of plain registers, one byte each (PFCOUNT of several keys, PFMERGE).
    static func histogram(registers: [UInt8]) -> [Int] {
        var histogram = [Int](repeating: 0, count: 64)
        for value in registers { histogram[Int(value)] += 1 }
        return histogram
    }

    /// The cardinality estimate from a register histogram (redis hllCount: Ertl's improved raw estimator).
    static func estimate(_ histogram: [Int]) -> UInt64 {
        let m = Double(registerCount)
        var z = m * tau((m - Double(histogram[q + 1])) / m)
        for value in stride(from: q, through: 1, by: -1) {
            z += Double(histogram[value])
            z *= 0.5
        }
        z += m * sigma(Double(histogram[0]) / m)
        let alphaInfinity = 0.721347520444481703680  // 0.5 / ln 2
        return UInt64((alphaInfinity * m * m / z).rounded())
    }

    private static func sigma(_ value: Double) -> Double {
        if value == 1 { return .infinity }
        var x = value, y = 1.0, z = value, previous = 0.0
        repeat {
            x *= x
            previous = z
            z += x * y
            y += y
        } while previous != z
        return z
    }

    private static func tau(_ value: Double) -> Double {
        if value == 0 || value == 1 { return 0 }
        var x = value, y = 1.0, z = 1 - value, previous = 0.0
        repeat {
            x = x.squareRoot()
            previous = z
            y *= 0.5
            z -= (1 - x) * (1 - x) * y
        } while previous != z
        return z / 3
    }

    /// Raises each of `registers` (one byte per register) to this sketch's; `false` if it is corrupted.
    static func merge(_ bytes: UnsafeRawBufferPointer, into registers: inout [UInt8]) -> Bool {
        if bytes[4] == denseEncoding {
            for index in 0..<registerCount { registers[index] = max(registers[index], denseRegister(bytes, index)) }
            return true
        }
        return forEachSparseRun(bytes) { first, run, value in
            guard value > 0 else { return }
            for index in first..<(first + run) { registers[index] = max(registers[index], value) }
        }
    }

    // MARK: self test

    /// PFSELFTEST (redis pfselftestCommand): dense registers read back what was written, and a dense and a sparse
    /// sketch fed the same 10 million elements agree and stay within the expected error at each power of ten.
    static func selfTest(sparseMaxBytes: Int) throws(CommandError) {
        var random = SplitMix64(seed: UInt64.random(in: 0 ... .max))
        var dense = [UInt8](repeating: 0, count: denseSize)
        var expected = [UInt8](repeating: 0, count: registerCount)
        for _ in 0..<1000 {
            let mismatch = dense.withUnsafeMutableBytes { bytes -> (index: Int, found: UInt8)? in
                for index in 0..<registerCount {
                    let value = UInt8.random(in: 0...registerMax, using: &random)
                    expected[index] = value
                    setDenseRegister(bytes, index, value)
                }
                for index in 0..<registerCount {
                    let found = denseRegister(UnsafeRawBufferPointer(bytes), index)
                    if found != expected[index] { return (index, found) }
                }
                return nil
            }
            if let mismatch {
                throw CommandError(code: "TESTFAILED", "Register \(mismatch.index) should be \(expected[mismatch.index]) but is \(mismatch.found)")
            }
        }
        dense = [UInt8](repeating: 0, count: denseSize)
        dense[4] = denseEncoding
        var sparse = empty()
        let relativeError = 1.04 / Double(registerCount).squareRoot()
        var checkpoint = 1
        let seed = UInt64.random(in: 0 ... .max, using: &random)
        for step in 1...10_000_000 {
            var element = UInt64(step) ^ seed
            let (index, count) = withUnsafeBytes(of: &element) { pattern($0) }
            _ = dense.withUnsafeMutableBytes { denseSet($0, index, count) }
            _ = try set(&sparse, index, count, sparseMaxBytes: sparseMaxBytes)
            guard step == checkpoint else { continue }
            if step < sparseMaxBytes / 2 && sparse[4] != sparseEncoding {
                throw CommandError(code: "TESTFAILED", "sparse encoding not used")
            }
            let denseCount = dense.withUnsafeBytes { estimate(histogram($0)!) }
            let sparseCount = sparse.withUnsafeBytes { histogram($0).map(estimate) }
            if sparseCount != denseCount { throw CommandError(code: "TESTFAILED", "dense/sparse disagree") }
            let absoluteError = abs(Int64(checkpoint) - Int64(denseCount))
            let maximumError = step == 10 ? 1 : Int64((relativeError * 6 * Double(checkpoint)).rounded(.up))
            if absoluteError > maximumError {
                throw CommandError(code: "TESTFAILED", "Too big error. card:\(checkpoint) abserr:\(absoluteError)")
            }
            checkpoint *= 10
        }
    }
}

/// The commands' implementations, on the keyspace.
enum HyperLogLogFamily {
    /// `hll-sparse-max-bytes`.
    static func sparseMaxBytes(_ context: CommandContext) -> Int {
        context.node.configuration.hllSparseMaxBytes
    }

    /// The bytes of the HyperLogLog at argument `index`: `nil` if missing; WRONGTYPE if not a valid sketch.
    static func read(_ context: CommandContext, _ index: Int) throws(CommandError) -> [UInt8]? {
        guard let value = context.db.value(context.key(index)) else { return nil }
        guard let bytes = value.withStringBytes({ Array($0) }) else { throw .wrongType }
        guard bytes.withUnsafeBytes({ HyperLogLog.isValid($0) }) else { throw HyperLogLog.notHLL }
        return bytes
    }

    /// The encoding of a valid sketch in `value`; WRONGTYPE for another type or an invalid sketch.
    private static func encoding(of value: StoredValue) throws(CommandError) -> UInt8 {
        guard let encoding = value.withStringBytes({ HyperLogLog.isValid($0) ? $0[4] : nil }) else { throw .wrongType }
        guard let encoding else { throw HyperLogLog.notHLL }
        return encoding
    }

    /// PFADD: whether any register changed (or the key was created). A dense sketch is updated in place (no copy of
    /// its 12 KB) when the key holds the only reference to it.
    static func add(_ context: inout CommandContext) throws(CommandError) -> Bool {
        let arguments = context.arguments
        let maximum = sparseMaxBytes(context)
        let changed = try context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) throws(CommandError) -> Bool in
            let created = value == nil
            var bytes: [UInt8]
            if value != nil {
                // No binding of the value here: a second reference would make the in-place update copy.
                if try encoding(of: value!) == HyperLogLog.denseEncoding {
                    let (updated, _) = BitmapFamily.withGrownBytes(&value, length: 0) { sketch -> (Bool, Bool) in
                        var updated = false
                        for index in 2..<max(2, arguments.count) {
                            let (register, count) = arguments.withBytes(index) { HyperLogLog.pattern($0) }
                            if HyperLogLog.denseSet(sketch, register, count) { updated = true }
                        }
                        if updated { HyperLogLog.invalidateCache(sketch) }
                        return (updated, updated)
                    }
                    if updated { modified = true }
                    return updated
                }
                bytes = value!.withStringBytes { Array($0) }!
            } else {
                bytes = HyperLogLog.empty()
            }
            var updated = false
            for index in 2..<max(2, arguments.count) {
                let (register, count) = arguments.withBytes(index) { HyperLogLog.pattern($0) }
                if try HyperLogLog.set(&bytes, register, count, sparseMaxBytes: maximum) { updated = true }
            }
            guard updated || created else { return false }
            bytes.withUnsafeMutableBytes { HyperLogLog.invalidateCache($0) }
            value = bytes.withUnsafeBytes { StoredValue.string(copying: $0) }
            modified = true
            return true
        }
        if changed {
            context.notify(.string, "pfadd", argument: 1)
        } else {
            context.suppressPropagation()
        }
        return changed
    }

    /// PFCOUNT: one key's cardinality (cached in its header, as redis caches it), or the union's of several.
    static func count(_ context: CommandContext) throws(CommandError) -> UInt64 {
        let arguments = context.arguments
        if arguments.count > 2 {
            var registers = [UInt8](repeating: 0, count: HyperLogLog.registerCount)
            for index in 1..<arguments.count {
                guard let bytes = try read(context, index) else { continue }
                guard bytes.withUnsafeBytes({ HyperLogLog.merge($0, into: &registers) }) else { throw HyperLogLog.invalid }
            }
            return HyperLogLog.estimate(HyperLogLog.histogram(registers: registers))
        }
        guard let value = context.db.value(context.key(1)) else { return 0 }
        _ = try encoding(of: value)
        // Read in place: the cached estimate, else the register histogram.
        let known = value.withStringBytes { bytes -> (cached: UInt64?, histogram: [Int]?) in
            if let cached = HyperLogLog.cachedCardinality(bytes) { return (cached, nil) }
            return (nil, HyperLogLog.histogram(bytes))
        }!
        if let cached = known.cached { return cached }
        guard let histogram = known.histogram else { throw HyperLogLog.invalid }
        let cardinality = HyperLogLog.estimate(histogram)
        // Cache it in the header, as redis does (a change of the value, though the sketch is the same).
        context.db.modify(context.key(1)) { (value: inout StoredValue?, modified: inout Bool) in
            _ = BitmapFamily.withGrownBytes(&value, length: 0) { sketch -> (Void, Bool) in
                HyperLogLog.storeCardinality(sketch, cardinality)
                return ((), true)
            }
            modified = true
        }
        return cardinality
    }

    /// PFMERGE: the destination becomes the union of itself and the sources (dense if any input is).
    static func merge(_ context: CommandContext) throws(CommandError) {
        let arguments = context.arguments
        var registers = [UInt8](repeating: 0, count: HyperLogLog.registerCount)
        var useDense = false
        for index in 1..<arguments.count {
            guard let bytes = try read(context, index) else { continue }
            if bytes[4] == HyperLogLog.denseEncoding { useDense = true }
            guard bytes.withUnsafeBytes({ HyperLogLog.merge($0, into: &registers) }) else { throw HyperLogLog.invalid }
        }
        let maximum = sparseMaxBytes(context)
        var bytes = try read(context, 1) ?? HyperLogLog.empty()
        if useDense && bytes[4] == HyperLogLog.sparseEncoding {
            guard let dense = bytes.withUnsafeBytes({ HyperLogLog.toDense($0) }) else { throw HyperLogLog.invalid }
            bytes = dense
        }
        for index in 0..<HyperLogLog.registerCount where registers[index] > 0 {
            _ = try HyperLogLog.set(&bytes, index, registers[index], sparseMaxBytes: maximum)
        }
        bytes.withUnsafeMutableBytes { HyperLogLog.invalidateCache($0) }
        context.db.set(context.key(1), bytes.withUnsafeBytes { StoredValue.string(copying: $0) }, expiry: .keep)
        context.notify(.string, "pfadd", argument: 1)
    }

    /// PFDEBUG GETREG | DECODE | ENCODING | TODENSE key.
    static func debug(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let subcommand = arguments.lowercased(1)
        guard var bytes = try read(context, 2) else { throw CommandError("The specified key does not exist") }
        func storeDense() throws(CommandError) -> Bool {
            guard bytes[4] == HyperLogLog.sparseEncoding else { return false }
            guard let dense = bytes.withUnsafeBytes({ HyperLogLog.toDense($0) }) else { throw HyperLogLog.invalid }
            bytes = dense
            context.db.set(context.key(2), bytes.withUnsafeBytes { StoredValue.string(copying: $0) }, expiry: .keep)
            return true
        }
        switch subcommand {
        case "getreg":
            let converted = try storeDense()
            if !converted { context.suppressPropagation() }
            reply.arrayHeader(HyperLogLog.registerCount)
            bytes.withUnsafeBytes { raw in
                for index in 0..<HyperLogLog.registerCount { reply.integer(Int(HyperLogLog.denseRegister(raw, index))) }
            }
        case "decode":
            context.suppressPropagation()
            guard bytes[4] == HyperLogLog.sparseEncoding else { throw CommandError("HLL encoding is not sparse") }
            var parts: [String] = []
            var position = HyperLogLog.headerSize
            while position < bytes.count {
                let op = bytes[position]
                if op & 0xC0 == 0 {
                    parts.append("z:\(Int(op & 0x3F) + 1)")
                    position += 1
                } else if op & 0xC0 == 0x40 {
                    let next = position + 1 < bytes.count ? Int(bytes[position + 1]) : 0
                    parts.append("Z:\((Int(op & 0x3F) << 8 | next) + 1)")
                    position += 2
                } else {
                    parts.append("v:\(Int(op >> 2 & 0x1F) + 1),\(Int(op & 0x3) + 1)")
                    position += 1
                }
            }
            reply.bulk(parts.joined(separator: " "))
        case "encoding":
            context.suppressPropagation()
            reply.simpleString(bytes[4] == HyperLogLog.denseEncoding ? "dense" : "sparse")
        case "todense":
            let converted = try storeDense()
            if !converted { context.suppressPropagation() }
            reply.integer(converted ? 1 : 0)
        default:
            throw CommandError("Unknown PFDEBUG subcommand '\(arguments.string(1))'")
        }
    }
}
