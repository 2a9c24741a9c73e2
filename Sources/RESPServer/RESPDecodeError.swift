// Typed errors of the RESP command decoder; each knows the exact text redis sends before closing the connection.

/// A client sent bytes that are not a valid command. The connection replies with
/// `-ERR Protocol error: <reason>` and closes, as redis does.
public struct RESPDecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case invalidMultibulkLength, invalidBulkLength, expectedDollar(UInt8), multibulkCountTooLong
        case bulkCountTooLong, inlineTooLong, unbalancedQuotes
        case unauthenticatedMultibulkLength, unauthenticatedBulkLength
    }

    private let code: Code

    /// `*<n>` with n not a number or above the multibulk limit.
    public static let invalidMultibulkLength = Self(code: .invalidMultibulkLength)
    /// `$<n>` with n not a number, negative, or above `proto-max-bulk-len`.
    public static let invalidBulkLength = Self(code: .invalidBulkLength)
    /// A multibulk element did not start with `$`.
    public static func expectedDollar(got byte: UInt8) -> Self { Self(code: .expectedDollar(byte)) }
    /// The `*<n>` line was longer than the inline limit without a line break.
    public static let multibulkCountTooLong = Self(code: .multibulkCountTooLong)
    /// The `$<n>` line was longer than the inline limit without a line break.
    public static let bulkCountTooLong = Self(code: .bulkCountTooLong)
    /// An inline command line exceeded the inline limit (64 KiB by default).
    public static let inlineTooLong = Self(code: .inlineTooLong)
    /// An inline command had an unterminated quote.
    public static let unbalancedQuotes = Self(code: .unbalancedQuotes)
    /// A client that has not authenticated sent more than 10 arguments.
    public static let unauthenticatedMultibulkLength = Self(code: .unauthenticatedMultibulkLength)
    /// A client that has not authenticated sent an argument longer than 16 KiB.
    public static let unauthenticatedBulkLength = Self(code: .unauthenticatedBulkLength)

    /// The reason, worded as redis words it (`-ERR Protocol error: <reason>`).
    public var description: String {
        switch code {
        case .invalidMultibulkLength: return "invalid multibulk length"
        case .invalidBulkLength: return "invalid bulk length"
        case .expectedDollar(let byte): return "expected '$', got '\(Character(Unicode.Scalar(byte)))'"
        case .multibulkCountTooLong: return "too big mbulk count string"
        case .bulkCountTooLong: return "too big bulk count string"
        case .inlineTooLong: return "too big inline request"
        case .unbalancedQuotes: return "unbalanced quotes in request"
        case .unauthenticatedMultibulkLength: return "unauthenticated multibulk length"
        case .unauthenticatedBulkLength: return "unauthenticated bulk length"
        }
    }
}
