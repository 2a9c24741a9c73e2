// The timeout argument of blocking commands (BLPOP … timeout): seconds as a float, 0 meaning "forever", parsed
// and checked exactly as redis's getTimeoutFromObjectOrReply (timeout.c) does, with the same error texts.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import RESPServer

/// Parses blocking-command timeouts.
public enum BlockingTimeout {
    public static let notAFloat = CommandError("timeout is not a float or out of range")
    public static let negative = CommandError("timeout is negative")
    public static let outOfRange = CommandError("timeout is out of range")

    /// The absolute deadline (unix ms) for the timeout in argument `index`, or `nil` for "block forever" (0).
    ///
    /// The value is read like redis's `string2ld` (decimal, exponent and hex forms, `inf`; no NaN, no spaces,
    /// no trailing bytes), turned into milliseconds rounding up (0.0001 s waits 1 ms) and added to `now`.
    public static func deadline(_ context: CommandContext, argument index: Int) throws(CommandError) -> Int64? {
        try context.arguments.withBytes(index) { (bytes: UnsafeRawBufferPointer) throws(CommandError) -> Int64? in
            try deadline(seconds: bytes, now: context.now)
        }
    }

    /// The deadline for `seconds` (the raw argument) counted from `now`; `nil` means forever.
    public static func deadline(seconds bytes: UnsafeRawBufferPointer, now: Int64) throws(CommandError) -> Int64? {
        guard let seconds = parseLongDouble(bytes) else { throw notAFloat }
        let milliseconds = (seconds * 1000).rounded(.up)
        // 2^63 is exact in both Double and Float80; anything at or above it does not fit an Int64.
        if milliseconds >= 9_223_372_036_854_775_808.0 { throw outOfRange }
        if milliseconds < 0 { throw negative }
        let amount = Int64(milliseconds)
        if amount == 0 { return nil }
        guard amount <= Int64.max - now else { throw outOfRange }
        return now + amount
    }

    /// redis `string2ld`: `strtold` over the whole argument, refusing NaN, leading spaces and range errors.
    static func parseLongDouble(_ bytes: UnsafeRawBufferPointer) -> CLongDouble? {
        // redis copies into a MAX_LONG_DOUBLE_CHARS (5 KiB) buffer.
        guard !bytes.isEmpty, bytes.count < 5 * 1024 else { return nil }
        var text = [CChar](repeating: 0, count: bytes.count + 1)
        for position in 0..<bytes.count {
            let byte = bytes[position]
            if byte == 0 { return nil }  // an embedded NUL would end strtold early
            text[position] = CChar(bitPattern: byte)
        }
        if isspace(Int32(text[0])) != 0 { return nil }
        return text.withUnsafeMutableBufferPointer { buffer -> CLongDouble? in
            let start = buffer.baseAddress!
            var end: UnsafeMutablePointer<CChar>? = nil
            errno = 0
            let value = strtold(start, &end)
            let failed = errno
            guard let end, end - start == bytes.count else { return nil }
            if value.isNaN || failed == EINVAL { return nil }
            if failed == ERANGE && (value.isInfinite || value == 0) { return nil }
            return value
        }
    }
}
