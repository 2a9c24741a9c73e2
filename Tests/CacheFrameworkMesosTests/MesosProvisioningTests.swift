// End to end over the Mesos backend: the scheduler driver with a `MesosBackend` against the fake master provisions a
// cache-node cluster whose members (real processes launched by the fake master's agents) answer PING; then the
// master fails over: the backend resubscribes with the same framework id, reconciles, and no member is lost,
// relaunched or duplicated. And healing over Mesos: kill -9 of a primary reaches the scheduler as TASK_FAILED through
// the master's UPDATE; the replica is promoted, the lost member replaced, and the keys written before the kill are
// served by the new primary. And scaling over Mesos: a one-shard cluster grows to two shards (new members launched
// from offers, half the slots and their keys migrated live) and shrinks back, with every key present exactly once.

import CacheFramework
import CacheFrameworkMesos
import CacheFrameworkRuntime
import Foundation
import Logging
import MesosFakeMaster
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized)
struct MesosProvisioningTests {
    let control = RESPNodeControl(timeout: .seconds(1))

    func endpoints(_ status: ClusterStatus) -> [TaskEndpoint] {
        status.members.compactMap { member in
            guard let id = member.taskID, let endpoint = member.endpoint, let colon = endpoint.lastIndex(of: ":") else { return nil }
            return TaskEndpoint(taskID: id, hostname: String(endpoint[..<colon]), port: UInt64(endpoint[endpoint.index(after: colon)...]) ?? 0)
        }
    }

    @Test func driverProvisionsOverMesosAndSurvivesMasterFailover() async throws {
        let control = control
        let fixture = try await MesosFixture(readiness: control.pingReadiness())
        defer { Task { await fixture.stop() } }
        let store = try SQLiteStateStore(directory: fixture.directory)
        var logger = Logger(label: "test.mesos-driver")
        logger.logLevel = .warning
        let backend = MesosBackend(
            configuration: MesosBackendConfiguration(master: fixture.urls[0]),
            loadFrameworkID: { try await store.load().frameworkID }, logger: logger)
        fixture.track(backend)
        var configuration = FrameworkDriver.Configuration()
        configuration.tickInterval = .milliseconds(200)
        configuration.scheduler.offsetQueryTimeoutSeconds = 1
        let driver = FrameworkDriver(backend: backend, store: store, control: control, configuration: configuration, logger: logger)
        let run = Task { try await driver.run() }
        // On a failure path the driver never shuts the backend down; its HTTP client must be shut down all the same.
        defer { Task { await backend.shutdown(killTasks: true) } }

        try await waitUntil("both agents have offered") { await backend.capacityOffers().count == 2 }
        let spec = ClusterSpec(
            name: "m1", shardCount: 2, replicasPerShard: 1, memoryMBPerNode: 32, cpusPerNode: 0.1, secureReplication: false)
        try await driver.createCluster(spec)
        try await waitUntil("all 4 members run", seconds: 60) { driver.clusterStatus("m1")?.ready == true }
        let status = try #require(driver.clusterStatus("m1"))
        #expect(status.members.count == 4)
        for endpoint in endpoints(status) { #expect(await control.ping(endpoint), "\(endpoint) answers PING") }
        let frameworkID = try #require(await backend.currentFrameworkID)
        #expect(try await store.load().frameworkID == frameworkID, "the framework id is recorded for restarts")
        let tasksBefore = Set(driver.taskRecords().map(\.taskID))
        let agentTasksBefore = await fixture.master.agents.taskViews()
        let pidsBefore = Dictionary(uniqueKeysWithValues: agentTasksBefore.filter { $0.state == .running }.compactMap { view in
            view.pid.map { (view.taskID, $0) }
        })
        #expect(Set(pidsBefore.keys) == tasksBefore, "the members run on the agents")

        // Master failover: the stream closes, master 0 now redirects to master 1.
        // (Under load a stalled stream may already have been resubscribed once, so count from here.)
        let subscriptionsBefore = await backend.statistics.subscriptions
        await fixture.master.failover(to: 1)
        try await waitUntil("resubscribed with master 1") {
            let subscriptions = await backend.statistics.subscriptions
            let leader = await backend.currentLeader
            return subscriptions > subscriptionsBefore && leader == fixture.urls[1]
        }
        #expect(await backend.currentFrameworkID == frameworkID)
        #expect(await fixture.master.frameworkState?.id == frameworkID)
        try await waitUntil("the scheduler is ready again") { driver.phaseName == "ready" && driver.clusterStatus("m1")?.ready == true }
        #expect(driver.events().contains { $0.kind == "reconcile" }, "the scheduler reconciled after resubscribing")

        // Nothing lost, relaunched or duplicated: the same tasks on the same processes.
        #expect(Set(driver.taskRecords().map(\.taskID)) == tasksBefore)
        let agentTasks = await fixture.master.agents.taskViews()
        #expect(
            Set(agentTasks.map(\.taskID)) == Set(agentTasksBefore.map(\.taskID)),
            "no launch after the failover: \(agentTasks.map { "\($0.taskID) \($0.state) \($0.message ?? "")" })")
        for view in agentTasks where tasksBefore.contains(view.taskID) {
            #expect(view.pid == pidsBefore[view.taskID])
            #expect(view.state == .running)
        }
        for endpoint in endpoints(try #require(driver.clusterStatus("m1"))) { #expect(await control.ping(endpoint)) }

        // A graceful stop tears the framework down: the master kills every member.
        run.cancel()
        _ = try? await run.value
        try await waitUntil("every member is gone") { pidsBefore.values.allSatisfy { !processExists($0) } }
        #expect(await fixture.master.callLog.contains { $0.type == "TEARDOWN" && $0.status == 202 })
    }

    @Test func killingAPrimaryOverMesosHealsTheShard() async throws {
        let control = control
        let fixture = try await MesosFixture(readiness: control.pingReadiness())
        defer { Task { await fixture.stop() } }
        let store = try SQLiteStateStore(directory: fixture.directory)
        var logger = Logger(label: "test.mesos-heal")
        logger.logLevel = .warning
        let backend = MesosBackend(
            configuration: MesosBackendConfiguration(master: fixture.urls[0]),
            loadFrameworkID: { try await store.load().frameworkID }, logger: logger)
        fixture.track(backend)
        var configuration = FrameworkDriver.Configuration()
        configuration.tickInterval = .milliseconds(200)
        configuration.scheduler.offsetQueryTimeoutSeconds = 1
        let driver = FrameworkDriver(backend: backend, store: store, control: control, configuration: configuration, logger: logger)
        let run = Task { try await driver.run() }
        defer { Task { await backend.shutdown(killTasks: true) } }

        try await waitUntil("both agents have offered") { await backend.capacityOffers().count == 2 }
        try await driver.createCluster(ClusterSpec(
            name: "h1", shardCount: 1, replicasPerShard: 1, memoryMBPerNode: 32, cpusPerNode: 0.1, secureReplication: false))
        try await waitUntil("both members run", seconds: 60) { driver.clusterStatus("h1")?.ready == true }
        let records = driver.taskRecords()
        let primary = try #require(records.first { $0.role == .primary })
        let replica = try #require(records.first { $0.role == .replica })
        #expect(primary.agentID != replica.agentID, "anti-affinity holds on Mesos agents")
        #expect(try redis(Int(primary.ports[0]), ["SET", "k", "v"]) == "OK")
        #expect(try redis(Int(primary.ports[0]), ["WAIT", "1", "5000"]) == "1", "the replica acknowledged the write")

        let pid = try #require(await fixture.master.agents.taskViews().first { $0.taskID == primary.taskID }?.pid)
        kill(pid, SIGKILL)
        try await waitUntil("the shard healed", seconds: 60) {
            let status = driver.clusterStatus("h1")
            return status?.ready == true && !driver.taskRecords().contains { $0.taskID == primary.taskID }
        }
        // The failure came through the master as an UPDATE the backend acknowledged.
        #expect(driver.events().contains { $0.kind == "update" && $0.message.contains("\(primary.taskID.value) TASK_FAILED") })
        let healed = driver.taskRecords()
        let promoted = try #require(healed.first { $0.role == .primary })
        #expect(promoted.taskID == replica.taskID, "the replica was promoted")
        #expect(healed.count == 2 && healed.contains { $0.role == .replica && $0.taskID != primary.taskID }, "the lost member was replaced")
        #expect(try redis(Int(promoted.ports[0]), ["GET", "k"]) == "v")
        #expect(driver.clusterStatus("h1")?.heals?.isEmpty == false, "the heal is recorded")
        run.cancel()
        _ = try? await run.value
    }

    @Test func scalingOverMesosMovesSlotsAndKeepsEveryKey() async throws {
        let control = control
        let fixture = try await MesosFixture(readiness: control.pingReadiness())
        defer { Task { await fixture.stop() } }
        let store = try SQLiteStateStore(directory: fixture.directory)
        var logger = Logger(label: "test.mesos-scale")
        logger.logLevel = .warning
        let backend = MesosBackend(
            configuration: MesosBackendConfiguration(master: fixture.urls[0]),
            loadFrameworkID: { try await store.load().frameworkID }, logger: logger)
        fixture.track(backend)
        var configuration = FrameworkDriver.Configuration()
        configuration.tickInterval = .milliseconds(200)
        configuration.scheduler.offsetQueryTimeoutSeconds = 1
        let driver = FrameworkDriver(backend: backend, store: store, control: control, configuration: configuration, logger: logger)
        let run = Task { try await driver.run() }
        defer { Task { await backend.shutdown(killTasks: true) } }

        try await waitUntil("both agents have offered") { await backend.capacityOffers().count == 2 }
        try await driver.createCluster(ClusterSpec(
            name: "s1", shardCount: 1, replicasPerShard: 0, memoryMBPerNode: 32, cpusPerNode: 0.1, secureReplication: false))
        try await waitUntil("the member runs", seconds: 60) { driver.clusterStatus("s1")?.ready == true }
        func primaries() -> [TaskRecord] { driver.taskRecords().filter { $0.slot.cluster == "s1" && $0.role == .primary && $0.isRunning } }
        let first = try #require(primaries().first)
        let keys = (0..<300).map { "key:\($0)" }
        for key in keys { #expect(try redis(Int(first.ports[0]), ["SET", key, "value-of-\(key)"]) == "OK") }

        try await driver.scaleCluster("s1", replicasPerShard: 0, shardCount: 2)
        try await waitUntil("two shards, resharding done", seconds: 180) {
            guard let status = driver.clusterStatus("s1") else { return false }
            return status.ready && status.resharding == nil && status.shards?.count == 2 && primaries().count == 2
        }
        let two = primaries()
        let sizes = try two.map { Int(try redis(Int($0.ports[0]), ["DBSIZE"])) ?? -1 }
        #expect(sizes.reduce(0, +) == keys.count, "DBSIZE per primary: \(sizes)")
        #expect(sizes.allSatisfy { $0 > 0 }, "both primaries hold keys: \(sizes)")
        #expect(await fixture.master.callLog.filter { $0.type == "ACCEPT" && $0.status == 202 }.count >= 2, "the new member came from an offer")

        try await driver.scaleCluster("s1", replicasPerShard: 0, shardCount: 1)
        try await waitUntil("back to one shard", seconds: 180) {
            guard let status = driver.clusterStatus("s1") else { return false }
            return status.ready && status.resharding == nil && status.spec.shardCount == 1 && primaries().count == 1
        }
        let last = try #require(primaries().first)
        #expect(try redis(Int(last.ports[0]), ["DBSIZE"]) == "\(keys.count)")
        for key in keys.prefix(20) { #expect(try redis(Int(last.ports[0]), ["GET", key]) == "value-of-\(key)") }
        // The retired member's task ended through the master.
        let retired = Set(two.map(\.taskID)).subtracting([last.taskID])
        try await waitUntil("the retired member is gone", seconds: 30) {
            let views = await fixture.master.agents.taskViews()
            return views.filter { retired.contains($0.taskID) }.allSatisfy { $0.state != .running }
        }
        run.cancel()
        _ = try? await run.value
    }
}
