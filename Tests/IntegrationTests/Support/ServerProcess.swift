// Starts a Redis-compatible server executable (redis-server, cache-node) on a free loopback port for
// an integration test, waits until it answers PING through hiredis, and terminates it afterwards.
// It uses posix_spawn rather than Foundation.Process: the child gets an empty signal mask and default
// signal dispositions (a child of a test runner thread can otherwise inherit SIGTERM blocked and never
// stop), and waitpid does not depend on a run loop.
import CHiredis
import Foundation
import LoopbackTestSupport

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
    private var pid: pid_t
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
            let port = try LoopbackSocket.freeLoopbackPort()
            let logURL = FileManager.default.temporaryDirectory
                .appendingPathComponent("server-\(port)-\(ProcessInfo.processInfo.processIdentifier).log")
            _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
            let arguments = [executable, "--port", String(port), "--bind", host] + extraArguments
            let pid = try Self.spawn(arguments, logPath: logURL.path)
            for _ in 0..<readinessAttempts {
                guard Self.isRunning(pid) else { break }
                if let client = try? HiredisClient(host: host, port: port, timeoutMilliseconds: 500),
                    (try? client.command(["PING"])) == .status("PONG")
                {
                    self.port = port
                    self.pid = pid
                    self.logURL = logURL
                    return
                }
                usleep(retryDelayMicroseconds)
            }
            lastOutput = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
            Self.terminate(pid)
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

    /// Sends SIGTERM, waits for the process to exit (SIGKILL after about 5 s) and removes its log.
    func stop() {
        if pid > 0 {
            Self.terminate(pid)
            pid = 0
        }
        try? FileManager.default.removeItem(at: logURL)
    }

    /// Starts `arguments[0]` with `arguments`, stdout and stderr appended to `logPath` (signals at their defaults,
    /// stdin from /dev/null). Other harnesses that need a bare pid (to SIGKILL and reap it themselves) use it too.
    static func spawn(_ arguments: [String], logPath: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaultSignals, signal) }
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, arguments[0], &actions, &attributes, &argv, environ)
        guard status == 0 else {
            throw ServerProcessError(message: "posix_spawn \(arguments[0]) failed: \(String(cString: strerror(status)))")
        }
        return pid
    }

    /// Whether `pid` is still running (reaps it if it exited).
    private static func isRunning(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }

    /// SIGTERM, then up to ~5 s of polling, then SIGKILL; always reaps the child.
    private static func terminate(_ pid: pid_t) {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == 0 else { return }
        kill(pid, SIGTERM)
        for _ in 0..<500 {
            if waitpid(pid, &status, WNOHANG) != 0 { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
    }
}
