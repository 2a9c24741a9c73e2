// RecordIO (apache/mesos docs/recordio.md), the framing of the SUBSCRIBE event stream: each record is its length in
// decimal ASCII, a line feed, then exactly that many bytes (`record = record-size LF record-data`). The decoder is a
// `NIOSingleStepByteToMessageDecoder`, so it runs in a channel pipeline or, as the backend uses it, fed chunk by chunk
// through `NIOSingleStepByteToMessageProcessor` (HTTP chunk boundaries are unrelated to record boundaries). It
// refuses a length line that is not digits, longer than 20 digits, or a record larger than `maximumRecordSize`,
// before buffering it.

public import NIOCore

/// Why a RecordIO stream is malformed.
public struct RecordIOError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case invalidLength
        case recordTooLarge
        case truncated
    }
    private let code: Code
    /// What was wrong, with the offending bytes or size.
    public let message: String

    /// The length line is not a decimal number (or is empty, or too long).
    public static func invalidLength(_ text: String) -> RecordIOError {
        RecordIOError(code: .invalidLength, message: "RecordIO length line is not a decimal length: \(text.debugDescription)")
    }
    /// A record announces more bytes than allowed.
    public static func recordTooLarge(_ size: UInt64, limit: Int) -> RecordIOError {
        RecordIOError(code: .recordTooLarge, message: "RecordIO record of \(size) bytes exceeds the limit of \(limit) bytes")
    }
    /// The stream ended inside a record.
    public static func truncated(buffered: Int) -> RecordIOError {
        RecordIOError(code: .truncated, message: "RecordIO stream ended inside a record (\(buffered) bytes left over)")
    }

    public var description: String { message }
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

/// Decodes RecordIO into one `ByteBuffer` per record (a slice of the input, no copy).
public struct RecordIODecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    /// The largest record accepted.
    public let maximumRecordSize: Int
    /// A uint64 has at most 20 decimal digits.
    private static let maximumLengthDigits = 20
    private var pendingLength: Int?

    /// Creates a decoder refusing records larger than `maximumRecordSize` bytes.
    public init(maximumRecordSize: Int = 16 * 1024 * 1024) {
        self.maximumRecordSize = maximumRecordSize
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        if pendingLength == nil {
            let view = buffer.readableBytesView
            guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
                if view.count > Self.maximumLengthDigits || view.contains(where: { !Self.isDigit($0) }) {
                    throw RecordIOError.invalidLength(String(decoding: view.prefix(32), as: UTF8.self))
                }
                return nil
            }
            let digits = view[view.startIndex..<newline]
            guard !digits.isEmpty, digits.count <= Self.maximumLengthDigits, digits.allSatisfy(Self.isDigit),
                let length = UInt64(String(decoding: digits, as: UTF8.self))
            else {
                throw RecordIOError.invalidLength(String(decoding: digits.prefix(32), as: UTF8.self))
            }
            guard length <= UInt64(maximumRecordSize) else {
                throw RecordIOError.recordTooLarge(length, limit: maximumRecordSize)
            }
            buffer.moveReaderIndex(forwardBy: digits.count + 1)
            pendingLength = Int(length)
        }
        guard let length = pendingLength, let record = buffer.readSlice(length: length) else { return nil }
        pendingLength = nil
        return record
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        if let record = try decode(buffer: &buffer) { return record }
        if seenEOF && (buffer.readableBytes > 0 || pendingLength != nil) {
            throw RecordIOError.truncated(buffered: buffer.readableBytes)
        }
        return nil
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}

/// RecordIO encoding.
public enum RecordIO {
    /// Appends `record` framed as `<length>\n<record>` to `buffer`.
    public static func write(_ record: ByteBuffer, to buffer: inout ByteBuffer) {
        buffer.writeString("\(record.readableBytes)\n")
        var record = record
        buffer.writeBuffer(&record)
    }

    /// `record` framed as `<length>\n<record>`.
    public static func frame(_ record: ByteBuffer, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: record.readableBytes + 21)
        write(record, to: &buffer)
        return buffer
    }
}
