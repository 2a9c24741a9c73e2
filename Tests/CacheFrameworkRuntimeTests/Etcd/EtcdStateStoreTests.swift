// What the etcd store adds to the StateStore contract (which StateStoreContractTests runs against it): writes fenced
// by the leader key (a deposed leader writes nothing, not even part of a batch), several intents on one key in one
// batch, the documented key layout, and a large batch interrupted after its pending record is finished by the next
// leader's load.

import CacheFramework
import CacheFrameworkRuntime
import EtcdTestSupport
import Foundation
import Testing

@Suite(.serialized)
struct EtcdStateStoreTests {
    static let spec = ClusterSpec(name: "c1", shardCount: 2, replicasPerShard: 1, memoryMBPerNode: 64, secureReplication: false)

    static func record(_ id: String, member: Int) -> TaskRecord {
        TaskRecord(
            taskID: TaskID(id), slot: MemberSlot(cluster: "c1", shard: 0, member: member), role: member == 0 ? .primary : .replica,
            phase: .launching, lastState: nil, agentID: AgentID("a"), hostname: "127.0.0.1", ports: [31000], failureDomain: nil)
    }

    @Test func aDeposedLeaderWritesNothing() async throws {
        let etcd = try EtcdCluster()
        defer { etcd.stop() }
        let client = try EtcdClient(endpoints: etcd.endpoints)
        let prefix = "/fence"
        let leaderKey = EtcdStateStore.leaderKey(prefix: prefix)
        let lease = try await client.grantLease(ttl: 30)
        let created = try await client.txn(
            compare: [EtcdCompare(key: leaderKey, .equal, .createRevision(0))],
            success: [.put(key: leaderKey, value: Array("A".utf8), lease: lease.id)])
        let leaderA = EtcdStateStore(client: client, prefix: prefix, fence: EtcdFence(key: leaderKey, createRevision: created.revision))
        try await leaderA.apply(PersistBatch(id: 1, intents: [.putCluster(Self.spec), .setNextTaskNumber(5)]))
        try await leaderA.recordLaunch(LocalTaskEntry(
            info: TaskInfo(name: "n", taskID: TaskID("t1"), agentID: AgentID("a"), resources: [], command: CommandInfo(value: "x")),
            pid: 42, startTicks: 1))

        // A's lease ends (expiry or revoke: same effect), B takes the key.
        try await client.revokeLease(lease.id)
        let recreated = try await client.txn(
            compare: [EtcdCompare(key: leaderKey, .equal, .createRevision(0))],
            success: [.put(key: leaderKey, value: Array("B".utf8))])
        #expect(recreated.succeeded)

        await #expect(throws: EtcdError.self) {
            try await leaderA.apply(PersistBatch(id: 2, intents: [.deleteCluster(name: "c1"), .putTask(Self.record("t9", member: 0))]))
        }
        do {
            try await leaderA.apply(PersistBatch(id: 3, intents: [.deleteCluster(name: "c1")]))
        } catch let error as EtcdError {
            #expect(error.code == .fenced)
            #expect(error.message.contains("no longer the leader"))
            #expect(error.message.contains("B"), "names the new holder: \(error.message)")
        }
        await #expect(throws: EtcdError.self) { try await leaderA.recordExit(TaskID("t1")) }

        let leaderB = EtcdStateStore(client: client, prefix: prefix, fence: EtcdFence(key: leaderKey, createRevision: recreated.revision))
        let state = try await leaderB.load()
        #expect(state.clusters["c1"] == Self.spec, "the deposed leader's delete did not happen")
        #expect(state.tasks.isEmpty, "nor half of its batch")
        #expect(try await leaderB.loadLaunches().map(\.pid) == [42])
        try await leaderB.apply(PersistBatch(id: 1, intents: [.deleteCluster(name: "c1")]))
        #expect(try await leaderB.load().clusters.isEmpty)
    }

    @Test func intentsOnOneKeyCollapseAndTheLayoutIsAsDocumented() async throws {
        let etcd = try EtcdCluster()
        defer { etcd.stop() }
        let client = try EtcdClient(endpoints: etcd.endpoints)
        let store = EtcdStateStore(client: client, prefix: "/layout/", fence: nil)
        var running = Self.record("c1.s0.m0.1", member: 0)
        running.lastState = .running
        try await store.apply(PersistBatch(id: 1, intents: [
            .setFrameworkID(FrameworkID("fw")), .putCluster(Self.spec), .putTask(Self.record("c1.s0.m0.1", member: 0)),
            .putTask(running), .putTask(Self.record("c1.s0.m1.2", member: 1)), .deleteTask(TaskID("c1.s0.m1.2")),
            .setNextTaskNumber(3), .setNextTaskNumber(2),
        ]))
        let keys = try await client.range(prefix: "/layout/").kvs.map(\.key)
        #expect(keys == [
            "/layout/state/clusters/c1", "/layout/state/framework_id", "/layout/state/next_task_number",
            "/layout/state/tasks/c1.s0.m0.1",
        ])
        let state = try await store.load()
        #expect(state.tasks[TaskID("c1.s0.m0.1")]?.lastState == .running, "the last intent on a key wins")
        #expect(state.tasks.count == 1)
        #expect(state.nextTaskNumber == 3)
        #expect(try await client.range("/layout/state/framework_id").kvs.first?.stringValue == "fw")
    }

    @Test func anInterruptedLargeBatchIsFinishedByTheNextLeader() async throws {
        let etcd = try EtcdCluster()
        defer { etcd.stop() }
        let client = try EtcdClient(endpoints: etcd.endpoints)
        let prefix = "/pending"
        // A leader recorded a large batch as pending and died before applying its chunks: write the record as it does.
        let tasks = (0..<10).map { Self.record("c1.s0.m\($0).\($0)", member: $0) }
        let reference = EtcdStateStore(client: client, prefix: prefix, fence: nil, maximumOperationsPerTransaction: 3)
        try await reference.apply(PersistBatch(id: 1, intents: [.putCluster(Self.spec)] + tasks.map { .putTask($0) }))
        let full = try await reference.load()
        #expect(full.tasks.count == 10)
        // Rewind: keep only the cluster, and put back a pending record of the tasks, as if the chunks never ran.
        try await client.delete(prefix + "/state/tasks/", rangeEnd: EtcdClient.prefixEnd(prefix + "/state/tasks/"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let operations = try tasks.map { task -> [String: Any] in
            ["put": ["key": prefix + "/state/tasks/" + task.taskID.value, "value": Array(try encoder.encode(task)).map(Int.init)]]
        }
        let pending = try JSONSerialization.data(withJSONObject: ["batchID": 1, "operations": operations])
        try await client.put(prefix + "/state/pending", value: Array(pending))

        // An unguarded reader sees the batch whole, without changing anything.
        let reader = try await EtcdStateStore(client: client, prefix: prefix, fence: nil).load()
        #expect(reader == full)
        // The next leader's load finishes it: the tasks are written and the record removed.
        let leaderKey = EtcdStateStore.leaderKey(prefix: prefix)
        let created = try await client.txn(
            compare: [EtcdCompare(key: leaderKey, .equal, .createRevision(0))], success: [.put(key: leaderKey, value: [1])])
        let leader = EtcdStateStore(
            client: client, prefix: prefix, fence: EtcdFence(key: leaderKey, createRevision: created.revision),
            maximumOperationsPerTransaction: 3)
        #expect(try await leader.load() == full)
        #expect(try await client.range(prefix + "/state/pending").kvs.isEmpty)
        #expect(try await client.range(prefix: prefix + "/state/tasks/").kvs.count == 10)
    }
}
