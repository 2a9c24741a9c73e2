// Node → node requests for cluster mode (MIGRATE's RESTORE-ASKING batches, CLUSTER MEET's pull of a peer's id),
// behind a small protocol so the transport can be swapped (e.g. for the replication branch's peer link over the
// secure channel) without touching the commands.
//
// The plain-TCP implementation is a blocking socket with a deadline, used on the calling event loop thread while
// the caller holds the stripe locks of the keys it moves: this is what makes MIGRATE atomic per key, as redis's
// (blocking) migrateCommand is. Idle connections are cached per target, like redis's migrate socket cache.
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Synchronization

/// A reply read from a peer (RESP2).
public enum PeerReply: Sendable, Hashable {
    case simple(String)
    case error(String)
    case integer(Int)
    case bulk([UInt8]?)
    case array([PeerReply]?)

    /// The text of a simple or bulk reply.
    public var text: String? {
        switch self {
        case .simple(let text): return text
        case .bulk(let bytes?): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }
}

/// A peer request failed below the command level (connect, write, read, timeout, protocol).
public struct PeerLinkError: Error, Sendable, CustomStringConvertible {
    public let message: String
    /// Whether the deadline passed (redis does not retry a MIGRATE that timed out).
    public let isTimeout: Bool
    public init(_ message: String, isTimeout: Bool = false) {
        self.message = message
        self.isTimeout = isTimeout
    }
    public var description: String { message }
}

/// An open connection to a peer node that answers pipelined commands in order.
public protocol ClusterPeerConnection: AnyObject, Sendable {
    /// Sends `commands` (each an argument list) in one write and reads one reply per command, within `timeout` ms.
    func exchange(_ commands: [[[UInt8]]], timeout: Int) throws(PeerLinkError) -> [PeerReply]
    /// Closes the connection.
    func close()
}

/// Opens connections to peer nodes.
public protocol ClusterPeerTransport: Sendable {
    /// Connects to `host:port` within `timeout` ms.
    func connect(host: String, port: Int, timeout: Int) throws(PeerLinkError) -> any ClusterPeerConnection
}

/// A small cache of idle peer connections by `host:port` (a connection is taken out while in use).
public final class ClusterPeerPool: Sendable {
    private let transport: any ClusterPeerTransport
    private let idle = Mutex<[String: [any ClusterPeerConnection]]>([:])

    public init(transport: any ClusterPeerTransport = TCPPeerTransport()) {
        self.transport = transport
    }

    /// Runs `body` with a connection to `host:port` (cached or new). A connection on which `body` failed is closed;
    /// a failure on a cached connection that was not a timeout is retried once on a new one (the peer may have
    /// closed an idle link), as redis's MIGRATE does.
    public func withConnection<Result>(
        host: String, port: Int, timeout: Int, _ body: (any ClusterPeerConnection) throws(PeerLinkError) -> Result
    ) throws(PeerLinkError) -> Result {
        let name = "\(host):\(port)"
        let cached = idle.withLock { $0[name]?.popLast() }
        if let cached {
            do {
                let result = try body(cached)
                idle.withLock { $0[name, default: []].append(cached) }
                return result
            } catch {
                cached.close()
                if error.isTimeout { throw error }
            }
        }
        let connection = try transport.connect(host: host, port: port, timeout: timeout)
        do {
            let result = try body(connection)
            idle.withLock { $0[name, default: []].append(connection) }
            return result
        } catch {
            connection.close()
            throw error
        }
    }
}

/// Plain TCP to a peer (no secure channel).
public struct TCPPeerTransport: ClusterPeerTransport {
    public init() {}

    public func connect(host: String, port: Int, timeout: Int) throws(PeerLinkError) -> any ClusterPeerConnection {
        try TCPPeerConnection(host: host, port: port, timeout: timeout)
    }
}

/// A blocking TCP connection speaking RESP2.
final class TCPPeerConnection: ClusterPeerConnection, @unchecked Sendable {
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    private var position = 0

    init(host: String, port: Int, timeout: Int) throws(PeerLinkError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var info: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &info) == 0, let first = info else {
            throw PeerLinkError("cannot resolve \(host)")
        }
        defer { freeaddrinfo(info) }
        descriptor = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard descriptor >= 0 else { throw PeerLinkError("socket() failed: errno \(errno)") }
        // Non-blocking connect bounded by the timeout, then blocking I/O with poll deadlines.
        let flags = fcntl(descriptor, F_GETFL, 0)
        _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
        let result = Glibc.connect(descriptor, first.pointee.ai_addr, first.pointee.ai_addrlen)
        if result != 0 && errno != EINPROGRESS {
            let code = errno
            Glibc.close(descriptor)
            throw PeerLinkError("connect to \(host):\(port) failed: errno \(code)")
        }
        if result != 0 {
            guard wait(for: Int16(POLLOUT), timeout: timeout) else {
                Glibc.close(descriptor)
                throw PeerLinkError("connect to \(host):\(port) timed out", isTimeout: true)
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 {
                Glibc.close(descriptor)
                throw PeerLinkError("connect to \(host):\(port) failed: errno \(error)")
            }
        }
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close() }

    func close() {
        if descriptor >= 0 {
            Glibc.close(descriptor)
            descriptor = -1
        }
    }

    private func wait(for events: Int16, timeout: Int) -> Bool {
        var entry = pollfd(fd: descriptor, events: events, revents: 0)
        while true {
            let ready = poll(&entry, 1, Int32(clamping: timeout))
            if ready < 0 && errno == EINTR { continue }
            return ready > 0
        }
    }

    func exchange(_ commands: [[[UInt8]]], timeout: Int) throws(PeerLinkError) -> [PeerReply] {
        guard descriptor >= 0 else { throw PeerLinkError("connection closed") }
        var output: [UInt8] = []
        output.reserveCapacity(commands.reduce(0) { $0 + $1.reduce(16) { $0 + $1.count + 16 } })
        for command in commands {
            output.append(contentsOf: Array("*\(command.count)\r\n".utf8))
            for argument in command {
                output.append(contentsOf: Array("$\(argument.count)\r\n".utf8))
                output.append(contentsOf: argument)
                output.append(13)
                output.append(10)
            }
        }
        var written = 0
        while written < output.count {
            guard wait(for: Int16(POLLOUT), timeout: timeout) else { throw PeerLinkError("write timed out", isTimeout: true) }
            let count = output.withUnsafeBytes { send(descriptor, $0.baseAddress! + written, $0.count - written, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                throw PeerLinkError("write failed: errno \(errno)")
            }
            written += count
        }
        var replies: [PeerReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands { replies.append(try readReply(timeout: timeout)) }
        return replies
    }

    // MARK: reading

    private func fill(timeout: Int) throws(PeerLinkError) {
        if position > 0 && position == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            position = 0
        }
        guard wait(for: Int16(POLLIN), timeout: timeout) else { throw PeerLinkError("read timed out", isTimeout: true) }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress!, $0.count, 0) }
        if count == 0 { throw PeerLinkError("connection closed by peer") }
        if count < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            throw PeerLinkError("read failed: errno \(errno)")
        }
        buffer.append(contentsOf: chunk[0..<count])
    }

    private func readLine(timeout: Int) throws(PeerLinkError) -> String {
        while true {
            var index = position
            while index + 1 < buffer.count {
                if buffer[index] == 13 && buffer[index + 1] == 10 {
                    let line = String(decoding: buffer[position..<index], as: UTF8.self)
                    position = index + 2
                    return line
                }
                index += 1
            }
            try fill(timeout: timeout)
        }
    }

    private func readReply(timeout: Int) throws(PeerLinkError) -> PeerReply {
        let line = try readLine(timeout: timeout)
        guard let marker = line.first else { throw PeerLinkError("protocol error: empty line") }
        let rest = String(line.dropFirst())
        switch marker {
        case "+": return .simple(rest)
        case "-": return .error(rest)
        case ":":
            guard let value = Int(rest) else { throw PeerLinkError("protocol error: bad integer") }
            return .integer(value)
        case "$":
            guard let length = Int(rest) else { throw PeerLinkError("protocol error: bad bulk length") }
            if length < 0 { return .bulk(nil) }
            while buffer.count - position < length + 2 { try fill(timeout: timeout) }
            let bytes = Array(buffer[position..<(position + length)])
            position += length + 2
            return .bulk(bytes)
        case "*":
            guard let count = Int(rest) else { throw PeerLinkError("protocol error: bad array length") }
            if count < 0 { return .array(nil) }
            var elements: [PeerReply] = []
            for _ in 0..<count { elements.append(try readReply(timeout: timeout)) }
            return .array(elements)
        default:
            throw PeerLinkError("protocol error: unexpected '\(marker)'")
        }
    }
}
