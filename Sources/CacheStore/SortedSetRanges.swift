// Score and lexicographic ranges of sorted-set commands (redis zrangespec / zlexrangespec) and their parsing:
// "(" makes a score bound exclusive, "-inf"/"+inf" are unbounded; lex bounds are "[x", "(x", "-" or "+".

/// A score interval `min`…`max`, each end inclusive or exclusive.
public struct SortedSetScoreRange: Sendable, Equatable {
    public var min: Double
    public var max: Double
    public var minExclusive: Bool
    public var maxExclusive: Bool

    public init(min: Double, max: Double, minExclusive: Bool = false, maxExclusive: Bool = false) {
        self.min = min
        self.max = max
        self.minExclusive = minExclusive
        self.maxExclusive = maxExclusive
    }

    /// Whether `score` is at or above the lower bound.
    @inline(__always) public func isAboveMin(_ score: Double) -> Bool { minExclusive ? score > min : score >= min }
    /// Whether `score` is at or below the upper bound.
    @inline(__always) public func isBelowMax(_ score: Double) -> Bool { maxExclusive ? score < max : score <= max }
    /// Whether the interval holds `score`.
    public func contains(_ score: Double) -> Bool { isAboveMin(score) && isBelowMax(score) }
    /// Whether no score can be inside (redis zslIsInRange's first test).
    public var isEmpty: Bool { min > max || (min == max && (minExclusive || maxExclusive)) }

    /// Parses one bound as ZRANGEBYSCORE does: `(1.5`, `2`, `-inf`, `+inf`; nil if not a float.
    public static func parseBound(_ bytes: UnsafeRawBufferPointer) -> (value: Double, exclusive: Bool)? {
        guard let first = bytes.first else { return nil }
        if first == UInt8(ascii: "(") {
            guard let value = parseScore(UnsafeRawBufferPointer(rebasing: bytes.dropFirst())) else { return nil }
            return (value, true)
        }
        guard let value = parseScore(bytes) else { return nil }
        return (value, false)
    }

    /// A score as redis's strtod reads it (NaN refused).
    public static func parseScore(_ bytes: UnsafeRawBufferPointer) -> Double? {
        if bytes.isEmpty || bytes.count > 5000 { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        switch text.lowercased() {
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default: break
        }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "+"),
                UInt8(ascii: "e"), UInt8(ascii: "E"):
                continue
            default:
                return nil
            }
        }
        guard let value = Double(text), !value.isNaN else { return nil }
        return value
    }
}

/// One end of a lexicographic range.
public enum SortedSetLexBound: Sendable, Equatable {
    /// `-`: below every member.
    case negativeInfinity
    /// `+`: above every member.
    case positiveInfinity
    /// `[member`.
    case inclusive(CompactBytes)
    /// `(member`.
    case exclusive(CompactBytes)

    /// Parses `[x`, `(x`, `-` or `+`; nil otherwise.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> SortedSetLexBound? {
        guard let first = bytes.first else { return nil }
        switch first {
        case UInt8(ascii: "+"): return bytes.count == 1 ? .positiveInfinity : nil
        case UInt8(ascii: "-"): return bytes.count == 1 ? .negativeInfinity : nil
        case UInt8(ascii: "["): return .inclusive(CompactBytes(UnsafeRawBufferPointer(rebasing: bytes.dropFirst())))
        case UInt8(ascii: "("): return .exclusive(CompactBytes(UnsafeRawBufferPointer(rebasing: bytes.dropFirst())))
        default: return nil
        }
    }
}

/// A lexicographic interval of members (meaningful when all scores are equal).
public struct SortedSetLexRange: Sendable, Equatable {
    public var min: SortedSetLexBound
    public var max: SortedSetLexBound

    public init(min: SortedSetLexBound, max: SortedSetLexBound) {
        self.min = min
        self.max = max
    }

    /// Whether `member` is at or above the lower bound.
    public func isAboveMin(_ member: CompactBytes) -> Bool {
        switch min {
        case .negativeInfinity: return true
        case .positiveInfinity: return false
        case .inclusive(let bound): return compare(member, bound) >= 0
        case .exclusive(let bound): return compare(member, bound) > 0
        }
    }

    /// Whether `member` is at or below the upper bound.
    public func isBelowMax(_ member: CompactBytes) -> Bool {
        switch max {
        case .negativeInfinity: return false
        case .positiveInfinity: return true
        case .inclusive(let bound): return compare(member, bound) <= 0
        case .exclusive(let bound): return compare(member, bound) < 0
        }
    }

    /// Whether the interval holds `member`.
    public func contains(_ member: CompactBytes) -> Bool { isAboveMin(member) && isBelowMax(member) }

    /// Whether no member can be inside (redis zslIsInLexRange's first test).
    public var isEmpty: Bool {
        switch (min, max) {
        case (.positiveInfinity, _), (_, .negativeInfinity): return true
        case (.negativeInfinity, _), (_, .positiveInfinity): return false
        case (.inclusive(let a), .inclusive(let b)): return compare(a, b) > 0
        case (.inclusive(let a), .exclusive(let b)), (.exclusive(let a), .inclusive(let b)), (.exclusive(let a), .exclusive(let b)):
            return compare(a, b) >= 0
        }
    }

    private func compare(_ a: CompactBytes, _ b: CompactBytes) -> Int {
        a.withBytes { x in b.withBytes { y in ByteOrder.compare(x, y) } }
    }
}
