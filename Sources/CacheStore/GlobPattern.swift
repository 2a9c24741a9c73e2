// Glob-style matching as redis's stringmatchlen implements it (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET):
// `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, and `\x` escapes. Like redis (since CVE-2022-36021), a `*` whose rest of the
// pattern matched nowhere in the rest of the string stops every enclosing `*` from trying longer matches, so
// patterns such as `a*a*a*…b` cost polynomial rather than exponential time.

/// Redis glob matching over bytes.
public enum GlobPattern {
    /// Whether `string` matches `pattern`.
    public static func matches(_ pattern: UnsafeRawBufferPointer, _ string: UnsafeRawBufferPointer, caseless: Bool = false) -> Bool {
        var skipLongerMatches = false
        return matchFrom(pattern, 0, string, 0, caseless, depth: 0, skipLongerMatches: &skipLongerMatches)
    }

    /// Whether `string` matches `pattern` (text convenience).
    public static func matches(_ pattern: String, _ string: String, caseless: Bool = false) -> Bool {
        Array(pattern.utf8).withUnsafeBytes { p in Array(string.utf8).withUnsafeBytes { s in matches(p, s, caseless: caseless) } }
    }

    private static func lower(_ byte: UInt8, _ caseless: Bool) -> UInt8 {
        caseless && byte >= 65 && byte <= 90 ? byte | 0x20 : byte
    }

    private static func matchFrom(
        _ pattern: UnsafeRawBufferPointer, _ startP: Int, _ string: UnsafeRawBufferPointer, _ startS: Int,
        _ caseless: Bool, depth: Int, skipLongerMatches: inout Bool
    ) -> Bool {
        // Deep recursion on pathological patterns is cut off, as redis 7 does.
        if depth > 1000 { return false }
        var p = startP
        var s = startS
        while p < pattern.count && s < string.count {
            switch pattern[p] {
            case UInt8(ascii: "*"):
                while p + 1 < pattern.count && pattern[p + 1] == UInt8(ascii: "*") { p += 1 }
                if p + 1 == pattern.count { return true }
                while s < string.count {
                    if matchFrom(pattern, p + 1, string, s, caseless, depth: depth + 1, skipLongerMatches: &skipLongerMatches) {
                        return true
                    }
                    if skipLongerMatches { return false }
                    s += 1
                }
                // The rest of the pattern matches nowhere from here on: no earlier `*` can help by matching longer.
                skipLongerMatches = true
                return false
            case UInt8(ascii: "?"):
                s += 1
            case UInt8(ascii: "["):
                p += 1
                let negate = p < pattern.count && pattern[p] == UInt8(ascii: "^")
                if negate { p += 1 }
                var matched = false
                while true {
                    if p >= pattern.count { p -= 1; break }
                    let c = pattern[p]
                    if c == UInt8(ascii: "\\") && p + 2 < pattern.count {
                        p += 1
                        if pattern[p] == string[s] { matched = true }
                    } else if c == UInt8(ascii: "]") {
                        break
                    } else if p + 2 < pattern.count && pattern[p + 1] == UInt8(ascii: "-") {
                        var start = lower(c, caseless)
                        var end = lower(pattern[p + 2], caseless)
                        if start > end { swap(&start, &end) }
                        let value = lower(string[s], caseless)
                        p += 2
                        if value >= start && value <= end { matched = true }
                    } else if lower(c, caseless) == lower(string[s], caseless) {
                        matched = true
                    }
                    p += 1
                }
                if negate { matched.toggle() }
                if !matched { return false }
                s += 1
            case UInt8(ascii: "\\") where p + 1 < pattern.count:
                p += 1
                if lower(pattern[p], caseless) != lower(string[s], caseless) { return false }
                s += 1
            default:
                if lower(pattern[p], caseless) != lower(string[s], caseless) { return false }
                s += 1
            }
            p += 1
        }
        while p < pattern.count && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count && s == string.count
    }
}
