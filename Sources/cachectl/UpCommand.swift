// UpCommand: `cachectl up` — the framework daemon plus a default cluster; prints where to connect once every member
// answers PING, then serves until SIGTERM/SIGINT (which stops the members too, unless --keep-tasks).

import ArgumentParser
import CacheFramework
import CacheFrameworkRuntime
import Foundation
import ServiceLifecycle

extension Cachectl {
    struct UpCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "up",
            abstract: "Start the framework with the local backend and a default cluster, and print where to connect.",
            discussion: ExitStatus.help)

        @OptionGroup var options: ServeOptions
        @Option(name: .customLong("cluster"), help: "Name of the default cluster.") var clusterName: String = "default"
        @Option(help: "Shards of the default cluster.") var shards: Int = 3
        @Option(help: "Replicas per shard (needs at least replicas+1 agents: --agents).") var replicas: Int = 0
        @Option(name: .customLong("memory-mb"), help: "Memory per node in MB.") var memoryMB: Int = 64
        @Option(help: "Engine: cache-node or redis-server.") var engine: String = CacheEngine.cacheNode.rawValue

        func validate() throws {
            guard CacheEngine(rawValue: engine) != nil else { throw ValidationError("unknown engine '\(engine)'") }
            guard options.etcd == nil else { throw ValidationError("--etcd (high availability) is for `cachectl serve`, not `up`") }
            guard options.agents > replicas else {
                throw ValidationError("\(replicas) replicas per shard need at least \(replicas + 1) agents: pass --agents \(replicas + 1)")
            }
        }

        func run() async throws {
            let server = try FrameworkServer(options: options) { port in
                print("cachectl up: API on http://\(options.host):\(port)")
                fflush(nil)
            }
            let spec = ClusterSpec(
                name: clusterName, shardCount: shards, replicasPerShard: replicas, memoryMBPerNode: memoryMB, cpusPerNode: 0.1,
                engine: CacheEngine(rawValue: engine)!, secureReplication: CacheEngine(rawValue: engine)! == .cacheNode)
            try await server.run(alongside: [DefaultCluster(driver: server.driver, spec: spec)])
        }
    }
}

/// Creates the default cluster once the driver runs, prints its endpoints when ready, then waits for shutdown.
struct DefaultCluster: Service {
    let driver: FrameworkDriver
    let spec: ClusterSpec

    func run() async throws {
        while !driver.isStarted { try await Task.sleep(for: .milliseconds(20)) }
        if driver.clusterStatus(spec.name) == nil {
            do {
                try await driver.createCluster(spec)
            } catch {
                printError("\(error)")
                throw ExitStatus.insufficientResources
            }
        }
        let started = Date()
        while driver.clusterStatus(spec.name)?.ready != true { try await Task.sleep(for: .milliseconds(50)) }
        let status = driver.clusterStatus(spec.name)!
        print("cluster \(spec.name) ready in \(String(format: "%.2f", Date().timeIntervalSince(started))) s; connect with:")
        for member in status.members where member.role == .primary {
            let parts = (member.endpoint ?? "").split(separator: ":")
            print("  redis-cli -h \(parts.first ?? "127.0.0.1") -p \(parts.last ?? "")    # shard \(member.shard), slots \(ClusterPlan.slots(shard: member.shard, of: spec.shardCount))")
        }
        fflush(nil)
        try await gracefulShutdown()
    }
}
