// Real etcd for tests: starts one member or a cluster of several (Debian's `etcd` 3.4) on free loopback ports with
// their own temporary data directories, waits until every member reports healthy, kills single members on request
// (SIGKILL) and everything at the end. Never uses etcd's default ports 2379/2380.
public import Foundation
import LoopbackTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Why etcd could not be started.
public struct EtcdClusterError: Error, CustomStringConvertible {
    public var description: String
    /// A member exited because a port planned for it was taken in the meantime (worth retrying with other ports).
    public var portWasTaken = false

    public init(description: String, portWasTaken: Bool = false) {
        self.description = description
        self.portWasTaken = portWasTaken
    }
}

/// One or more etcd members on loopback, stopped and deleted by `stop()` or on deinit.
public final class EtcdCluster: @unchecked Sendable {
    /// One member.
    public struct Member: Sendable {
        public var name: String
        public var clientURL: String
        public var peerURL: String
        public var dataDirectory: String
        public var logPath: String
        public var pid: pid_t
    }

    /// The etcd executable (`ETCD_BIN` or /usr/bin/etcd).
    public static var executable: String { ProcessInfo.processInfo.environment["ETCD_BIN"] ?? "/usr/bin/etcd" }

    /// The members, in start order.
    public private(set) var members: [Member] = []
    private let directory: String

    /// Client URLs of every member (also of killed ones), in order.
    public var endpoints: [String] { members.map(\.clientURL) }

    /// The address clients outside loopback reach the members on (`extraClientHost`), if any.
    public let extraClientHost: String?

    /// Client URLs of every member on `extraClientHost` (same ports as `endpoints`).
    public var extraEndpoints: [String] {
        guard let host = extraClientHost else { return [] }
        return endpoints.map { "http://\(host):\($0.split(separator: ":").last!)" }
    }

    /// Starts `size` members forming one cluster and waits (up to `timeout` seconds) until each is healthy.
    /// `extraClientHost`: another local address (say, the host end of a veth pair into a test's network namespace) the
    /// members also serve clients on, at the same ports.
    public init(size: Int = 1, timeout: TimeInterval = 30, extraClientHost: String? = nil) throws {
        self.extraClientHost = extraClientHost
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw EtcdClusterError(description: "\(Self.executable) not found: install Debian's etcd-server (scripts/install-deps.sh)")
        }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("etcd-test-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A port found free can be taken before etcd binds it (by another suite's process or a client's source
        // port); a member that exits saying so is retried with fresh ports, up to three attempts.
        for attempt in 1...3 {
            do {
                try startMembers(size: size, deadline: Date().addingTimeInterval(timeout))
                return
            } catch let error as EtcdClusterError where error.portWasTaken && attempt < 3 {
                stop()
                members = []
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
        }
    }

    private func startMembers(size: Int, deadline: Date) throws {
        let token = "cf-test-\(UUID().uuidString.prefix(8))"
        var planned: [(name: String, client: Int, peer: Int)] = []
        var taken: Set<Int> = []
        for index in 0..<size {
            var client = try Self.freeLoopbackPort()
            while taken.contains(client) { client = try Self.freeLoopbackPort() }
            taken.insert(client)
            var peer = try Self.freeLoopbackPort()
            while taken.contains(peer) { peer = try Self.freeLoopbackPort() }
            taken.insert(peer)
            planned.append(("m\(index)", client, peer))
        }
        let initialCluster = planned.map { "\($0.name)=http://127.0.0.1:\($0.peer)" }.joined(separator: ",")
        for member in planned {
            let dataDirectory = directory + "/" + member.name
            let logPath = directory + "/" + member.name + ".log"
            let clientURL = "http://127.0.0.1:\(member.client)"
            let clientURLs = [clientURL] + (extraClientHost.map { ["http://\($0):\(member.client)"] } ?? [])
            let peerURL = "http://127.0.0.1:\(member.peer)"
            let arguments = [
                Self.executable, "--name", member.name, "--data-dir", dataDirectory,
                "--listen-client-urls", clientURLs.joined(separator: ","),
                "--advertise-client-urls", clientURLs.joined(separator: ","),
                "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
                "--initial-cluster", initialCluster, "--initial-cluster-token", token, "--initial-cluster-state", "new",
                "--heartbeat-interval", "100", "--election-timeout", "1000",
            ]
            let pid = try Self.spawn(arguments, logPath: logPath)
            members.append(Member(name: member.name, clientURL: clientURL, peerURL: peerURL, dataDirectory: dataDirectory, logPath: logPath, pid: pid))
        }
        for member in members {
            while !Self.isHealthy(member.clientURL) {
                guard Date() < deadline, Self.isRunning(member.pid) else {
                    let log = (try? String(contentsOfFile: member.logPath, encoding: .utf8)) ?? ""
                    stop()
                    throw EtcdClusterError(
                        description: "etcd member \(member.name) did not become healthy; its log:\n\(log.suffix(3000))",
                        portWasTaken: log.contains("address already in use"))
                }
                usleep(50_000)
            }
        }
    }

    deinit { stop() }

    /// SIGKILLs member `index` and reaps it.
    public func kill(member index: Int) {
        guard members[index].pid > 0 else { return }
        Glibc.kill(members[index].pid, SIGKILL)
        var status: Int32 = 0
        waitpid(members[index].pid, &status, 0)
        members[index].pid = 0
    }

    /// Whether member `index` answers `/health` with a leader in the cluster.
    public func isHealthy(member index: Int) -> Bool { Self.isHealthy(members[index].clientURL) }

    /// Kills every member and deletes the data directories.
    public func stop() {
        for index in members.indices { kill(member: index) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `GET /health` answered `"health":"true"` (etcd 3.4: the member has a leader).
    static func isHealthy(_ clientURL: String) -> Bool {
        guard let port = Int(clientURL.split(separator: ":").last ?? "") else { return false }
        guard let answer = try? httpGet(port: port, path: "/health") else { return false }
        return answer.contains("\"health\":\"true\"")
    }

    /// A blocking HTTP/1.0 GET on 127.0.0.1 (one second timeouts); returns the whole answer.
    public static func httpGet(port: Int, path: String) throws -> String {
        let socket = try LoopbackSocket(port: port, receiveTimeout: .seconds(1), sendTimeout: .seconds(1))
        try socket.send("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        return String(decoding: socket.receiveUntilClosed(), as: UTF8.self)
    }

    /// A loopback TCP port that was free a moment ago, never etcd's default 2379 or 2380.
    public static func freeLoopbackPort() throws -> Int {
        let port = try LoopbackSocket.freeLoopbackPort()
        return port == 2379 || port == 2380 ? try freeLoopbackPort() : port
    }

    /// Starts `arguments` with stdout and stderr appended to `logPath`, signals at their defaults, stdin /dev/null.
    public static func spawn(_ arguments: [String], logPath: String) throws -> pid_t {
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
            throw EtcdClusterError(description: "posix_spawn \(arguments[0]) failed: \(String(cString: strerror(status)))")
        }
        return pid
    }

    /// Whether `pid` still runs (reaps it if it exited).
    public static func isRunning(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return pid > 0 && waitpid(pid, &status, WNOHANG) == 0
    }
}
