// The client side of RESP for node-to-node links (replication, MIGRATE): encoding commands as RESP arrays and
// parsing replies (RESP2 and the RESP3 types) incrementally from a byte buffer. Pure values, no I/O.
public import NIOCore
import RESPServer

/// A reply read from a peer node.
public enum PeerReply: Sendable, Hashable, CustomStringConvertible {
    case simpleString(String)
    case error(String)
    case integer(Int)
    case bulk([UInt8])
    case array([PeerReply])
    case null
    case double(Double)
    case boolean(Bool)
    case map([PeerReply])

    /// The reply as text (simple strings, bulks, integers), or `nil`.
    public var string: String? {
        switch self {
        case .simpleString(let text): return text
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .integer(let value): return String(value)
        default: return nil
        }
    }

    /// Whether this is an error reply.
    public var isError: Bool {
        if case .error = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .simpleString(let text): return text
        case .error(let text): return "(error) \(text)"
        case .integer(let value): return "(integer) \(value)"
        case .bulk(let bytes): return "\"\(String(decoding: bytes, as: UTF8.self))\""
        case .array(let items), .map(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .null: return "(nil)"
        case .double(let value): return "(double) \(value)"
        case .boolean(let value): return "(boolean) \(value)"
        }
    }
}

/// A malformed reply from a peer: the link must be dropped.
public struct PeerProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "peer protocol error: \(message)" }
}

/// Incremental RESP reply parser: returns `nil` (consuming nothing) until a whole reply is buffered.
public enum PeerReplyParser {
    /// Nesting bound, as the server's decoder applies.
    static let maximumDepth = 32

    /// Parses one reply from the front of `buffer`, or returns `nil` if it is incomplete.
    public static func parse(_ buffer: inout ByteBuffer) throws(PeerProtocolError) -> PeerReply? {
        var copy = buffer
        guard let reply = try parseValue(&copy, depth: 0) else { return nil }
        buffer = copy
        return reply
    }

    /// Reads a line without its CRLF, or `nil` when no CRLF is buffered yet.
    static func readLine(_ buffer: inout ByteBuffer) throws(PeerProtocolError) -> String? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > 64 * 1024 { throw PeerProtocolError("line longer than 64 KiB") }
            return nil
        }
        let length = newline - view.startIndex
        guard length >= 1, view[newline - 1] == UInt8(ascii: "\r") else { throw PeerProtocolError("line not ended by CRLF") }
        let line = buffer.readString(length: length - 1)!
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    private static func parseValue(_ buffer: inout ByteBuffer, depth: Int) throws(PeerProtocolError) -> PeerReply? {
        guard depth < maximumDepth else { throw PeerProtocolError("reply nested too deeply") }
        guard let marker = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        buffer.moveReaderIndex(forwardBy: 1)
        guard let line = try readLine(&buffer) else { return nil }
        switch marker {
        case UInt8(ascii: "+"): return .simpleString(line)
        case UInt8(ascii: "-"): return .error(line)
        case UInt8(ascii: ":"):
            guard let value = Int(line) else { throw PeerProtocolError("bad integer '\(line.prefix(32))'") }
            return .integer(value)
        case UInt8(ascii: "_"): return .null
        case UInt8(ascii: ","): return .double(Double(line) ?? .nan)
        case UInt8(ascii: "#"): return .boolean(line == "t")
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            guard let length = Int(line), length >= -1 else { throw PeerProtocolError("bad bulk length '\(line.prefix(32))'") }
            if length == -1 { return .null }
            guard buffer.readableBytes >= length + 2 else { return nil }
            let bytes = buffer.readBytes(length: length)!
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw PeerProtocolError("bulk not ended by CRLF") }
            if marker == UInt8(ascii: "!") { return .error(String(decoding: bytes, as: UTF8.self)) }
            return .bulk(bytes)
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"):
            guard let count = Int(line), count >= -1 else { throw PeerProtocolError("bad array length '\(line.prefix(32))'") }
            if count == -1 { return .null }
            let elements = marker == UInt8(ascii: "%") ? count * 2 : count
            var items: [PeerReply] = []
            items.reserveCapacity(min(elements, 1024))
            for _ in 0..<elements {
                guard let item = try parseValue(&buffer, depth: depth + 1) else { return nil }
                items.append(item)
            }
            return marker == UInt8(ascii: "%") ? .map(items) : .array(items)
        default:
            throw PeerProtocolError("unknown reply type byte \(marker)")
        }
    }
}

/// Encodes commands as RESP arrays of bulk strings (what redis clients and replication streams send).
public enum RESPCommandEncoder {
    /// Appends `*N\r\n$len\r\narg\r\n…` to `buffer`.
    public static func encode<Argument: Collection>(_ arguments: [Argument], into buffer: inout ByteBuffer)
    where Argument.Element == UInt8 {
        buffer.writeInteger(UInt8(ascii: "*"))
        ReplyWriterDecimal.write(arguments.count, to: &buffer)
        for argument in arguments {
            buffer.writeInteger(UInt8(ascii: "$"))
            ReplyWriterDecimal.write(argument.count, to: &buffer)
            buffer.writeBytes(argument)
            buffer.writeStaticString("\r\n")
        }
    }

    /// Encodes string arguments.
    public static func encode(_ arguments: [String], into buffer: inout ByteBuffer) {
        encode(arguments.map { Array($0.utf8) }, into: &buffer)
    }
}

/// `<decimal>\r\n`.
enum ReplyWriterDecimal {
    @inline(__always)
    static func write(_ value: Int, to buffer: inout ByteBuffer) {
        ReplyWriter.appendDecimal(value, to: &buffer)
        buffer.writeStaticString("\r\n")
    }
}
