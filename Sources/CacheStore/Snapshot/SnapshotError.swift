// The one error type of snapshot decoding (files, replication streams and DUMP payloads). Decoders never trap on
// bad input: every length is checked against the bytes present and the configured limits first.

/// Why a snapshot, record or DUMP payload could not be decoded or loaded.
public struct SnapshotError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure, for callers that react differently (e.g. RESTORE's error wording).
    public enum Kind: Hashable, Sendable {
        /// The input ended before a complete structure (a torn file or a broken stream).
        case truncated
        /// The input does not start with the snapshot magic.
        case badMagic
        /// Written by a newer (or unknown) format version.
        case unsupportedVersion
        /// The checksum does not match the bytes: the data was damaged or tampered with.
        case checksumMismatch
        /// The bytes are not a valid encoding (unknown type tag, duplicate member, NaN score…).
        case malformed
        /// A length or count exceeds a decoding limit.
        case limitExceeded
        /// Bytes follow the end of the snapshot.
        case trailingData
        /// The trailer's record count disagrees with the records read.
        case recordCountMismatch
        /// A record names a database this keyspace does not have.
        case databaseOutOfRange
    }

    /// The kind of failure.
    public let kind: Kind
    /// What was wrong, for logs and start-up messages.
    public let message: String

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    static func truncated(_ what: String) -> Self { Self(.truncated, "truncated: the input ends inside \(what)") }
    static func malformed(_ what: String) -> Self { Self(.malformed, "malformed: \(what)") }
    static func limit(_ what: String) -> Self { Self(.limitExceeded, "limit exceeded: \(what)") }
}
