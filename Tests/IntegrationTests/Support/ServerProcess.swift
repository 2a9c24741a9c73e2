// Starts a Redis-compatible server executable (redis-server, cache-node) on a free loopback port for
// an integration test, waits until it answers PING through hiredis, and terminates it afterwards.
import CHiredis
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Why a server could not be started.
struct ServerProcessError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A server child process listening on `127.0.0.1:port`. Terminated by `stop()` or on deinit.
final class ServerProcess {
    let executable: String
    let port: Int
    let host = "127.0.0.1"
    private let process: Process
    private let logURL: URL

    /// Starts `executable --port P --bind 127.0.0.1 <extraArguments>` on a free port and waits until it
    /// answers PING (up to `readinessAttempts` tries, `retryDelayMicroseconds` apart). If the server exits
    /// before answering (e.g. another process took the port meanwhile), it retries on a new port, up to
    /// `launchAttempts` times.
    /// - Parameters:
    ///   - executable: path of the server binary, e.g. `/usr/bin/redis-server`.
    ///   - extraArguments: further flags, e.g. `["--save", "", "--appendonly", "no"]`.
    init(
        executable: String, extraArguments: [String] = [], launchAttempts: Int = 3, readinessAttempts: Int = 200,
        retryDelayMicroseconds: UInt32 = 25_000
    ) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ServerProcessError(message: "\(executable) is not an executable file; install it or fix the path")
        }
        self.executable = executable
        var lastOutput = ""
        for _ in 0..<max(1, launchAttempts) {
            let port = try Self.freeLoopbackPort()
            let logURL = FileManager.default.temporaryDirectory
                .appendingPathComponent("server-\(port)-\(ProcessInfo.processInfo.processIdentifier).log")
            _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
            let log = try FileHandle(forWritingTo: logURL)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["--port", String(port), "--bind", host] + extraArguments
            process.standardOutput = log
            process.standardError = log
            process.currentDirectoryURL = FileManager.default.temporaryDirectory
            try process.run()
            try log.close()
            for _ in 0..<readinessAttempts {
                guard process.isRunning else { break }
                if let client = try? HiredisClient(host: host, port: port, timeoutMilliseconds: 500),
                    (try? client.command(["PING"])) == .status("PONG")
                {
                    self.port = port
                    self.process = process
                    self.logURL = logURL
                    return
                }
                usleep(retryDelayMicroseconds)
            }
            lastOutput = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
            try? FileManager.default.removeItem(at: logURL)
        }
        throw ServerProcessError(
            message: "\(executable) did not answer PING on \(host) after \(launchAttempts) launches; its output:\n"
                + String(lastOutput.suffix(2_000)))
    }

    deinit { stop() }

    /// A new client connected to this server.
    func connect() throws -> HiredisClient {
        try HiredisClient(host: host, port: port)
    }

    /// Sends SIGTERM and waits for the process to exit.
    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: logURL)
    }

    /// A loopback TCP port that was free a moment ago (bind to port 0, read it back, close).
    static func freeLoopbackPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ServerProcessError(message: "socket() failed: errno \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw ServerProcessError(message: "bind(127.0.0.1:0) failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { throw ServerProcessError(message: "getsockname failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
