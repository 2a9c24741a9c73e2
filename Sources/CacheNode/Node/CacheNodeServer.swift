// Assembles a running node: the state, one event loop per core, the RESP listener and housekeeping, in a
// ServiceGroup that stops on SIGTERM/SIGINT or SHUTDOWN.
import CProcessStats
import Foundation
#if canImport(Glibc)
import Glibc
#endif
public import Logging
import NIOCore
import NIOPosix
import RESPServer
import ServiceLifecycle
import Synchronization

/// Runs a cache node until it is asked to stop (SHUTDOWN, SIGTERM or SIGINT).
public enum CacheNodeServer {
    /// Starts the node with `configuration` and returns when it has shut down.
    /// - Parameters:
    ///   - configuration: redis-style settings.
    ///   - logger: where start-up, shutdown and errors go.
    ///   - onReady: called with the bound port once the node accepts connections.
    public static func run(
        configuration: NodeConfiguration, logger: Logger, onReady: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws {
        let node = NodeState(configuration: configuration)
        try node.loadUsersAtStartup()
        for (name, value) in RedisCompatibilityDirective.changed(in: configuration) {
            if RedisCompatibilityDirective.all.first(where: { $0.name == name })?.isEncodingThreshold == true {
                logger.notice("'\(name) \(value)' is accepted for redis.conf compatibility: it sets only the encoding OBJECT ENCODING reports (cache-node picks its own representations)")
            } else {
                logger.notice("'\(name) \(value)' is accepted for redis.conf compatibility and has no effect in cache-node")
            }
        }
        // As redis: a pid file for init scripts and supervisors; failing to write it is a warning, not a stop.
        if let pidFile = configuration.pidFile {
            do {
                try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
            } catch {
                logger.warning("Failed to write PID file \(pidFile): \(error.localizedDescription)")
            }
        }
        defer { if let pidFile = configuration.pidFile { unlink(pidFile) } }
        // Load the snapshot before accepting connections; a damaged file stops the start (never a partial load).
        let loadStart = ContinuousClock.now
        // With the AOF on and an AOF on disk, it is the source of truth (as redis); otherwise the snapshot.
        if configuration.appendOnly, let loaded = try node.appendOnly.loadAtStartup(node: node, logger: logger) {
            logger.notice("DB loaded from append only file: \(ContinuousClock.now - loadStart)", metadata: [
                "base keys": "\(loaded.baseKeys)", "commands": "\(loaded.commands)"])
        } else if let loaded = try node.persistence.loadAtStartup(node: node) {
            logger.notice("DB loaded from disk: \(ContinuousClock.now - loadStart)", metadata: [
                "keys": "\(loaded.records)", "expired": "\(loaded.skipped)", "bytes": "\(loaded.bytes)"])
            // A replica resumes from the position its snapshot matches. A primary does not: after a crash its
            // snapshot is older than what its replicas may hold, so it starts a new history (fresh replication id).
            if configuration.replicaOf != nil,
               let position = node.replication.restoreReplicaPosition(from: loaded.auxiliary, keyspace: node.keyspace) {
                logger.notice("Snapshot matches replication id \(position.replid) at offset \(position.offset); asking the primary for a partial resync from there")
            }
        }
        // Opens the AOF for appending, or creates it from the loaded data (a rewrite) on its first start.
        try node.appendOnly.start(node: node, enabled: configuration.appendOnly)
        let threads = configuration.threads > 0 ? configuration.threads : Self.usableCPUCount()
        node.eventLoopThreads.store(threads, ordering: .relaxed)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        // Accepting on a thread of its own: a connection loop busy with a long script does not stop new clients
        // from reaching the other loops (SCRIPT KILL).
        let acceptGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        node.baselineMemory.store(Int(cps_heap_allocated_bytes()), ordering: .relaxed)
        let listener = RESPListener(
            configuration: .init(
                hosts: configuration.bind, port: configuration.port, backlog: configuration.tcpBacklog, limits: node.inputLimits),
            dispatcher: NodeDispatcher(node: node),
            group: group,
            acceptGroup: acceptGroup,
            logger: logger
        ) { ports in
            let port = ports.first ?? 0
            node.boundPort.store(port, ordering: .relaxed)
            node.cluster?.listenerBound(port: port)
            onReady(port)
        }
        let housekeeping = HousekeepingService(node: node, clock: ContinuousClock())
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: listener), .init(service: housekeeping),
            .init(service: PersistenceService(node: node, clock: ContinuousClock(), logger: logger)),
        ]
        let security = try ReplicationService.loadSecurity(configuration)
        node.replication.install(ReplicationRuntime(group: group, logger: logger, security: security))
        ReplicationService.installPeerTransport(node: node, configuration: configuration, security: security, logger: logger)
        if let security {
            services.append(.init(service: ReplicationService.secureListener(
                node: node, security: security, configuration: configuration, group: group, logger: logger)))
        }
        services.append(.init(service: ReplicationService(node: node, replicaOf: configuration.replicaOf)))
        let serviceGroup = ServiceGroup(
            configuration: .init(
                services: services,
                logger: logger
            )
        )
        node.onShutdownRequest {
            Task { await serviceGroup.triggerGracefulShutdown() }
        }
        ShutdownSignals.waitInBackground { signal in
            logger.notice("Received \(signal == SIGINT ? "SIGINT" : "SIGTERM"), shutting down gracefully")
            // As redis: a final snapshot when save rules are configured. A failed save is logged and the node
            // still stops (the previous snapshot is intact: saves never overwrite it in place).
            do throws(PersistenceError) {
                if let outcome = try node.persistence.saveForShutdown(.whenRulesConfigured, node: node) {
                    logger.notice("Saved \(outcome.records) keys before shutting down")
                }
            } catch {
                logger.error("Error trying to save the DB before shutting down: \(error.message)")
            }
            node.appendOnly.flushForShutdown(now: node.clock.nowMilliseconds())
            node.requestShutdown()
        }
        logger.info("cache-node \(CacheNodeVersion.current) starting", metadata: ["threads": "\(threads)", "port": "\(configuration.port)"])
        do {
            try await serviceGroup.run()
        } catch {
            node.cluster?.flushConfig()
            try? await group.shutdownGracefully()
            try? await acceptGroup.shutdownGracefully()
            throw error
        }
        node.cluster?.flushConfig()
        try await group.shutdownGracefully()
        try await acceptGroup.shutdownGracefully()
    }

    /// The default event loop count: one per CPU this process may run on. NIO's count covers online CPUs and cgroup
    /// limits; the scheduler affinity mask (`taskset`, `numactl`, a pinned container) narrows it further, so a node
    /// pinned to one core runs one loop instead of two threads taking turns on it.
    static func usableCPUCount() -> Int {
        let affinity = Int(cps_affinity_cpu_count())
        return max(1, affinity > 0 ? min(System.coreCount, affinity) : System.coreCount)
    }
}
