// Autoscaling end to end with real cache-node members on the local backend: filling a one-shard cluster past its
// memory threshold makes the driver add a shard (live resharding moves half the slots and their keys), and emptying
// it makes the driver remove the shard again; no key is lost on the way.

import CacheFramework
import CacheFrameworkRuntime
import Foundation
import Testing

@Suite(.serialized)
struct AutoscalingDriverTests {
    let control = RESPNodeControl(timeout: .seconds(2))

    func primaries(_ framework: FrameworkFixture, _ name: String) -> [TaskEndpoint] {
        framework.driver.taskRecords().filter { $0.slot.cluster == name && $0.role == .primary && $0.isRunning }.map(\.endpoint)
    }

    func integer(_ reply: RESPReply) -> Int64 {
        if case .integer(let value) = reply { return value }
        return -1
    }

    @Test func memoryPressureAddsAShardAndReliefRemovesIt() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let framework = try FrameworkFixture(
            directory: directory, agents: 2, firstPort: FrameworkFixture.portBase(), autoscaleInterval: .milliseconds(200))
        let policy = AutoscalingPolicy(
            metric: .memory, scaleOutAbove: 0.3, scaleInBelow: 0.1, sustainSeconds: 0.4, cooldownSeconds: 0.5,
            minShards: 1, maxShards: 2)
        let spec = ClusterSpec(
            name: "auto", shardCount: 1, replicasPerShard: 0, memoryMBPerNode: 32, cpusPerNode: 0.1,
            secureReplication: false, autoscaling: policy)
        try await framework.driver.createCluster(spec)
        try await FrameworkFixture.waitUntil("the member runs", seconds: 60) { framework.driver.clusterStatus("auto")?.ready == true }
        // Idle: far below the scale-out threshold, nothing happens.
        let idle = try #require(primaries(framework, "auto").first)
        let idleLoad = try await control.memberLoad(idle)
        #expect(idleLoad.maxMemory == 32 * 1024 * 1024)
        #expect((idleLoad.value(of: .memory) ?? 1) < 0.3)

        // 12 values of 1 MB: about 0.4 of maxmemory on the one primary.
        let value = String(repeating: "v", count: 1 << 20)
        let keys = (0..<12).map { "key-\($0)" }
        for key in keys { #expect(try await control.command(["SET", key, value], to: idle) == .simple("OK")) }
        try await FrameworkFixture.waitUntil("the autoscaler adds a shard", seconds: 30) {
            framework.driver.clusterStatus("auto")?.spec.shardCount == 2
        }
        #expect(framework.driver.events().contains { $0.kind == "autoscale" && $0.message.contains("auto: 1 → 2 shards (memory mean") })
        try await FrameworkFixture.waitUntil("the resharding finished", seconds: 300) {
            guard let status = framework.driver.clusterStatus("auto") else { return false }
            return status.ready && status.resharding == nil && status.shards?.count == 2
        }
        // Every key is present exactly once, spread over the two primaries.
        let two = primaries(framework, "auto")
        #expect(two.count == 2)
        var sizes: [Int64] = []
        for endpoint in two { sizes.append(integer(try await control.command(["DBSIZE"], to: endpoint))) }
        #expect(sizes.reduce(0, +) == Int64(keys.count), "DBSIZE per primary: \(sizes)")
        #expect(sizes.allSatisfy { $0 > 0 }, "both primaries hold keys: \(sizes)")
        // Between the thresholds now: no further change (2 is also the maximum).

        // Relief: delete every key (each primary answers for its own; the other one redirects).
        for endpoint in two {
            for key in keys { _ = try await control.command(["DEL", key], to: endpoint) }
        }
        try await FrameworkFixture.waitUntil("the autoscaler removes the shard", seconds: 30) {
            framework.driver.events().contains { $0.kind == "autoscale" && $0.message.contains("auto: 2 → 1 shards (memory mean") }
        }
        try await FrameworkFixture.waitUntil("the cluster is back to one shard", seconds: 300) {
            guard let status = framework.driver.clusterStatus("auto") else { return false }
            return status.ready && status.resharding == nil && status.spec.shardCount == 1 && primaries(framework, "auto").count == 1
        }
        #expect(framework.driver.events().filter { $0.kind == "autoscale" }.count == 2, "exactly two autoscaling actions")
        await framework.stop()
    }
}
