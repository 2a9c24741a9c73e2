// End to end over the Mesos backend with real cache-node members: the agent of a shard's primary is partitioned from
// the fake master. After the agent timeout the master reports the primary (and anything else there) TASK_UNREACHABLE;
// the scheduler promotes the replica, which serves the keys written before, and launches a replacement on a third
// agent while the stale primary keeps running behind the partition. When the agent comes back the master re-reports
// the stale primary RUNNING and the scheduler kills it: the cluster ends with exactly its healed members.

import CacheFramework
import CacheFrameworkMesos
import CacheFrameworkRuntime
import Foundation
import Logging
import MesosFakeMaster
import Testing

@Suite(.serialized)
struct MesosPartitionTests {
    @Test func partitionedPrimaryIsReplacedAndKilledWhenItsAgentReturns() async throws {
        let control = RESPNodeControl(timeout: .seconds(1))
        let fixture = try await MesosFixture(agents: 3, agentUnreachableTimeout: .seconds(2), readiness: control.pingReadiness())
        defer { Task { await fixture.stop() } }
        let store = try SQLiteStateStore(directory: fixture.directory)
        var logger = Logger(label: "test.mesos-partition")
        logger.logLevel = .warning
        let backend = MesosBackend(
            configuration: MesosBackendConfiguration(master: fixture.urls[0]),
            loadFrameworkID: { try await store.load().frameworkID }, logger: logger)
        fixture.track(backend)
        let wire = WireRecorder(backend.mesosEvents)
        var configuration = FrameworkDriver.Configuration()
        configuration.tickInterval = .milliseconds(200)
        configuration.scheduler.offsetQueryTimeoutSeconds = 1
        let driver = FrameworkDriver(backend: backend, store: store, control: control, configuration: configuration, logger: logger)
        let run = Task { try await driver.run() }
        defer { Task { await backend.shutdown(killTasks: true) } }

        try await waitUntil("the three agents have offered") { await backend.capacityOffers().count == 3 }
        try await driver.createCluster(ClusterSpec(
            name: "p1", shardCount: 1, replicasPerShard: 1, memoryMBPerNode: 32, cpusPerNode: 0.1, secureReplication: false))
        try await waitUntil("both members run", seconds: 60) { driver.clusterStatus("p1")?.ready == true }
        let records = driver.taskRecords()
        let primary = try #require(records.first { $0.role == .primary })
        let replica = try #require(records.first { $0.role == .replica })
        #expect(try redis(Int(primary.ports[0]), ["SET", "k", "v"]) == "OK")
        #expect(try redis(Int(primary.ports[0]), ["WAIT", "1", "5000"]) == "1", "the replica acknowledged the write")
        let stalePID = try #require(await fixture.master.agents.taskViews().first { $0.taskID == primary.taskID }?.pid)

        // The primary's agent stops reaching the master; the member itself keeps running.
        await fixture.master.partitionAgent(primary.agentID)
        do {
            try await waitUntil("the shard healed without the partitioned agent", seconds: 90) {
                let members = driver.taskRecords()
                return driver.clusterStatus("p1")?.ready == true && members.count == 2 && members.allSatisfy(\.isRunning)
                    && !members.contains { $0.agentID == primary.agentID }
            }
        } catch {
            Issue.record("events: \(driver.events().suffix(30).map { "\($0.kind): \($0.message)" }.joined(separator: "\n"))")
            throw error
        }
        #expect(wire.all.contains { $0.update?.status.taskID == primary.taskID && $0.update?.status.state == .unreachable })
        let healed = driver.taskRecords()
        let promoted = try #require(healed.first { $0.role == .primary })
        #expect(promoted.taskID == replica.taskID, "the replica was promoted")
        #expect(try redis(Int(promoted.ports[0]), ["GET", "k"]) == "v", "the promoted replica serves the data")
        let replacement = try #require(healed.first { $0.role == .replica })
        #expect(replacement.agentID != replica.agentID && replacement.agentID != primary.agentID)
        #expect(processExists(stalePID), "behind the partition the stale primary still runs")

        // The agent returns: the stale primary is re-reported RUNNING and killed, not adopted.
        await fixture.master.reconnectAgent(primary.agentID)
        try await waitUntil("the stale primary is killed", seconds: 60) {
            await fixture.master.taskViews[primary.taskID]?.state == .killed && !processExists(stalePID)
        }
        #expect(wire.all.contains {
            $0.update?.status.taskID == primary.taskID && $0.update?.status.reason == "REASON_SLAVE_REREGISTERED"
        })
        let final = driver.taskRecords()
        #expect(Set(final.map(\.taskID)) == Set(healed.map(\.taskID)), "exactly the healed members")
        #expect(final.filter { $0.role == .primary }.map(\.taskID) == [replica.taskID])
        let live = await fixture.master.taskViews.filter { !$0.value.state.isTerminal }.keys
        #expect(Set(live) == Set(final.map(\.taskID)), "the master runs exactly the members")
        #expect(try redis(Int(promoted.ports[0]), ["GET", "k"]) == "v")
        run.cancel()
        _ = try? await run.value
    }
}
