// A small synchronous Redis client on libhiredis for integration tests: one blocking connection,
// commands as argument arrays (binary safe), pipelining via append + readReply, replies as an enum.
import CHiredis

/// A reply as hiredis parses it (RESP2).
enum RedisReply: Equatable, Sendable, CustomStringConvertible {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    case null
    case array([RedisReply])

    /// A bulk reply holding the UTF-8 of `text`.
    static func string(_ text: String) -> RedisReply { .bulk(Array(text.utf8)) }

    /// The text of a bulk or status reply, nil otherwise.
    var text: String? {
        switch self {
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        default: nil
        }
    }

    var description: String {
        switch self {
        case .status(let text): "+\(text)"
        case .error(let text): "-\(text)"
        case .integer(let value): ":\(value)"
        case .bulk(let bytes): "$\"\(String(decoding: bytes, as: UTF8.self))\""
        case .null: "(nil)"
        case .array(let elements): "[\(elements.map(\.description).joined(separator: ", "))]"
        }
    }

    /// Copies a hiredis reply tree (the caller still frees it).
    init(_ reply: UnsafePointer<redisReply>) {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STATUS: self = .status(String(cString: value.str))
        case REDIS_REPLY_ERROR: self = .error(String(cString: value.str))
        case REDIS_REPLY_INTEGER: self = .integer(Int64(value.integer))
        case REDIS_REPLY_NIL: self = .null
        case REDIS_REPLY_STRING:
            let bytes = UnsafeRawBufferPointer(start: value.str, count: Int(value.len))
            self = .bulk(Array(bytes))
        case REDIS_REPLY_ARRAY:
            self = .array((0..<value.elements).map { RedisReply(chiredis_reply_element(reply, $0)) })
        default:
            self = .error("unknown hiredis reply type \(value.type)")
        }
    }
}

/// What went wrong talking to a server through hiredis.
struct HiredisClientError: Error, CustomStringConvertible, Equatable {
    enum Code: Equatable { case connect, io, protocolError, other }
    var code: Code
    var message: String
    var description: String { "hiredis \(code): \(message) (is the server up and speaking RESP?)" }
}

/// A blocking connection to one server. Not thread-safe; freed on deinit.
final class HiredisClient {
    private let context: UnsafeMutablePointer<redisContext>
    private var pendingReplies = 0

    /// Connects to `host:port`, giving up after `timeoutMilliseconds` (also the read/write timeout).
    init(host: String = "127.0.0.1", port: Int, timeoutMilliseconds: Int = 2_000) throws(HiredisClientError) {
        guard let context = chiredis_connect(host, Int32(port), timeoutMilliseconds) else {
            throw HiredisClientError(code: .connect, message: "hiredis could not allocate a context")
        }
        if context.pointee.err != 0 {
            let message = Self.errorText(context)
            redisFree(context)
            throw HiredisClientError(code: .connect, message: "connect to \(host):\(port) failed: \(message)")
        }
        self.context = context
    }

    deinit { redisFree(context) }

    /// Sends one command and waits for its reply. Error replies are returned as `.error`, not thrown.
    @discardableResult
    func command(_ arguments: [String]) throws(HiredisClientError) -> RedisReply {
        try command(arguments.map { Array($0.utf8) })
    }

    /// Sends one command with binary-safe arguments and waits for its reply.
    @discardableResult
    func command(_ arguments: [[UInt8]]) throws(HiredisClientError) -> RedisReply {
        try append(arguments)
        return try readReply()
    }

    /// Queues one command without waiting; read its reply later with `readReply()` (pipelining).
    func append(_ arguments: [String]) throws(HiredisClientError) {
        try append(arguments.map { Array($0.utf8) })
    }

    /// Queues one command with binary-safe arguments without waiting.
    func append(_ arguments: [[UInt8]]) throws(HiredisClientError) {
        precondition(!arguments.isEmpty, "a command needs at least its name")
        let status = withArgv(arguments) { argv, lengths in
            chiredis_append_command_argv(context, Int32(arguments.count), argv, lengths)
        }
        guard status == REDIS_OK else { throw currentError() }
        pendingReplies += 1
    }

    /// Flushes queued commands and reads the next reply, in the order the commands were appended.
    func readReply() throws(HiredisClientError) -> RedisReply {
        guard let reply = chiredis_get_reply(context) else { throw currentError() }
        defer { freeReplyObject(reply) }
        pendingReplies -= 1
        return RedisReply(reply)
    }

    /// Sends all `commands` at once, then reads their replies.
    func pipeline(_ commands: [[String]]) throws(HiredisClientError) -> [RedisReply] {
        for command in commands { try append(command) }
        var replies: [RedisReply] = []
        for _ in commands { replies.append(try readReply()) }
        return replies
    }

    private func currentError() -> HiredisClientError {
        let code: HiredisClientError.Code =
            switch context.pointee.err {
            case REDIS_ERR_IO, REDIS_ERR_EOF: .io
            case REDIS_ERR_PROTOCOL: .protocolError
            default: .other
            }
        return HiredisClientError(code: code, message: Self.errorText(context))
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private func withArgv<R>(
        _ arguments: [[UInt8]], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        let argv = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: arguments.count)
        defer { argv.deallocate() }
        // Copy every argument into one contiguous buffer so the pointers stay valid during the call.
        let total = arguments.reduce(0) { $0 + $1.count }
        let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, total))
        defer { storage.deallocate() }
        var offset = 0
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        for (index, argument) in arguments.enumerated() {
            argument.withUnsafeBufferPointer { bytes in
                if let base = bytes.baseAddress { (storage + offset).update(from: base, count: bytes.count) }
            }
            argv[index] = UnsafeRawPointer(storage + offset).assumingMemoryBound(to: CChar.self)
            lengths.append(argument.count)
            offset += argument.count
        }
        return lengths.withUnsafeBufferPointer { body(argv, $0.baseAddress!) }
    }
}
