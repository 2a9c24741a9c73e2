// ServeCommand: `cachectl serve` — the framework daemon: SQLite state in --data-dir, the local backend carving this
// machine into agents, the scheduler driver and the HTTP API, as one ServiceGroup that stops on SIGTERM/SIGINT.
// `FrameworkServer` assembles those services; `cachectl up` reuses it.

import ArgumentParser
import CacheFramework
import CacheFrameworkAPI
import CacheFrameworkMesos
import CacheFrameworkNFVRuntime
import CacheFrameworkRuntime
import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals

/// Flags describing the framework daemon (shared by `serve` and `up`).
struct ServeOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Directory for the state database, task sandboxes and framework.json.")
    var dataDirectory: String = "./cache-framework-data"

    @Option(help: "API address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "API port (0: any free port; the chosen one is printed and written to framework.json).")
    var port: Int = 7380

    @Option(help: "Bearer token the API requires (default: $CACHECTL_TOKEN; none: the API is open on loopback).")
    var token: String?

    @Option(help: "How many local agents to carve this machine into.")
    var agents: Int = 1

    @Option(name: .customLong("agent-cpus"), help: "CPUs per agent (default: the machine's CPUs split over the agents).")
    var agentCPUs: Double?

    @Option(name: .customLong("agent-mem-mb"), help: "Memory per agent in MB (default: the machine's memory split over the agents).")
    var agentMemMB: Double?

    @Option(name: .customLong("first-port"), help: "First task port; each agent gets --ports-per-agent ports from here.")
    var firstPort: UInt64 = 31_000

    @Option(name: .customLong("ports-per-agent"), help: "Ports per agent.")
    var portsPerAgent: UInt64 = 1_000

    @Option(name: .customLong("bin-dir"), help: "Where to look for cache-node first (default: next to cachectl).")
    var binDirectory: String?

    @Flag(name: .customLong("keep-tasks"), help: "Leave tasks running on shutdown, for a restarted framework to adopt.")
    var keepTasks = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error.")
    var logLevel: String = "notice"

    @Option(help: "etcd client URLs, comma-separated: run highly available (state in etcd; only the elected leader schedules).")
    var etcd: String?

    @Option(name: .customLong("instance-id"), help: "This instance's name in the leader election (default: hostname-pid).")
    var instanceID: String?

    @Option(name: .customLong("etcd-prefix"), help: "Key prefix of the framework's state and election key in etcd.")
    var etcdPrefix: String = "/cache-framework"

    @Option(name: .customLong("lease-ttl"), help: "Leader lease TTL in seconds: how long after a leader dies a standby takes over.")
    var leaseTTL: Int = 10

    @Option(name: .customLong("advertise-url"), help: "API URL standbys redirect clients to (default: http://<host>:<bound port>).")
    var advertiseURL: String?
    @Option(help: "A Mesos master, http://host:5050: run tasks on Mesos (v1 scheduler HTTP API) instead of local agents.")
    var master: String?

    @Option(name: .customLong("authority-dir"), help: "Directory of the cluster authority that issues members' replication identities (default: <data-dir>/authority). With --etcd the authority is kept in etcd and this is the leader's local copy.")
    var authorityDirectory: String?

    @Option(help: "How local tasks are isolated: process (loopback ports) or netns (root: a network namespace, IP and cgroup limits per task).")
    var isolation: String = LocalIsolation.process.rawValue

    @Option(name: .customLong("task-bridge"), help: "Bridge of --isolation netns (at most 10 characters); tasks get addresses in --task-subnet.")
    var taskBridge: String = "cfbr0"

    @Option(name: .customLong("task-subnet"), help: "The /16 of --isolation netns task addresses, as its first two octets (e.g. 10.213).")
    var taskSubnet: String = "10.213"

    /// The isolation mode the options name.
    func isolationMode() throws -> LocalIsolation {
        guard let mode = LocalIsolation(rawValue: isolation) else {
            throw ValidationError("--isolation '\(isolation)' is not one of: \(LocalIsolation.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return mode
    }

    /// The namespace network the options name.
    func taskNetwork() throws -> NamespaceNetwork {
        let octets = taskSubnet.split(separator: ".").compactMap { UInt8($0) }
        guard octets.count == 2 else {
            throw ValidationError("--task-subnet '\(taskSubnet)' must be the first two octets of a /16, such as 10.213")
        }
        return NamespaceNetwork(bridge: taskBridge, prefix: (octets[0], octets[1]))
    }

    /// Where the cluster authority lives.
    func authorityPath(dataDirectory: String) -> String {
        authorityDirectory.map { ($0 as NSString).standardizingPath } ?? dataDirectory + "/authority"
    }

    func validate() throws {
        guard agents >= 1 else { throw ValidationError("--agents must be at least 1") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        guard firstPort + UInt64(agents) * portsPerAgent <= 65536 else {
            throw ValidationError("--first-port + agents × --ports-per-agent exceeds 65535")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        if etcd != nil {
            guard leaseTTL >= 2 else { throw ValidationError("--lease-ttl must be at least 2 seconds (etcd's minimum lease)") }
            guard etcdPrefix.hasPrefix("/") else { throw ValidationError("--etcd-prefix must start with /") }
        }
        if let master, MasterURL(master) == nil { throw ValidationError("--master must look like http://host:5050") }
    }
}

/// The assembled framework of one instance: SQLite store, `FrameworkAssembly` (backend, NFV, driver), API.
struct FrameworkServer {
    let driver: FrameworkDriver
    let nfv: NFVManager
    let nfvHealth: NFVHealthMonitor
    let nfvMetrics: NFVMetricsCollector
    let application: Application<RouterResponder<BasicRequestContext>>
    let options: ServeOptions
    let token: String?

    init(options: ServeOptions, onListening: @escaping @Sendable (Int) async -> Void) throws {
        self.options = options
        var logger = Logger(label: "cachectl.serve")
        logger.logLevel = Logger.Level(rawValue: options.logLevel) ?? .notice
        let dataDirectory = (options.dataDirectory as NSString).standardizingPath
        let store = try SQLiteStateStore(directory: dataDirectory)
        token = options.token ?? ProcessInfo.processInfo.environment["CACHECTL_TOKEN"]
        let assembly = try FrameworkAssembly(
            options: options, dataDirectory: dataDirectory, store: store, journal: store,
            nfvStore: try SQLiteNFVStore(directory: dataDirectory), keepTasksOnShutdown: options.keepTasks,
            registry: PrometheusCollectorRegistry(), token: token, logger: logger)
        driver = assembly.driver
        nfv = assembly.nfv
        nfvHealth = assembly.nfvHealth
        nfvMetrics = assembly.nfvMetrics
        let router = assembly.router
        let token = token
        application = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(options.host, port: options.port), serverName: "cachectl"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? options.port
                let file = FrameworkEndpointFile(
                    url: "http://\(options.host):\(port)", token: token, pid: ProcessInfo.processInfo.processIdentifier)
                if let data = try? JSONEncoder().encode(file) {
                    let path = FrameworkEndpointFile.path(dataDirectory: dataDirectory)
                    _ = FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600])
                }
                await onListening(port)
            },
            logger: logger)
    }

    /// Runs until SIGTERM/SIGINT; `alongside` runs as one more service (for `up`).
    func run(alongside extra: [any Service] = []) async throws {
        var logger = Logger(label: "cachectl.services")
        logger.logLevel = .warning
        // The API stops first, then the driver (which stops or leaves the tasks).
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: nfv), .init(service: nfvHealth), .init(service: nfvMetrics), .init(service: driver), .init(service: application)]
                    + extra.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        try? FileManager.default.removeItem(atPath: FrameworkEndpointFile.path(dataDirectory: (options.dataDirectory as NSString).standardizingPath))
    }
}

extension Cachectl {
    struct ServeCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Run the framework daemon with the local backend and the HTTP API.",
            discussion: "Tasks run as child processes on loopback ports (no isolation yet). " + ExitStatus.help)

        @OptionGroup var options: ServeOptions

        func run() async throws {
            if options.etcd != nil {
                // High availability: election in etcd, the driver only while leading (HAFrameworkServer.swift).
                try await HAFrameworkServer(options: options).run()
                return
            }
            let server = try FrameworkServer(options: options) { port in
                print("cachectl serve: API on http://\(options.host):\(port) (data dir \(options.dataDirectory))")
                fflush(nil)
            }
            try await server.run()
        }
    }
}
