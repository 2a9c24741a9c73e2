// ClusterCommand: `cachectl cluster create|status|scale|delete|failover` over the framework API.

import ArgumentParser
import CacheFramework
import CacheFrameworkAPI
import CacheFrameworkRuntime
import Foundation

extension Cachectl {
    struct ClusterCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cluster",
            abstract: "Create, inspect, scale, fail over and delete cache clusters.",
            discussion: ExitStatus.help,
            subcommands: [Create.self, Status.self, Scale.self, Failover.self, Delete.self])
    }
}

/// Prints a cluster as a table of members, or JSON.
func printCluster(_ status: ClusterStatus, json: Bool) throws {
    if json { return try printJSON(status) }
    let spec = status.spec
    print("cluster \(spec.name): \(spec.shardCount) shards × \(spec.membersPerShard) members, \(spec.engine.rawValue), "
        + "\(spec.memoryMBPerNode) MB/node, \(status.runningMembers)/\(status.members.count) running"
        + (status.ready ? " (ready)" : ""))
    if let policy = spec.autoscaling {
        print("autoscaling on \(policy.metric.rawValue): out above \(policy.scaleOutAbove), in below \(policy.scaleInBelow), "
            + "\(policy.minShards)…\(policy.maxShards) shards, sustain \(policy.sustainSeconds) s, cooldown \(policy.cooldownSeconds) s")
    }
    if let shards = status.shards {
        let healing = shards.compactMap { shard in shard.healing.map { "shard \(shard.shard) \($0)" } }
        print("topology epoch \(status.topologyEpoch.map(String.init) ?? "-"), "
            + "\(shards.filter(\.serving).count)/\(shards.count) shards serving"
            + (healing.isEmpty ? "" : "; healing: " + healing.joined(separator: ", ")))
        if let resharding = status.resharding { print(reshardingProgress(resharding)) }
        for heal in status.heals ?? [] {
            print("  healed shard \(heal.shard): lost \(heal.lostRole.rawValue) \(heal.lostTask?.value ?? "(while the framework was down)")"
                + (heal.promoted.map { ", promoted \($0.value)" } ?? ", replaced"))
        }
    }
    printTable(
        ["SHARD", "SLOTS", "MEMBER", "ROLE", "STATE", "ENDPOINT", "TASK"],
        status.members.map { member in
            [
                "\(member.shard)",
                status.shards.flatMap { $0.first { $0.shard == member.shard }?.slots.joined(separator: ",") }
                    ?? ClusterPlan.slots(shard: member.shard, of: spec.shardCount).description,
                "\(member.member)",
                member.role?.rawValue ?? "-", member.state.map { String($0.rawValue.dropFirst(5)).lowercased() } ?? (member.taskID == nil ? "pending" : "launching"),
                member.endpoint ?? "-", member.taskID?.value ?? (member.shortfall ?? "-"),
            ]
        })
}

/// One line of resharding progress: `resharding 3→5 shards: moving, 1280/6554 slots (19%)`.
func reshardingProgress(_ resharding: ReshardingStatus) -> String {
    let percent = resharding.totalSlots == 0 ? 100 : resharding.movedSlots * 100 / resharding.totalSlots
    return "resharding \(resharding.fromShards)→\(resharding.toShards) shards: \(resharding.phase), "
        + "\(resharding.movedSlots)/\(resharding.totalSlots) slots moved (\(percent)%)"
        + (resharding.lastError.map { "; last error (retrying): \($0)" } ?? "")
}

/// Polls a cluster until every member runs (and any resharding finished).
func waitUntilReady(_ client: FrameworkHTTPClient, cluster: String, timeout: Double, quiet: Bool) async throws -> ClusterStatus {
    let deadline = Date().addingTimeInterval(timeout)
    var lastRunning = -1
    var lastProgress = ""
    while true {
        let status = try await client.call(.GET, "/api/v1/clusters/\(cluster)", as: ClusterStatus.self)
        if status.ready { return status }
        if !quiet && status.runningMembers != lastRunning {
            lastRunning = status.runningMembers
            FileHandle.standardError.write(Data("waiting: \(status.runningMembers)/\(status.members.count) members running\n".utf8))
        }
        if !quiet, let resharding = status.resharding {
            let progress = reshardingProgress(resharding)
            if progress != lastProgress {
                lastProgress = progress
                FileHandle.standardError.write(Data((progress + "\n").utf8))
            }
        }
        if Date() >= deadline {
            let reasons = Set(status.members.compactMap(\.shortfall))
            printError("cluster \(cluster) is not ready after \(Int(timeout)) s: \(status.runningMembers)/\(status.members.count) running"
                + (reasons.isEmpty ? "" : "; " + reasons.sorted().joined(separator: "; ")))
            throw ExitStatus.timedOut
        }
        try await Task.sleep(for: .milliseconds(100))
    }
}

extension Cachectl.ClusterCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a cluster and wait until every member answers PING.")

        @Argument(help: "Cluster name (letters, digits, '-').") var name: String
        @Option(help: "Shards.") var shards: Int = 3
        @Option(help: "Replicas per shard.") var replicas: Int = 0
        @Option(name: .customLong("memory-mb"), help: "Memory per node (maxmemory) in MB.") var memoryMB: Int = 64
        @Option(help: "CPU shares per node.") var cpus: Double = 0.1
        @Option(help: "Engine: cache-node or redis-server.") var engine: String = CacheEngine.cacheNode.rawValue
        @Option(name: .customLong("eviction-policy"), help: "maxmemory-policy.") var evictionPolicy: String = EvictionPolicy.noEviction.rawValue
        @Flag(help: "Members persist (append-only file and snapshots) to their sandbox; on Mesos to a persistent volume that a relaunched member gets back.") var persistence = false
        @Flag(inversion: .prefixedNo, help: "Secure replication (cache-node only).") var secureReplication: Bool?
        @Flag(name: .customLong("no-wait"), help: "Return once the cluster is recorded, without waiting for members.") var noWait = false
        @Option(help: "Seconds to wait for every member.") var timeout: Double = 60
        @Option(help: ArgumentHelp(
            "Add/remove shards on a metric: memory (used_memory/maxmemory) or ops (ops/s), the mean over the primaries.",
            valueName: "memory|ops")) var autoscale: String?
        @Option(name: .customLong("scale-out-above"), help: "Autoscaling: add a shard above this (memory: e.g. 0.75; ops: ops/s).") var scaleOutAbove: Double?
        @Option(name: .customLong("scale-in-below"), help: "Autoscaling: remove a shard below this (0: never).") var scaleInBelow: Double = 0
        @Option(name: .customLong("min-shards"), help: "Autoscaling: fewest shards (default: --shards).") var minShards: Int?
        @Option(name: .customLong("max-shards"), help: "Autoscaling: most shards.") var maxShards: Int?
        @Option(name: .customLong("sustain-seconds"), help: "Autoscaling: how long the metric must stay across a threshold.") var sustainSeconds: Double = 60
        @Option(name: .customLong("cooldown-seconds"), help: "Autoscaling: quiet time after each change.") var cooldownSeconds: Double = 300
        @OptionGroup var connection: FrameworkConnectionOptions

        func validate() throws {
            guard CacheEngine(rawValue: engine) != nil else { throw ValidationError("unknown engine '\(engine)': use cache-node or redis-server") }
            guard EvictionPolicy(rawValue: evictionPolicy) != nil else { throw ValidationError("unknown eviction policy '\(evictionPolicy)'") }
            if let autoscale {
                guard AutoscalingPolicy.Metric(rawValue: autoscale) != nil else {
                    throw ValidationError("unknown autoscaling metric '\(autoscale)': use memory or ops")
                }
                guard scaleOutAbove != nil, maxShards != nil else {
                    throw ValidationError("--autoscale needs --scale-out-above and --max-shards")
                }
            } else if scaleOutAbove != nil || maxShards != nil || minShards != nil {
                throw ValidationError("autoscaling options need --autoscale memory|ops")
            }
        }

        /// The autoscaling policy the options describe (validated by the framework with the rest of the spec).
        var autoscalingPolicy: AutoscalingPolicy? {
            guard let autoscale, let metric = AutoscalingPolicy.Metric(rawValue: autoscale), let scaleOutAbove, let maxShards else { return nil }
            return AutoscalingPolicy(
                metric: metric, scaleOutAbove: scaleOutAbove, scaleInBelow: scaleInBelow, sustainSeconds: sustainSeconds,
                cooldownSeconds: cooldownSeconds, minShards: minShards ?? shards, maxShards: maxShards)
        }

        func run() async throws {
            let client = try connection.client()
            let engine = CacheEngine(rawValue: engine)!
            let request = ClusterCreateRequest(
                name: name, shards: shards, replicas: replicas, memoryMB: memoryMB, cpus: cpus, engine: engine,
                evictionPolicy: EvictionPolicy(rawValue: evictionPolicy), persistence: persistence,
                // Default: secure for cache-node (the framework issues the identities), off for redis-server.
                secureReplication: secureReplication, autoscaling: autoscalingPolicy)
            var status = try await client.call(.POST, "/api/v1/clusters", body: request, as: ClusterStatus.self)
            if !noWait { status = try await waitUntilReady(client, cluster: name, timeout: timeout, quiet: connection.json) }
            try printCluster(status, json: connection.json)
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one cluster, or all clusters.")
        @Argument(help: "Cluster name (all clusters if omitted).") var name: String?
        @OptionGroup var connection: FrameworkConnectionOptions

        func run() async throws {
            let client = try connection.client()
            if let name {
                try printCluster(try await client.call(.GET, "/api/v1/clusters/\(name)", as: ClusterStatus.self), json: connection.json)
                return
            }
            let clusters = try await client.call(.GET, "/api/v1/clusters", as: [ClusterStatus].self)
            if connection.json { return try printJSON(clusters) }
            printTable(
                ["NAME", "SHARDS", "MEMBERS", "ENGINE", "RUNNING", "READY"],
                clusters.map {
                    [$0.spec.name, "\($0.spec.shardCount)", "\($0.spec.membersPerShard)", $0.spec.engine.rawValue,
                     "\($0.runningMembers)/\($0.members.count)", $0.ready ? "yes" : "no"]
                })
        }
    }

    struct Scale: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change the replicas per shard and/or the shard count.",
            discussion: "A different shard count (cache-node clusters) adds or removes shards with live slot migration: "
                + "new shards are launched, slots move batch by batch with MIGRATE while clients keep working, and "
                + "removed shards are stopped once their slots moved. Progress is shown until it finishes.")
        @Argument(help: "Cluster name.") var name: String
        @Option(help: "Replicas per shard (default: unchanged).") var replicas: Int?
        @Option(help: "Shards (default: unchanged; another count reshards with live slot migration).") var shards: Int?
        @Flag(name: .customLong("no-wait"), help: "Return once the change is recorded, without waiting for it to finish.") var noWait = false
        @Option(help: "Seconds to wait for the change to finish.") var timeout: Double = 600
        @OptionGroup var connection: FrameworkConnectionOptions

        func validate() throws {
            guard replicas != nil || shards != nil else { throw ValidationError("give --replicas, --shards or both") }
            if let replicas, replicas < 0 { throw ValidationError("--replicas must be 0 or more") }
            if let shards, !(1...ClusterPlan.slotCount).contains(shards) { throw ValidationError("--shards must be between 1 and 16384") }
        }

        func run() async throws {
            let client = try connection.client()
            var status = try await client.call(
                .POST, "/api/v1/clusters/\(name)/scale", body: ClusterScaleRequest(replicas: replicas, shards: shards),
                as: ClusterStatus.self)
            if !noWait { status = try await waitUntilReady(client, cluster: name, timeout: timeout, quiet: connection.json) }
            try printCluster(status, json: connection.json)
        }
    }

    struct Failover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fail a shard over: its primary is stopped, the best replica promoted and a replacement launched.")
        @Argument(help: "Cluster name.") var name: String
        @Option(help: "Shard index.") var shard: Int
        @OptionGroup var connection: FrameworkConnectionOptions

        func run() async throws {
            let client = try connection.client()
            _ = try await client.call(
                .POST, "/api/v1/clusters/\(name)/failover", body: ClusterFailoverRequest(shard: shard), as: EmptyAnswer.self)
            if connection.json { try printJSON(["failover": "\(name)/\(shard)"]) } else { print("failover of \(name) shard \(shard) started") }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a cluster and stop its members.")
        @Argument(help: "Cluster name.") var name: String
        @OptionGroup var connection: FrameworkConnectionOptions

        func run() async throws {
            let client = try connection.client()
            let answer = try await client.call(.DELETE, "/api/v1/clusters/\(name)", as: [String: String].self)
            if connection.json { try printJSON(answer) } else { print("deleted cluster \(name)") }
        }
    }
}
