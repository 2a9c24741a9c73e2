// The driver over the local backend with real processes: provision a cluster until every member answers PING,
// heal a member killed with SIGKILL, wire redis-server replicas with REPLICAOF, refuse a cluster that does not fit,
// and re-adopt running members after a framework restart without launching duplicates.

import CacheFramework
import CacheFrameworkRuntime
import Foundation
import Testing

@Suite(.serialized)
struct LocalProvisioningTests {
    let control = RESPNodeControl(timeout: .seconds(1))

    func endpoints(_ status: ClusterStatus) -> [TaskEndpoint] {
        status.members.compactMap { member in
            guard let id = member.taskID, let endpoint = member.endpoint, let colon = endpoint.lastIndex(of: ":") else { return nil }
            return TaskEndpoint(taskID: id, hostname: String(endpoint[..<colon]), port: UInt64(endpoint[endpoint.index(after: colon)...]) ?? 0)
        }
    }

    @Test func provisionsCacheNodeClusterAndReplacesAKilledMember() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let framework = try FrameworkFixture(directory: directory, agents: 2, firstPort: FrameworkFixture.portBase())
        let spec = ClusterSpec(
            name: "c1", shardCount: 3, replicasPerShard: 1, memoryMBPerNode: 32, cpusPerNode: 0.1, secureReplication: false)
        try await framework.driver.createCluster(spec)
        try await FrameworkFixture.waitUntil("all 6 members run") { framework.driver.clusterStatus("c1")?.ready == true }
        let status = try #require(framework.driver.clusterStatus("c1"))
        #expect(status.members.count == 6)
        for endpoint in endpoints(status) {
            #expect(await control.ping(endpoint), "\(endpoint) answers PING")
        }
        // Members of one shard are on different agents.
        let records = framework.driver.taskRecords()
        for shard in 0..<3 {
            #expect(Set(records.filter { $0.slot.shard == shard }.map(\.agentID)).count == 2)
        }

        // kill -9 one member: the backend reports FAILED and the scheduler launches a replacement.
        let views = await framework.backend.taskViews()
        let victim = try #require(views.first { $0.state == .running && $0.taskID.value.hasPrefix("c1.s1.m1") })
        kill(victim.pid!, SIGKILL)
        try await FrameworkFixture.waitUntil("the killed member is replaced and running") {
            guard let status = framework.driver.clusterStatus("c1"), status.ready else { return false }
            return !status.members.contains { $0.taskID == victim.taskID }
        }
        let failed = await framework.backend.taskViews().first { $0.taskID == victim.taskID }
        #expect(failed?.state == .failed)
        #expect(failed?.message?.contains("signal 9") == true)
        #expect(framework.driver.events().contains { $0.kind == "update" && $0.message.contains("\(victim.taskID) TASK_FAILED") })
        for endpoint in endpoints(try #require(framework.driver.clusterStatus("c1"))) {
            #expect(await control.ping(endpoint))
        }
        let launched = await framework.backend.taskViews()
        #expect(launched.count == 7, "six members and one replacement were launched, nothing else")

        // Graceful stop kills every member.
        let pids = launched.compactMap(\.pid)
        await framework.stop()
        #expect(pids.allSatisfy { !processExists($0) }, "no member outlives a graceful stop")
    }

    @Test func redisServerReplicasFollowTheirPrimary() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let framework = try FrameworkFixture(directory: directory, agents: 2, firstPort: FrameworkFixture.portBase())
        defer { Task { await framework.stop() } }
        let spec = ClusterSpec(
            name: "r1", shardCount: 1, replicasPerShard: 1, memoryMBPerNode: 32, cpusPerNode: 0.1, engine: .redisServer,
            secureReplication: false)
        try await framework.driver.createCluster(spec)
        try await FrameworkFixture.waitUntil("both members run") { framework.driver.clusterStatus("r1")?.ready == true }
        let records = framework.driver.taskRecords()
        let primary = try #require(records.first { $0.role == .primary }).endpoint
        let replica = try #require(records.first { $0.role == .replica }).endpoint
        try await FrameworkFixture.waitUntil("the replica's link to its primary is up") {
            let info = try? await control.replicationInfo(replica)
            return info?.role == "slave" && info?.linkUp == true && info?.primary == "\(primary.hostname):\(primary.port)"
        }
        #expect(try await control.command(["SET", "k", "v"], to: primary) == .simple("OK"))
        try await FrameworkFixture.waitUntil("the write reaches the replica") {
            try await control.command(["GET", "k"], to: replica) == .bulk("v")
        }
        await framework.stop()
    }

    @Test func failoverPromotesTheReplicaAndReplacesTheOldPrimary() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let framework = try FrameworkFixture(directory: directory, agents: 2, firstPort: FrameworkFixture.portBase())
        let spec = ClusterSpec(
            name: "f1", shardCount: 1, replicasPerShard: 1, memoryMBPerNode: 32, cpusPerNode: 0.1, engine: .redisServer,
            secureReplication: false)
        try await framework.driver.createCluster(spec)
        try await FrameworkFixture.waitUntil("both members run") { framework.driver.clusterStatus("f1")?.ready == true }
        let oldPrimary = try #require(framework.driver.taskRecords().first { $0.role == .primary })
        let oldReplica = try #require(framework.driver.taskRecords().first { $0.role == .replica })
        try await FrameworkFixture.waitUntil("the replica is linked") {
            (try? await control.replicationInfo(oldReplica.endpoint))?.linkUp == true
        }
        #expect(try await control.command(["SET", "k", "before-failover"], to: oldPrimary.endpoint) == .simple("OK"))
        try await FrameworkFixture.waitUntil("the write reaches the replica") {
            try await control.command(["GET", "k"], to: oldReplica.endpoint) == .bulk("before-failover")
        }

        try await framework.driver.failover("f1", shard: 0)
        try await FrameworkFixture.waitUntil("the old replica is primary and a new replica follows it") {
            let records = framework.driver.taskRecords()
            guard framework.driver.clusterStatus("f1")?.ready == true,
                records.first(where: { $0.role == .primary })?.taskID == oldReplica.taskID,
                let replacement = records.first(where: { $0.role == .replica }), replacement.taskID != oldPrimary.taskID,
                let info = try? await control.replicationInfo(replacement.endpoint)
            else { return false }
            return info.linkUp && info.primary == "\(oldReplica.endpoint.hostname):\(oldReplica.endpoint.port)"
        }
        #expect(try await control.replicationInfo(oldReplica.endpoint).role == "master")
        #expect(try await control.command(["GET", "k"], to: oldReplica.endpoint) == .bulk("before-failover"))
        let killed = await framework.backend.taskViews().first { $0.taskID == oldPrimary.taskID }
        #expect(killed?.state == .killed)
        await #expect(throws: FrameworkError.self) { try await framework.driver.failover("nope", shard: 0) }
        await framework.stop()
    }

    @Test func refusesAClusterThatDoesNotFitAndSaysWhatIsMissing() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let framework = try FrameworkFixture(directory: directory, agents: 2, firstPort: FrameworkFixture.portBase(), memMB: 1000)
        let spec = ClusterSpec(name: "big", shardCount: 4, replicasPerShard: 1, memoryMBPerNode: 200, cpusPerNode: 0.1, secureReplication: false)
        await #expect {
            try await framework.driver.createCluster(spec)
        } throws: { error in
            guard case FrameworkError.insufficientResources(let report) = error else { return false }
            // 8 members × 250 MB = 2000 MB needed, 1000 MB free.
            return report.missing.contains { $0.resource == "mem MB" && $0.needed == 2000 && $0.shortBy == 1000 }
        }
        let tooManyReplicas = ClusterSpec(name: "wide", shardCount: 1, replicasPerShard: 2, memoryMBPerNode: 16, cpusPerNode: 0.1, secureReplication: false)
        await #expect {
            try await framework.driver.createCluster(tooManyReplicas)
        } throws: { error in
            "\(error)".contains("each shard needs 3 agents (one per member), 2 exist")
        }
        #expect(framework.driver.clusterStatuses().isEmpty)
        await framework.stop()
    }

    @Test func restartAdoptsRunningMembersWithoutDuplicates() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let firstPort = FrameworkFixture.portBase()
        let spec = ClusterSpec(name: "a1", shardCount: 2, replicasPerShard: 1, memoryMBPerNode: 32, cpusPerNode: 0.1, secureReplication: false)
        let first = try FrameworkFixture(directory: directory, agents: 2, firstPort: firstPort, keepTasksOnShutdown: true)
        try await first.driver.createCluster(spec)
        try await FrameworkFixture.waitUntil("all 4 members run") { first.driver.clusterStatus("a1")?.ready == true }
        let before = await first.backend.taskViews()
        let pids = Set(before.compactMap(\.pid))
        #expect(pids.count == 4)
        await first.stop()
        #expect(pids.allSatisfy { processExists($0) }, "members keep running while the framework is down")

        let second = try FrameworkFixture(directory: directory, agents: 2, firstPort: firstPort)
        try await FrameworkFixture.waitUntil("the restarted framework is ready with 4 running members") {
            second.driver.phaseName == "ready" && second.driver.clusterStatus("a1")?.ready == true
        }
        let after = await second.backend.taskViews()
        #expect(Set(after.compactMap(\.pid)) == pids, "the same processes, adopted")
        #expect(after.allSatisfy { $0.adopted })
        #expect(Set(second.driver.taskRecords().map(\.taskID)) == Set(before.map(\.taskID)), "no new task ids")
        // The adopted members are still watched: kill one, and it is replaced.
        let victim = try #require(after.first)
        kill(victim.pid!, SIGKILL)
        try await FrameworkFixture.waitUntil("the adopted member is replaced") {
            guard let status = second.driver.clusterStatus("a1"), status.ready else { return false }
            return !status.members.contains { $0.taskID == victim.taskID }
        }
        await second.stop()
        #expect(pids.allSatisfy { !processExists($0) })
    }
}
