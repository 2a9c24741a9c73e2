// Blocking TCP sockets on loopback for tests that talk to a real server byte by byte (raw RESP, HTTP/1.0, a VNF
// chain's echo), a free-port finder, and a one-shot exchange (send, half-close, read until closed). Plain POSIX, no
// package dependencies; give reads a receive timeout so a missing reply fails a test instead of hanging it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A socket call that failed: which one, its errno and the endpoint it was for.
public struct LoopbackSocketError: Error, CustomStringConvertible {
    /// The failing step: `socket`, `connect`, `send`, `recv`, `bind`, `getsockname` or `parse endpoint`.
    public let operation: String
    /// errno after the call (0 when no system call failed, e.g. an unparsable endpoint).
    public let code: Int32
    /// `host:port` the socket was for.
    public let endpoint: String

    /// Whether this is a `recv` or `send` that ran out of its socket timeout (EAGAIN/EWOULDBLOCK).
    public var isTimeout: Bool { code == EAGAIN || code == EWOULDBLOCK }

    /// `<operation> <endpoint> failed: errno <code> (<strerror>)`.
    public var description: String {
        guard code != 0 else { return "\(operation) \(endpoint) failed" }
        let reason = String(cString: strerror(code)) + (isTimeout ? ", the socket timeout expired" : "")
        return "\(operation) \(endpoint) failed: errno \(code) (\(reason))"
    }
}

/// A connected, blocking IPv4 TCP socket. Closed by `close()` or on deinit.
public final class LoopbackSocket {
    /// The file descriptor; -1 once closed.
    public private(set) var descriptor: Int32
    /// `host:port` it is connected to (for error messages).
    public let endpoint: String

    /// Connects to `host:port` (an IPv4 address). The timeouts (none when nil) are set before connecting, so
    /// `sendTimeout` also bounds the connect; a read past `receiveTimeout` throws from `receive(maxBytes:)`.
    public init(host: String = "127.0.0.1", port: Int, receiveTimeout: Duration? = nil, sendTimeout: Duration? = nil) throws {
        endpoint = "\(host):\(port)"
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        guard let port = UInt16(exactly: port), inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw LoopbackSocketError(operation: "parse endpoint", code: 0, endpoint: endpoint)
        }
        address.sin_port = port.bigEndian
        descriptor = streamSocket()
        guard descriptor >= 0 else { throw LoopbackSocketError(operation: "socket", code: errno, endpoint: endpoint) }
        if let receiveTimeout { setTimeout(SO_RCVTIMEO, receiveTimeout) }
        if let sendTimeout { setTimeout(SO_SNDTIMEO, sendTimeout) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let error = LoopbackSocketError(operation: "connect", code: errno, endpoint: endpoint)
            close()
            throw error
        }
    }

    /// Connects to `endpoint`, `"host:port"` (split at the last colon); see `init(host:port:receiveTimeout:sendTimeout:)`.
    public convenience init(endpoint: String, receiveTimeout: Duration? = nil, sendTimeout: Duration? = nil) throws {
        guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else {
            throw LoopbackSocketError(operation: "parse endpoint", code: 0, endpoint: endpoint)
        }
        try self.init(host: String(endpoint[..<colon]), port: port, receiveTimeout: receiveTimeout, sendTimeout: sendTimeout)
    }

    deinit { close() }

    private func setTimeout(_ option: Int32, _ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: suseconds_t(attoseconds / 1_000_000_000_000))
        setsockopt(descriptor, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Writes all of `bytes`, looping over partial writes (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE).
    /// Throws on the first failed `send`, including one past the send timeout.
    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { sendWithoutSignal(descriptor, $0) }
            guard written > 0 else { throw LoopbackSocketError(operation: "send", code: errno, endpoint: endpoint) }
            offset += written
        }
    }

    /// Writes all of `text`'s UTF-8 bytes; see `send(_:)`.
    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// One `recv` of up to `maxBytes`: what arrived, or `[]` when the peer closed. Throws a `LoopbackSocketError`
    /// when the receive timeout expires (`isTimeout`) or `recv` fails (ECONNRESET after a reset, say).
    public func receive(maxBytes: Int = 64 * 1024) throws -> [UInt8] {
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: maxBytes) { buffer, initialized in
            let count = recv(descriptor, buffer.baseAddress, maxBytes, 0)
            if count < 0 { failure = errno }
            initialized = max(count, 0)
        }
        guard failure == 0 else { throw LoopbackSocketError(operation: "recv", code: failure, endpoint: endpoint) }
        return bytes
    }

    /// Reads until at least `count` bytes arrived, the peer closed, the receive timeout expired or `recv` failed;
    /// returns what arrived (never throws: compare it with what was expected).
    public func receive(atLeast count: Int) -> [UInt8] {
        var received: [UInt8] = []
        while received.count < count, let chunk = try? receive(), !chunk.isEmpty {
            received += chunk
        }
        return received
    }

    /// Reads until the peer closes (or the receive timeout expires, or `recv` fails); returns what arrived.
    public func receiveUntilClosed() -> [UInt8] { receive(atLeast: .max) }

    /// Half-closes: sends FIN, reading stays open.
    public func shutdownWrite() { systemShutdown(descriptor, Int32(SHUT_WR)) }

    /// Shuts down both directions now (the peer sees the client go away); the descriptor stays open until `close()`.
    public func shutdown() { systemShutdown(descriptor, Int32(SHUT_RDWR)) }

    /// Makes the next `close()` send a reset instead of a FIN (SO_LINGER with a zero timeout).
    public func resetOnClose() {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
    }

    /// Closes the descriptor; later calls do nothing.
    public func close() {
        guard descriptor >= 0 else { return }
        systemClose(descriptor)
        descriptor = -1
    }

    /// A loopback TCP port that was free a moment ago (bound on 127.0.0.1:0, read back, closed again).
    public static func freeLoopbackPort() throws -> Int {
        let descriptor = streamSocket()
        guard descriptor >= 0 else { throw LoopbackSocketError(operation: "socket", code: errno, endpoint: "127.0.0.1:0") }
        defer { systemClose(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else { throw LoopbackSocketError(operation: "bind", code: errno, endpoint: "127.0.0.1:0") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { throw LoopbackSocketError(operation: "getsockname", code: errno, endpoint: "127.0.0.1:0") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Connects to `endpoint` (`"host:port"`), sends `message`, half-closes and returns everything read until the
    /// peer closes or `timeoutSeconds` pass without data; `""` if the connection is refused or cannot be made.
    public static func exchange(endpoint: String, message: String, timeoutSeconds: Int = 3) -> String {
        guard let socket = try? LoopbackSocket(endpoint: endpoint, receiveTimeout: .seconds(timeoutSeconds)) else { return "" }
        try? socket.send(message)
        socket.shutdownWrite()
        return String(decoding: socket.receiveUntilClosed(), as: UTF8.self)
    }
}

// The C calls, at file scope where LoopbackSocket's methods of the same names do not shadow them.

private func streamSocket() -> Int32 {
    #if canImport(Glibc)
    socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    socket(AF_INET, SOCK_STREAM, 0)
    #endif
}

private func sendWithoutSignal(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
    #if canImport(Glibc)
    send(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
    #else
    send(descriptor, bytes.baseAddress, bytes.count, 0)
    #endif
}

private func systemShutdown(_ descriptor: Int32, _ how: Int32) { _ = shutdown(descriptor, how) }

private func systemClose(_ descriptor: Int32) { _ = close(descriptor) }
