// The scheduler's offer handling, persistence ordering, acknowledgements, healing and restart reconciliation,
// driven through `SchedulerHarness` with a simulated manager and an injected clock.

import CacheFramework
import Testing

func spec(_ name: String = "c", shards: Int = 2, replicas: Int = 1, memoryMB: Int = 1024) -> ClusterSpec {
    ClusterSpec(name: name, shardCount: shards, replicasPerShard: replicas, memoryMBPerNode: memoryMB)
}

struct SchedulerStateMachineTests {
    @Test func createdClusterLaunchesEveryMemberOnlyAfterPersistingIt() throws {
        var harness = SchedulerHarness(agents: 6, zones: 3)
        harness.subscribe()
        try harness.create(spec(shards: 3, replicas: 1))
        harness.offerRound()

        #expect(harness.simulation.launched.count == 6)
        let firstPersistOfTasks = try #require(harness.log.firstIndex {
            if case .persist(let batch) = $0 { return batch.intents.contains { if case .putTask = $0 { true } else { false } } }
            return false
        })
        let firstAccept = try #require(harness.log.firstIndex { if case .accept = $0 { true } else { false } })
        #expect(firstPersistOfTasks < firstAccept)
        for info in harness.simulation.launched {
            #expect(harness.durable.tasks[info.taskID] != nil, "launched \(info.taskID) without a durable intent")
        }
        for shard in 0..<3 {
            let members = harness.machine.tasks.values.filter { $0.slot.shard == shard }
            #expect(Set(members.map(\.agentID)).count == 2)
            #expect(Set(members.compactMap(\.failureDomain)).count == 2)
            #expect(members.filter { $0.role == .primary }.count == 1)
        }
    }

    @Test func unusedOffersAreDeclinedWithARefuseFilterAndIdleOffersSuppressed() throws {
        var harness = SchedulerHarness(agents: 10)
        harness.subscribe()
        try harness.create(spec(shards: 1, replicas: 0))
        harness.offerRound()
        let declined = harness.log.compactMap { action -> (Int, Double)? in
            if case .decline(let ids, let filters) = action { return (ids.count, filters.refuseSeconds) }
            return nil
        }
        #expect(declined.count == 1)
        #expect(declined.first?.0 == 9)
        #expect(declined.first?.1 == 5)

        harness.startAll()
        harness.simulation.advance(by: 6)
        harness.offerRound()
        #expect(harness.simulation.launched.count == 1)
        #expect(harness.simulation.suppressed)
        guard case .decline(_, let filters) = harness.log.last(where: { if case .decline = $0 { true } else { false } })
        else { Issue.record("no decline"); return }
        #expect(filters.refuseSeconds == 120)
        harness.offerRound()
        #expect(harness.simulation.outstanding.isEmpty, "a suppressed framework gets no offers")
    }

    @Test func offersRescindedBeforeTheIntentIsDurableCancelTheirLaunches() throws {
        var harness = SchedulerHarness(agents: 4)
        harness.subscribe()
        try harness.create(spec(shards: 1, replicas: 1))
        harness.confirmPersists = false
        let offers = harness.simulation.makeOffers()
        harness.send(.offers(offers, now: harness.now))
        guard case .persist(let batch) = harness.log.last(where: { if case .persist = $0 { true } else { false } }) else {
            Issue.record("no persist")
            return
        }
        #expect(harness.count { if case .accept = $0 { true } else { false } } == 0)
        let placedAgents = Set(harness.machine.tasks.values.map(\.agentID))
        let rescinded = try #require(offers.first { placedAgents.contains($0.agentID) })
        harness.deliver(harness.simulation.rescind(rescinded.id))
        harness.confirmPersists = true
        let revivesBefore = harness.count { $0 == .revive }
        harness.send(.persisted(batchID: batch.id))

        #expect(harness.simulation.launched.count == 1)
        #expect(!harness.simulation.launched.contains { $0.agentID == rescinded.agentID })
        #expect(harness.machine.pendingSlots.count == 1)
        #expect(harness.count { $0 == .revive } == revivesBefore + 1)
        harness.offerRound()
        #expect(harness.simulation.launched.count == 2)
        #expect(harness.machine.pendingSlots.isEmpty)
    }

    @Test func statusUpdatesArePersistedThenAcknowledged() throws {
        var harness = SchedulerHarness(agents: 3)
        harness.subscribe()
        try harness.create(spec(shards: 1, replicas: 2))
        harness.offerRound()
        harness.startAll()
        let acks = harness.log.enumerated().compactMap { index, action -> (Int, TaskID)? in
            if case .acknowledge(_, let id, _) = action { return (index, id) }
            return nil
        }
        #expect(acks.count == 6)  // staging and running for three tasks
        for (index, taskID) in acks {
            let lastPersist = harness.log[..<index].last { if case .persist = $0 { true } else { false } }
            guard case .persist(let batch) = lastPersist else {
                Issue.record("ack of \(taskID) not preceded by a persist")
                continue
            }
            #expect(batch.intents.contains { if case .putTask(let r) = $0 { r.taskID == taskID } else { false } })
        }
        #expect(harness.simulation.acknowledged.count == 6)
        #expect(harness.machine.tasks.values.allSatisfy { $0.lastState == .running })
        // replicas get pointed at the primary once both run
        #expect(harness.count { if case .replicate = $0 { true } else { false } } == 2)
    }

    @Test func lostPrimaryPromotesTheReplicaWithTheHighestOffsetAndLaunchesAReplacement() throws {
        var harness = SchedulerHarness(agents: 4)
        harness.subscribe()
        try harness.create(spec(shards: 1, replicas: 2))
        harness.offerRound()
        harness.startAll()
        let primary = try #require(harness.primaries(of: "c").first)
        let replicas = harness.machine.tasks.values.filter { $0.role == .replica }.sorted { $0.taskID < $1.taskID }
        harness.offsets = [replicas[0].taskID: 100, replicas[1].taskID: 250]

        for event in harness.simulation.loseAgent(primary.agentID) { harness.deliver(event) }

        #expect(harness.log.contains(.promote(replicas[1].endpoint)))
        #expect(harness.log.contains(.replicate(replica: replicas[0].endpoint, primary: replicas[1].endpoint)))
        #expect(harness.primaries(of: "c").map(\.taskID) == [replicas[1].taskID])
        #expect(harness.durable.tasks[replicas[1].taskID]?.role == .primary)
        harness.offerRound()
        let replacement = try #require(harness.simulation.launched.last)
        #expect(harness.simulation.launched.count == 4)
        #expect(harness.machine.tasks[replacement.taskID]?.role == .replica)
        #expect(replacement.agentID != replicas[0].agentID && replacement.agentID != replicas[1].agentID)
    }

    @Test func promotionPicksTheBestAnswerWhenTheDeadlinePasses() throws {
        var harness = SchedulerHarness(agents: 3)
        harness.subscribe()
        try harness.create(spec(shards: 1, replicas: 2))
        harness.offerRound()
        harness.startAll()
        let primary = try #require(harness.primaries(of: "c").first)
        let replicas = harness.machine.tasks.values.filter { $0.role == .replica }.sorted { $0.taskID < $1.taskID }
        harness.offsets = [replicas[0].taskID: 7]  // replicas[1] never answers
        harness.deliver(harness.simulation.setState(primary.taskID, .failed))
        #expect(harness.machine.isPromoting(primary.slot.group))
        #expect(!harness.log.contains { if case .promote = $0 { true } else { false } })

        harness.simulation.advance(by: 4)
        harness.send(.tick(now: harness.now))
        #expect(harness.machine.isPromoting(primary.slot.group))
        harness.simulation.advance(by: 2)
        harness.send(.tick(now: harness.now))
        #expect(harness.log.contains(.promote(replicas[0].endpoint)))
        #expect(!harness.machine.isPromoting(primary.slot.group))
    }

    @Test func lostReplicaIsReplaced() throws {
        var harness = SchedulerHarness(agents: 3)
        harness.subscribe()
        try harness.create(spec(shards: 1, replicas: 1))
        harness.offerRound()
        harness.startAll()
        let replica = try #require(harness.machine.tasks.values.first { $0.role == .replica })
        harness.deliver(harness.simulation.setState(replica.taskID, .failed))
        #expect(!harness.log.contains { if case .promote = $0 { true } else { false } })
        #expect(harness.machine.pendingSlots == [replica.slot])
        harness.offerRound()
        #expect(harness.simulation.launched.count == 3)
        #expect(harness.machine.pendingSlots.isEmpty)
    }

    @Test func restartAdoptsRunningTasksWithoutLaunchingDuplicates() throws {
        var harness = SchedulerHarness(agents: 6)
        harness.subscribe()
        try harness.create(spec(shards: 2, replicas: 2))
        harness.offerRound()
        harness.startAll()
        let before = harness.machine.tasks

        harness.restart()
        #expect(harness.machine.tasks == before)
        harness.simulation.advance(by: 10)
        harness.offerRound()  // offers while disconnected are declined
        #expect(harness.simulation.launched.count == 6)
        harness.subscribe()

        guard case .reconcile(let asked) = harness.log.first(where: { if case .reconcile(let l) = $0 { !l.isEmpty } else { false } })
        else { Issue.record("no explicit reconcile"); return }
        #expect(Set(asked.map(\.taskID)) == Set(before.keys))
        #expect(harness.machine.phase == .ready)
        harness.simulation.advance(by: 10)
        harness.offerRound()
        #expect(harness.simulation.launched.count == 6, "restart must not duplicate tasks")
        #expect(harness.machine.tasks.values.allSatisfy { $0.lastState == .running })
        #expect(harness.simulation.suppressed)
    }

    @Test func restartBetweenPersistAndAcceptRelaunchesExactlyOnce() throws {
        var harness = SchedulerHarness(agents: 4)
        harness.subscribe()
        try harness.create(spec(shards: 1, replicas: 1))
        harness.confirmPersists = false
        harness.offerRound()
        #expect(harness.durable.tasks.count == 2)
        #expect(harness.simulation.launched.isEmpty)

        harness.restart()
        harness.subscribe()
        #expect(harness.machine.phase == .ready)
        #expect(harness.machine.tasks.isEmpty, "tasks the master does not know are forgotten")
        #expect(harness.durable.tasks.isEmpty)
        harness.offerRound()
        #expect(harness.simulation.launched.count == 2)
        #expect(Set(harness.simulation.launched.map(\.taskID)).count == 2)
        #expect(harness.machine.pendingSlots.isEmpty)
    }

    @Test func reconciliationIsRetriedUntilAnswered() throws {
        var machine = SchedulerStateMachine(
            restoring: SchedulerSnapshot(
                clusters: ["c": spec(shards: 1, replicas: 0)],
                tasks: [
                    TaskID("t1"): TaskRecord(
                        taskID: TaskID("t1"), slot: MemberSlot(cluster: "c", shard: 0, member: 0), role: .primary,
                        phase: .reported, lastState: .running, agentID: AgentID("a"), hostname: "h", ports: [31_000],
                        failureDomain: nil
                    )
                ]
            )
        )
        let start = SchedulerTime(seconds: 0)
        #expect(machine.handle(.subscribed(FrameworkID("f"), now: start)).contains(.persist(PersistBatch(id: 1, intents: [.setFrameworkID(FrameworkID("f"))]))))
        #expect(machine.handle(.tick(now: start.adding(seconds: 10))).isEmpty)
        let retry = machine.handle(.tick(now: start.adding(seconds: 31)))
        #expect(retry == [.reconcile([ReconcileTask(taskID: TaskID("t1"), agentID: AgentID("a"))])])
        let offers = machine.handle(.offers([makeOffer(0)], now: start.adding(seconds: 32)))
        #expect(offers == [.decline(offerIDs: [OfferID("offer-0")], filters: Filters(refuseSeconds: 2))])
        let ready = machine.handle(
            .update(TaskStatus(taskID: TaskID("t1"), state: .running, reason: TaskStatus.reconciliationReason), now: start)
        )
        #expect(ready.contains(.reconcile([])))
        #expect(machine.phase == .ready)
    }

    @Test func unknownRunningTasksAreKilled() throws {
        var harness = SchedulerHarness(agents: 2)
        harness.subscribe()
        try harness.create(spec(shards: 1, replicas: 0))
        harness.offerRound()
        let stray = TaskStatus(taskID: TaskID("stray"), state: .running, agentID: AgentID("agent-1"), uuid: "u-stray")
        harness.send(.update(stray, now: harness.now))
        #expect(harness.log.contains(.kill(taskID: TaskID("stray"), agentID: AgentID("agent-1"))))
        #expect(harness.log.contains(.acknowledge(agentID: AgentID("agent-1"), taskID: TaskID("stray"), uuid: "u-stray")))
    }

    @Test func insufficientMemoryIsReportedWithTheShortfall() throws {
        var harness = SchedulerHarness(agents: 2, memMB: 4096)
        harness.subscribe()
        try harness.create(spec(shards: 1, replicas: 0, memoryMB: 4096))
        harness.offerRound()
        #expect(harness.simulation.launched.isEmpty)
        let shortfall = try #require(harness.machine.lastShortfalls[MemberSlot(cluster: "c", shard: 0, member: 0)])
        #expect(shortfall == .insufficient(resource: .mem, requested: 5120, largestAvailable: 4096))
        #expect(shortfall.shortBy == 1024)
    }

    @Test func scaleDownKeepsThePrimaryAndReshardingIsRefused() throws {
        var harness = SchedulerHarness(agents: 3)
        harness.subscribe()
        // Resharding needs cluster mode (cache-node): a redis-server cluster refuses it.
        var redis = spec(shards: 1, replicas: 2)
        redis.engine = .redisServer
        redis.secureReplication = false
        try harness.create(redis)
        harness.offerRound()
        harness.startAll()
        let primary = try #require(harness.primaries(of: "c").first)
        harness.run(try harness.machine.scaleCluster("c", replicasPerShard: 0))
        #expect(harness.machine.tasks.keys.sorted() == [primary.taskID])
        #expect(harness.count { if case .kill = $0 { true } else { false } } == 2)
        #expect(harness.machine.pendingSlots.isEmpty)
        #expect(throws: SchedulerError.reshardingUnsupported(cluster: "c", from: 1, to: 2)) {
            try harness.machine.scaleCluster("c", replicasPerShard: 0, shardCount: 2)
        }
        #expect(throws: SchedulerError.clusterExists("c")) { try harness.machine.createCluster(spec()) }
    }

    @Test func deletingAClusterKillsItsTasks() throws {
        var harness = SchedulerHarness(agents: 2)
        harness.subscribe()
        try harness.create(spec(shards: 1, replicas: 1))
        harness.offerRound()
        harness.startAll()
        harness.run(try harness.machine.deleteCluster("c"))
        #expect(harness.machine.tasks.isEmpty)
        #expect(harness.durable.clusters.isEmpty && harness.durable.tasks.isEmpty)
        #expect(harness.simulation.tasks.values.allSatisfy { $0.state == .killed })
    }

    @Test func suppressedSchedulerRevivesWhenWorkAppears() throws {
        var harness = SchedulerHarness(agents: 3)
        harness.subscribe()
        harness.offerRound()
        #expect(harness.simulation.suppressed)
        #expect(harness.machine.suppressed)
        try harness.create(spec(shards: 1, replicas: 1))
        #expect(harness.log.last == .revive)
        #expect(!harness.simulation.suppressed)
        harness.offerRound()
        #expect(harness.simulation.launched.count == 2)
    }

    @Test func droppedLaunchIsRelaunchedWithANewTaskID() throws {
        var harness = SchedulerHarness(agents: 2)
        harness.subscribe()
        try harness.create(spec(shards: 1, replicas: 0))
        harness.offerRound()
        let first = try #require(harness.simulation.launched.first)
        harness.deliver(harness.simulation.setState(first.taskID, .dropped))
        #expect(harness.machine.tasks[first.taskID] == nil)
        harness.simulation.advance(by: 6)
        harness.offerRound()
        #expect(harness.simulation.launched.count == 2)
        #expect(harness.simulation.launched[1].taskID != first.taskID)
        #expect(harness.durable.nextTaskNumber == 3)
    }
}
