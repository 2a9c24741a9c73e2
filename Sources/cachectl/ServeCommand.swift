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

    @Option(name: .customLong("authority-dir"), help: "Directory of the cluster authority that issues members' replication identities (default: <data-dir>/authority). Instances of one HA framework must share it.")
    var authorityDirectory: String?

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
        if etcd != nil && master != nil {
            throw ValidationError("--etcd with --master is not supported yet: high availability runs the local backend; run the Mesos backend as one instance (its framework id survives restarts)")
        }
    }
}

/// The assembled framework: store, local backend, driver, API.
struct FrameworkServer {
    let driver: FrameworkDriver
    let nfv: NFVManager
    let application: Application<RouterResponder<BasicRequestContext>>
    let options: ServeOptions
    let token: String?

    init(options: ServeOptions, onListening: @escaping @Sendable (Int) async -> Void) throws {
        self.options = options
        var logger = Logger(label: "cachectl.serve")
        logger.logLevel = Logger.Level(rawValue: options.logLevel) ?? .notice
        let dataDirectory = (options.dataDirectory as NSString).standardizingPath
        let store = try SQLiteStateStore(directory: dataDirectory)
        let machine = LocalProcess.machineResources()
        let agents = LocalAgentSpec.split(
            count: options.agents, cpus: options.agentCPUs.map { $0 * Double(options.agents) } ?? machine.cpus,
            memMB: options.agentMemMB.map { $0 * Double(options.agents) } ?? machine.memMB,
            firstPort: options.firstPort, portsPerAgent: options.portsPerAgent)
        let binDirectory = options.binDirectory
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let control = RESPNodeControl(timeout: .seconds(1))
        // A restarted framework keeps its framework id, so the backend's journal and the store agree.
        let frameworkID = FrameworkID("cachectl-\(ProcessInfo.processInfo.hostName)")
        let backend: any DriverBackend
        if let master = options.master.flatMap(MasterURL.init) {
            // On Mesos the framework id comes from the master and is kept in the store for resubscription.
            backend = MesosBackend(
                configuration: MesosBackendConfiguration(master: master),
                loadFrameworkID: { try await store.load().frameworkID }, logger: logger)
        } else {
            backend = LocalBackend(
                configuration: LocalBackendConfiguration(
                    agents: agents, sandboxDirectory: dataDirectory + "/sandboxes", executableSearchPaths: [binDirectory],
                    offerInterval: .milliseconds(500)),
                journal: store, frameworkID: frameworkID, logger: logger,
                readiness: NFVHealth.readiness(fallback: control.pingReadiness()))
        }
        // NFV shares the backend's offers: the router hands each round to the NFV manager first (see NFVOfferRouter).
        // VNF instances get identities (role vnf) from the same authority; it revokes them when their tasks end.
        let vnfAuthority = try FrameworkAuthority(directory: options.authorityPath(dataDirectory: dataDirectory))
        nfv = NFVManager(backend: backend, store: try SQLiteNFVStore(directory: dataDirectory), logger: logger, authority: vnfAuthority)
        let registry = PrometheusCollectorRegistry()
        var configuration = FrameworkDriver.Configuration()
        configuration.keepTasksOnShutdown = options.keepTasks
        configuration.tickInterval = .milliseconds(500)
        // The cluster authority that issues members their replication identities (created on first start).
        let authority = vnfAuthority
        driver = FrameworkDriver(
            backend: NFVOfferRouter(base: backend, manager: nfv), store: store, control: control, configuration: configuration,
            metricsFactory: PrometheusMetricsFactory(registry: registry), logger: logger, credentials: authority)
        token = options.token ?? ProcessInfo.processInfo.environment["CACHECTL_TOKEN"]
        let router = FrameworkAPI.router(driver: driver, registry: registry, token: token)
        FrameworkAPI.addNFVRoutes(to: router, manager: nfv, token: token)
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
                services: [.init(service: nfv), .init(service: driver), .init(service: application)] + extra.map { .init(service: $0) },
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
