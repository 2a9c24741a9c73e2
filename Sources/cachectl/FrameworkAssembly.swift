// FrameworkAssembly: the one place that builds a framework instance's scheduling parts from `ServeOptions` — the
// backend (local agents, or Mesos with `--master`), the NFV manager and the offer router in front of the backend,
// the NFV health monitor and metrics collector (auto-heal, auto-scale), the cluster authority, the driver and the API
// router. `FrameworkServer` (one instance, SQLite) builds it once at
// start; an `HAFrameworkServer` leader builds it for each term over the fenced etcd stores. Only the stores and
// whether tasks outlive the driver differ between the two.

import CacheFramework
import CacheFrameworkAPI
import CacheFrameworkMesos
import CacheFrameworkNFV
import CacheFrameworkNFVRuntime
import CacheFrameworkRuntime
import Foundation
import Hummingbird
import Logging
import Prometheus

/// A framework instance's scheduling parts, wired the same way for `serve` and for an HA leader.
struct FrameworkAssembly {
    /// The backend the NFV manager acts on (the router wraps it for the driver).
    let backend: any DriverBackend
    let nfv: NFVManager
    /// Periodic VNFC health checks (auto-heal).
    let nfvHealth: NFVHealthMonitor
    /// Monitoring parameters (auto-scale).
    let nfvMetrics: NFVMetricsCollector
    let driver: FrameworkDriver
    /// The API: framework and NFV routes.
    let router: Router<BasicRequestContext>

    /// Builds the parts.
    /// - Parameters:
    ///   - store: the scheduler's state (SQLite, or etcd fenced by the leader's term); on Mesos it also holds the
    ///     framework id the backend resubscribes with, so a restarted instance or a new leader fails over the same
    ///     framework.
    ///   - journal: the local backend's process journal (unused on Mesos).
    ///   - nfvStore: the NFV lifecycle state.
    ///   - keepTasksOnShutdown: leave tasks running when the driver stops (always for an HA leader).
    init(
        options: ServeOptions, dataDirectory: String, store: any StateStore, journal: any LocalTaskJournal,
        nfvStore: any NFVStore, keepTasksOnShutdown: Bool, registry: PrometheusCollectorRegistry, token: String?,
        logger: Logger
    ) throws {
        let control = RESPNodeControl(timeout: .seconds(1))
        if let master = options.master.flatMap(MasterURL.init) {
            // On Mesos the framework id comes from the master and is kept in the store for resubscription.
            backend = MesosBackend(
                configuration: MesosBackendConfiguration(master: master),
                loadFrameworkID: { try await store.load().frameworkID }, logger: logger)
        } else {
            let machine = LocalProcess.machineResources()
            let agents = LocalAgentSpec.split(
                count: options.agents, cpus: options.agentCPUs.map { $0 * Double(options.agents) } ?? machine.cpus,
                memMB: options.agentMemMB.map { $0 * Double(options.agents) } ?? machine.memMB,
                firstPort: options.firstPort, portsPerAgent: options.portsPerAgent)
            let binDirectory = options.binDirectory
                ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
            // Every start (and every HA leader) registers the same framework id, so the journal and the store agree.
            let frameworkID = FrameworkID("cachectl-\(ProcessInfo.processInfo.hostName)")
            backend = LocalBackend(
                configuration: LocalBackendConfiguration(
                    agents: agents, sandboxDirectory: dataDirectory + "/sandboxes", executableSearchPaths: [binDirectory],
                    isolation: try options.isolationMode(), network: try options.taskNetwork(), offerInterval: .milliseconds(500)),
                journal: journal, frameworkID: frameworkID, logger: logger,
                readiness: NFVHealth.readiness(fallback: control.pingReadiness()))
        }
        // The cluster authority that issues members their replication identities and VNF instances theirs (role vnf),
        // and revokes them when their tasks end (created on first start). Under HA it is loaded only while leading,
        // after `EtcdAuthorityStore` wrote the one kept in etcd to this directory, so members issued by one leader
        // trust those issued by the next.
        let authority = try FrameworkAuthority(directory: options.authorityPath(dataDirectory: dataDirectory))
        // NFV shares the backend's offers: the router hands each round to the NFV manager first (see NFVOfferRouter).
        var nfvConfiguration = NFVManager.Configuration()
        nfvConfiguration.linksDirectory = dataDirectory + "/nfv-links"
        nfv = NFVManager(backend: backend, store: nfvStore, configuration: nfvConfiguration, logger: logger, authority: authority)
        nfvHealth = NFVHealthMonitor(manager: nfv, logger: logger)
        nfvMetrics = NFVMetricsCollector(manager: nfv, logger: logger)
        var configuration = FrameworkDriver.Configuration()
        configuration.keepTasksOnShutdown = keepTasksOnShutdown
        configuration.tickInterval = .milliseconds(500)
        // On Mesos a member of a cluster with persistence keeps its data on a persistent volume of its agent: a lost
        // member is relaunched there (TaskTemplate.volumeLabel, MesosBackend.accept).
        configuration.scheduler.pinPersistentMembers = options.master != nil
        driver = FrameworkDriver(
            backend: NFVOfferRouter(base: backend, manager: nfv), store: store, control: control, configuration: configuration,
            metricsFactory: PrometheusMetricsFactory(registry: registry), logger: logger, credentials: authority)
        let health = nfvHealth
        router = FrameworkAPI.router(
            driver: driver, registry: registry, token: token, nfv: nfv, vnfHealth: { health.health() })
        FrameworkAPI.addNFVRoutes(to: router, manager: nfv, token: token)
    }
}
