// The StateStore contract, run against every durable store (SQLite in a data directory; etcd on a real single-member
// etcd 3.4): batches survive reopening the store, the process journal too, and a scheduler restarted from it after a
// crash between recording launch intents and sending them reconciles and launches each member once.

import CacheFramework
import CacheFrameworkRuntime
import EtcdTestSupport
import Foundation
import Testing

/// A durable store under test, reopened as a restarted framework would.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case etcd
    /// etcd with at most 3 operations per transaction, so every batch takes the pending-record path.
    case etcdSmallTransactions

    var testDescription: String { rawValue }

    /// Where a store of this kind lives; `open()` may be called several times (a restart).
    final class Location: @unchecked Sendable {
        let kind: StoreKind
        let directory: String
        let etcd: EtcdCluster?
        let prefix = "/cf-test-\(UUID().uuidString.prefix(8))"

        init(_ kind: StoreKind) throws {
            self.kind = kind
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("cf-store-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            etcd = kind == .sqlite ? nil : try EtcdCluster()
        }

        func open() throws -> any StateStore & LocalTaskJournal {
            switch kind {
            case .sqlite:
                return try SQLiteStateStore(directory: directory)
            case .etcd, .etcdSmallTransactions:
                return EtcdStateStore(
                    client: try EtcdClient(endpoints: etcd!.endpoints), prefix: prefix, fence: nil,
                    maximumOperationsPerTransaction: kind == .etcd ? 128 : 3)
            }
        }

        func remove() {
            etcd?.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}

@Suite(.serialized)
struct StateStoreContractTests {

    static func record(_ id: String, shard: Int, member: Int, ports: [UInt64]) -> TaskRecord {
        TaskRecord(
            taskID: TaskID(id), slot: MemberSlot(cluster: "c1", shard: shard, member: member),
            role: member == 0 ? .primary : .replica, phase: .launching, lastState: nil, agentID: AgentID("a\(member)"),
            hostname: "127.0.0.1", ports: ports, failureDomain: "rack:r\(member)")
    }

    @Test(arguments: StoreKind.allCases)
    func reopeningTheStoreRestoresTheSameState(kind: StoreKind) async throws {
        let location = try StoreKind.Location(kind)
        defer { location.remove() }
        let spec = ClusterSpec(name: "c1", shardCount: 2, replicasPerShard: 1, memoryMBPerNode: 64, secureReplication: false)
        var layout = ClusterLayout(cluster: "c1", epoch: 7)
        layout.assignSlotsEvenly(shardCount: 2)
        var running = Self.record("c1.s0.m0.1", shard: 0, member: 0, ports: [31000, 31001])
        running.phase = .reported
        running.lastState = .running
        let batches = [
            PersistBatch(id: 1, intents: [.setFrameworkID(FrameworkID("fw-1")), .putCluster(spec)]),
            PersistBatch(id: 2, intents: [
                .putTask(Self.record("c1.s0.m0.1", shard: 0, member: 0, ports: [31000, 31001])),
                .putTask(Self.record("c1.s0.m1.2", shard: 0, member: 1, ports: [31002, 31003])),
                .putTask(Self.record("c1.s1.m0.3", shard: 1, member: 0, ports: [31004, 31005])),
                .setNextTaskNumber(4),
            ]),
            PersistBatch(id: 3, intents: [.putTask(running), .deleteTask(TaskID("c1.s0.m1.2")), .setNextTaskNumber(2)]),
            // Cluster-mode layouts: one kept, one removed with its cluster.
            PersistBatch(id: 4, intents: [
                .putCluster(ClusterSpec(name: "gone", shardCount: 1, replicasPerShard: 0, memoryMBPerNode: 64, secureReplication: false)),
                .putLayout(layout), .putLayout(ClusterLayout(cluster: "gone", epoch: 3)),
            ]),
            PersistBatch(id: 5, intents: [.deleteCluster(name: "gone")]),
            // Volume homes of persistent member slots: put, moved, deleted.
            PersistBatch(id: 6, intents: [
                .putVolumeHome(MemberSlot(cluster: "c1", shard: 0, member: 0), AgentID("a0")),
                .putVolumeHome(MemberSlot(cluster: "c1", shard: 1, member: 0), AgentID("a0")),
                .putVolumeHome(MemberSlot(cluster: "c1", shard: 1, member: 1), AgentID("a1")),
            ]),
            PersistBatch(id: 7, intents: [
                .putVolumeHome(MemberSlot(cluster: "c1", shard: 1, member: 0), AgentID("a2")),
                .deleteVolumeHome(MemberSlot(cluster: "c1", shard: 1, member: 1)),
            ]),
        ]
        var expected = SchedulerSnapshot()
        do {
            let store = try location.open()
            for batch in batches {
                try await store.apply(batch)
                expected.apply(batch)
            }
            #expect(try await store.load() == expected)
        }
        let reopened = try location.open()
        let loaded = try await reopened.load()
        #expect(loaded == expected)
        #expect(loaded.nextTaskNumber == 4, "the next task number never goes down")
        #expect(loaded.tasks[TaskID("c1.s0.m0.1")]?.lastState == .running)
        #expect(loaded.tasks.count == 2)
        #expect(loaded.clusters["c1"] == spec)
        #expect(loaded.frameworkID == FrameworkID("fw-1"))
        #expect(loaded.layouts == ["c1": layout], "layouts survive reopening; a deleted cluster's layout goes with it")
        #expect(loaded.volumeHomes == [
            MemberSlot(cluster: "c1", shard: 0, member: 0): AgentID("a0"), MemberSlot(cluster: "c1", shard: 1, member: 0): AgentID("a2"),
        ])
    }

    @Test(arguments: StoreKind.allCases)
    func localTaskJournalSurvivesReopening(kind: StoreKind) async throws {
        let location = try StoreKind.Location(kind)
        defer { location.remove() }
        let info = TaskInfo(
            name: "n", taskID: TaskID("t1"), agentID: AgentID("a"), resources: [.scalar("cpus", 0.1)],
            command: CommandInfo(value: "cache-node", arguments: ["--port", "1"]))
        do {
            let store = try location.open()
            try await store.recordLaunch(LocalTaskEntry(info: info, pid: 4242, startTicks: 77))
            try await store.recordLaunch(LocalTaskEntry(info: info.renamed("t2"), pid: 4243, startTicks: 78))
            try await store.recordExit(TaskID("t2"))
        }
        let entries = try await location.open().loadLaunches()
        #expect(entries == [LocalTaskEntry(info: info, pid: 4242, startTicks: 77)])
    }

    /// Crash after the launch intents are durable but before the accept is sent: the restarted scheduler reconciles
    /// the recorded tasks (the backend never heard of them: TASK_LOST), then launches each member exactly once.
    @Test(arguments: StoreKind.allCases)
    func crashBetweenIntentAndLaunchReconcilesWithoutDuplicates(kind: StoreKind) async throws {
        let location = try StoreKind.Location(kind)
        defer { location.remove() }
        let agents = (0..<2).map {
            SimulatedAgent(
                id: AgentID("agent-\($0)"), hostname: "host-\($0)",
                total: ResourceQuantities(cpus: 8, memMB: 8192, ports: RangeSet([ValueRange(begin: 31000, end: 31099)])))
        }
        var simulation = SimulatedCluster(agents: agents, now: SchedulerTime(seconds: 100))
        let spec = ClusterSpec(name: "c1", shardCount: 3, replicasPerShard: 1, memoryMBPerNode: 64, secureReplication: false)

        // First life: persist every batch, but "crash" before acting on the launch batch's `.persisted`.
        do {
            let store = try location.open()
            var machine = SchedulerStateMachine()
            func drive(_ actions: [SchedulerAction], confirm: Bool) async throws {
                var queue = actions
                while !queue.isEmpty {
                    let action = queue.removeFirst()
                    if case .persist(let batch) = action {
                        try await store.apply(batch)
                        if confirm { queue += machine.handle(.persisted(batchID: batch.id)) }
                    } else {
                        for event in simulation.apply(action) {
                            if case .update(let status) = event { queue += machine.handle(.update(status, now: simulation.now)) }
                        }
                    }
                }
            }
            try await drive(machine.handle(.subscribed(FrameworkID("fw"), now: simulation.now)), confirm: true)
            try await drive(try machine.createCluster(spec), confirm: true)
            let offers = simulation.makeOffers()
            try await drive(machine.handle(.offers(offers, now: simulation.now)), confirm: false)
            #expect(simulation.launched.isEmpty, "the crash happened before any accept")
        }
        simulation.voidOutstandingOffers()
        simulation.advance(by: 10)

        // Second life: restart from the store.
        let store = try location.open()
        let snapshot = try await store.load()
        #expect(snapshot.tasks.count == 6, "the six launch intents were durable")
        var machine = SchedulerStateMachine(restoring: snapshot)
        var queue = machine.handle(.subscribed(FrameworkID("fw"), now: simulation.now))
        var rounds = 0
        while rounds < 20 {
            while !queue.isEmpty {
                let action = queue.removeFirst()
                if case .persist(let batch) = action {
                    try await store.apply(batch)
                    queue += machine.handle(.persisted(batchID: batch.id))
                } else {
                    for event in simulation.apply(action) {
                        if case .update(let status) = event { queue += machine.handle(.update(status, now: simulation.now)) }
                    }
                }
            }
            for task in simulation.tasks.values where task.state == .staging {
                if case .update(let status)? = simulation.setState(task.info.taskID, .running) {
                    queue += machine.handle(.update(status, now: simulation.now))
                }
            }
            simulation.advance(by: 1)
            let offers = simulation.makeOffers()
            if !offers.isEmpty { queue += machine.handle(.offers(offers, now: simulation.now)) }
            rounds += 1
        }
        #expect(simulation.launched.count == 6, "each of the 6 members launched exactly once")
        #expect(Set(simulation.launched.map { "\($0.labels["shard"]!)/\($0.labels["member"]!)" }).count == 6)
        let final = try await store.load()
        #expect(final.tasks.count == 6)
        #expect(final.tasks.values.allSatisfy { $0.lastState == .running })
        #expect(final.nextTaskNumber > 7, "task numbers of the lost intents are not reused")
    }
}

extension TaskInfo {
    func renamed(_ id: String) -> TaskInfo {
        var copy = self
        copy.taskID = TaskID(id)
        return copy
    }
}
