// A decoded reply for tests: parses everything cache-node can send (RESP2 and RESP3) so tests assert on values,
// not on byte strings.
public import NIOCore

/// One RESP reply.
public indirect enum RESPValue: Hashable, Sendable, CustomStringConvertible {
    case simple(String)
    case error(String)
    case integer(Int)
    case bulk([UInt8])
    case null
    case array([RESPValue])
    case map([RESPValue])  // flattened key, value, key, value…
    case set([RESPValue])
    case double(Double)
    case boolean(Bool)
    case verbatim(String)
    case push([RESPValue])
    case nullArray

    /// A bulk string from text.
    public static func string(_ text: String) -> RESPValue { .bulk(Array(text.utf8)) }

    /// The value as text (simple, bulk, verbatim, error), else `nil`.
    public var text: String? {
        switch self {
        case .simple(let text), .error(let text), .verbatim(let text): return text
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }

    /// The elements of an array, set, map (flattened) or push.
    public var elements: [RESPValue]? {
        switch self {
        case .array(let values), .set(let values), .map(let values), .push(let values): return values
        default: return nil
        }
    }

    /// The texts of an aggregate's elements.
    public var strings: [String]? { elements?.compactMap(\.text) }

    /// Whether this is an error reply.
    public var isError: Bool { if case .error = self { return true } else { return false } }

    public var description: String {
        switch self {
        case .simple(let text): return "+\(text)"
        case .error(let text): return "-\(text)"
        case .integer(let value): return ":\(value)"
        case .bulk(let bytes): return "\"\(String(decoding: bytes, as: UTF8.self))\""
        case .null: return "(nil)"
        case .nullArray: return "(nil array)"
        case .array(let values): return "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .map(let values): return "{" + values.map(\.description).joined(separator: ", ") + "}"
        case .set(let values): return "~{" + values.map(\.description).joined(separator: ", ") + "}"
        case .double(let value): return ",\(value)"
        case .boolean(let value): return "#\(value)"
        case .verbatim(let text): return "=\(text)"
        case .push(let values): return ">[" + values.map(\.description).joined(separator: ", ") + "]"
        }
    }

    /// Parses one value from `buffer`; returns `nil` (consuming nothing) if it is incomplete.
    public static func parse(_ buffer: inout ByteBuffer) -> RESPValue? {
        var copy = buffer
        guard let value = parseValue(&copy) else { return nil }
        buffer = copy
        return value
    }

    private static func readLine(_ buffer: inout ByteBuffer) -> String? {
        guard let index = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\r")),
              index + 1 < buffer.writerIndex else { return nil }
        let line = buffer.readString(length: index - buffer.readerIndex)!
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    private static func parseAggregate(_ buffer: inout ByteBuffer, count: Int) -> [RESPValue]? {
        var values: [RESPValue] = []
        for _ in 0..<max(0, count) {
            guard let value = parseValue(&buffer) else { return nil }
            values.append(value)
        }
        return values
    }

    private static func parseValue(_ buffer: inout ByteBuffer) -> RESPValue? {
        guard let marker = buffer.readInteger(as: UInt8.self), let line = readLine(&buffer) else { return nil }
        switch marker {
        case UInt8(ascii: "+"): return .simple(line)
        case UInt8(ascii: "-"): return .error(line)
        case UInt8(ascii: ":"): return Int(line).map { .integer($0) }
        case UInt8(ascii: "_"): return .null
        case UInt8(ascii: "#"): return .boolean(line == "t")
        case UInt8(ascii: ","): return .double(line == "inf" ? .infinity : line == "-inf" ? -.infinity : Double(line) ?? .nan)
        case UInt8(ascii: "$"), UInt8(ascii: "="):
            guard let length = Int(line) else { return nil }
            if length < 0 { return .null }
            guard buffer.readableBytes >= length + 2, let bytes = buffer.readBytes(length: length) else { return nil }
            buffer.moveReaderIndex(forwardBy: 2)
            if marker == UInt8(ascii: "=") { return .verbatim(String(decoding: bytes.dropFirst(4), as: UTF8.self)) }
            return .bulk(bytes)
        case UInt8(ascii: "*"):
            guard let count = Int(line) else { return nil }
            if count < 0 { return .nullArray }
            return parseAggregate(&buffer, count: count).map { .array($0) }
        case UInt8(ascii: "~"):
            return Int(line).flatMap { parseAggregate(&buffer, count: $0) }.map { .set($0) }
        case UInt8(ascii: ">"):
            return Int(line).flatMap { parseAggregate(&buffer, count: $0) }.map { .push($0) }
        case UInt8(ascii: "%"):
            return Int(line).flatMap { parseAggregate(&buffer, count: $0 * 2) }.map { .map($0) }
        default:
            return nil
        }
    }
}
