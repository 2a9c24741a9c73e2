// Cluster mode in the scheduler: cache-node members launched with cluster mode and secure replication flags, slots
// assigned and the topology pushed once every member runs with a node id, a lost primary promoted and the new
// topology pushed with a higher (persisted) epoch, a lost replica replaced and attached, unacknowledged pushes
// retried, and restarts in the middle of a heal that finish it. Simulated backend, manual clock, no sleeps.

import CacheFramework
import Testing

struct ClusterHealTests {
    static func secureConfiguration() -> SchedulerStateMachine.Configuration {
        var configuration = SchedulerStateMachine.Configuration()
        configuration.credentialsDirectory = "/creds"
        return configuration
    }

    /// A running 3 × (1 + 1) cache-node cluster named `c` with its first topology pushed.
    func provisioned(secure: Bool = true) throws -> SchedulerHarness {
        var harness = SchedulerHarness(agents: 4, configuration: Self.secureConfiguration())
        harness.subscribe()
        try harness.create(
            ClusterSpec(name: "c", shardCount: 3, replicasPerShard: 1, memoryMBPerNode: 64, secureReplication: secure))
        harness.offerRound()
        harness.startAll()
        return harness
    }

    func record(_ harness: SchedulerHarness, shard: Int, role: MemberRole) throws -> TaskRecord {
        try #require(harness.machine.tasks.values.first { $0.slot.shard == shard && $0.role == role })
    }

    func index(_ harness: SchedulerHarness, _ predicate: (SchedulerAction) -> Bool) -> Int? {
        harness.log.lastIndex(where: predicate)
    }

    @Test func membersGetClusterModeAndTheirIdentityAndReplicasUseTheSecurePort() throws {
        let harness = try provisioned()
        #expect(harness.simulation.launched.count == 6)
        for info in harness.simulation.launched {
            let arguments = info.command.arguments
            let record = try #require(harness.machine.tasks[info.taskID])
            #expect(arguments.contains(["--cluster-enabled", "yes"]))
            #expect(arguments.contains(["--node-identity", "/creds/\(info.taskID.value).identity"]))
            #expect(arguments.contains(["--cluster-authority", "/creds/authority.pub"]))
            #expect(arguments.contains(["--revocation-list", "/creds/revoked.list"]), "started with the current revocation list")
            #expect(arguments.contains(["--replication-port", "\(record.ports[1])"]))
            #expect(!arguments.contains("--replication-plaintext"))
            #expect(info.labels[TaskTemplate.identityLabel] == "/creds/\(info.taskID.value).identity")
        }
        for shard in 0..<3 {
            let primary = try record(harness, shard: shard, role: .primary)
            let replica = try record(harness, shard: shard, role: .replica)
            let secureEndpoint = TaskEndpoint(taskID: primary.taskID, hostname: primary.hostname, port: primary.ports[1])
            #expect(harness.log.contains(.replicate(replica: replica.endpoint, primary: secureEndpoint)))
        }
    }

    @Test func plaintextClustersOptInOnTheCommandLineAndReplicateOnTheClientPort() throws {
        let harness = try provisioned(secure: false)
        for info in harness.simulation.launched {
            #expect(info.command.arguments.contains(["--replication-plaintext", "yes"]))
            #expect(!info.command.arguments.contains("--node-identity"))
            #expect(info.labels[TaskTemplate.identityLabel] == nil)
        }
        let primary = try record(harness, shard: 0, role: .primary)
        let replica = try record(harness, shard: 0, role: .replica)
        #expect(harness.log.contains(.replicate(replica: replica.endpoint, primary: primary.endpoint)))
    }

    @Test func topologyIsPushedOnceEveryMemberRunsWithANodeIDAfterItsEpochIsDurable() throws {
        var harness = SchedulerHarness(agents: 4, configuration: Self.secureConfiguration())
        harness.subscribe()
        try harness.create(ClusterSpec(name: "c", shardCount: 3, replicasPerShard: 1, memoryMBPerNode: 64))
        harness.offerRound()
        // Five members run; the sixth has not answered CLUSTER MYID: nothing is pushed.
        let silent = try #require(harness.machine.tasks.keys.sorted().last)
        harness.silentNodes = [silent]
        harness.startAll()
        #expect(harness.pushes.isEmpty)
        #expect(harness.machine.layouts["c"]?.isProvisioned != true)

        // The query is retried on a tick; once it answers, the first topology goes to all six.
        harness.silentNodes = []
        harness.simulation.advance(by: 1)
        harness.send(.tick(now: harness.now))
        #expect(harness.pushes.count == 1)
        let push = try #require(harness.pushes.first)
        #expect(push.topology.epoch == 1)
        #expect(push.topology.problems.isEmpty)
        #expect(push.topology.shards.map(\.slots) == [[0...5460], [5461...10922], [10923...16383]])
        #expect(Set(push.targets.map(\.taskID)) == Set(harness.machine.tasks.keys))
        for (index, shard) in push.topology.shards.enumerated() {
            let primary = try record(harness, shard: index, role: .primary)
            let replica = try record(harness, shard: index, role: .replica)
            #expect(shard.primary == SlotTopology.Member(nodeID: "node-\(primary.taskID.value)", host: primary.hostname, port: Int(primary.ports[0]), busPort: Int(primary.ports[1])))
            #expect(shard.replicas.map(\.nodeID) == ["node-\(replica.taskID.value)"])
        }
        // The layout with epoch 1 was persisted before the push; node ids are in the durable records.
        let persisted = try #require(harness.log.firstIndex {
            if case .persist(let batch) = $0 { return batch.intents.contains { if case .putLayout(let l) = $0 { l.epoch == 1 } else { false } } }
            return false
        })
        #expect(persisted < index(harness) { if case .pushTopology = $0 { true } else { false } }!)
        #expect(harness.durable.layouts["c"]?.epoch == 1)
        #expect(harness.durable.tasks.values.allSatisfy { $0.clusterNodeID == "node-\($0.taskID.value)" })
        #expect(harness.machine.appliedEpochs.values.allSatisfy { $0 == 1 })
        // Nothing changed: ticks push nothing more.
        harness.simulation.advance(by: 5)
        harness.send(.tick(now: harness.now))
        #expect(harness.pushes.count == 1)
    }

    @Test func lostPrimaryIsPromotedThenANewEpochAndAReplacementReplicaFollow() throws {
        var harness = try provisioned()
        let primary = try record(harness, shard: 1, role: .primary)
        let replica = try record(harness, shard: 1, role: .replica)
        harness.offsets = [:]  // the replica has not answered yet
        harness.simulation.advance(by: 1)
        harness.deliver(harness.simulation.setState(primary.taskID, .failed))
        #expect(harness.machine.isPromoting(primary.slot.group))
        #expect(harness.pushes.count == 1, "no topology is pushed while the shard is promoting")

        harness.send(.replicationOffset(replica.taskID, offset: 4242))
        #expect(harness.log.contains(.promote(replica.endpoint)))
        #expect(harness.durable.tasks[replica.taskID]?.role == .primary)
        let push = try #require(harness.pushes.last)
        #expect(push.topology.epoch == 2)
        #expect(push.topology.shards[1].primary.nodeID == "node-\(replica.taskID.value)")
        #expect(push.topology.shards[1].slots == [5461...10922])
        #expect(push.topology.shards[1].replicas.isEmpty)
        #expect(!push.targets.contains { $0.taskID == primary.taskID })
        #expect(push.targets.count == 5)
        // REPLICAOF NO ONE comes before the push that hands the slots to the new primary.
        #expect(index(harness) { $0 == .promote(replica.endpoint) }! < index(harness) { if case .pushTopology = $0 { true } else { false } }!)
        let heal = try #require(harness.durable.layouts["c"]?.heals.last)
        #expect(heal.lostTask == primary.taskID && heal.promoted == replica.taskID && heal.shard == 1)
        #expect(harness.durable.layouts["c"]?.epoch == 2)

        // The replacement launches into the freed slot as a replica, follows the new primary on its secure port and
        // joins the topology with epoch 3.
        harness.offerRound()
        let replacement = try #require(harness.simulation.launched.last)
        #expect(harness.simulation.launched.count == 7)
        #expect(harness.machine.tasks[replacement.taskID]?.role == .replica)
        harness.startAll()
        let secure = TaskEndpoint(taskID: replica.taskID, hostname: replica.hostname, port: replica.ports[1])
        #expect(harness.log.contains(.replicate(replica: harness.machine.tasks[replacement.taskID]!.endpoint, primary: secure)))
        let last = try #require(harness.pushes.last)
        #expect(last.topology.epoch == 3)
        #expect(last.topology.shards[1].replicas.map(\.nodeID) == ["node-\(replacement.taskID.value)"])
        #expect(last.targets.count == 6)
    }

    @Test func lostReplicaLeavesTheTopologyAndItsReplacementIsAttached() throws {
        var harness = try provisioned()
        let primary = try record(harness, shard: 2, role: .primary)
        let replica = try record(harness, shard: 2, role: .replica)
        harness.deliver(harness.simulation.setState(replica.taskID, .failed))
        #expect(!harness.log.contains { if case .promote = $0 { true } else { false } })
        let push = try #require(harness.pushes.last)
        #expect(push.topology.epoch == 2)
        #expect(push.topology.shards[2].replicas.isEmpty)
        #expect(harness.durable.layouts["c"]?.heals.last?.lostRole == .replica)

        harness.offerRound()
        harness.startAll()
        let replacement = try #require(harness.machine.tasks.values.first { $0.slot.shard == 2 && $0.role == .replica })
        #expect(replacement.taskID != replica.taskID)
        let secure = TaskEndpoint(taskID: primary.taskID, hostname: primary.hostname, port: primary.ports[1])
        #expect(harness.log.contains(.replicate(replica: replacement.endpoint, primary: secure)))
        #expect(harness.pushes.last?.topology.epoch == 3)
        #expect(harness.pushes.last?.topology.shards[2].replicas.map(\.nodeID) == ["node-\(replacement.taskID.value)"])
    }

    @Test func refusedPushesAreRetriedOnlyToTheMembersThatMissedThemAndInFlightOnesAreNotDuplicated() throws {
        var harness = SchedulerHarness(agents: 4, configuration: Self.secureConfiguration())
        harness.subscribe()
        try harness.create(ClusterSpec(name: "c", shardCount: 3, replicasPerShard: 1, memoryMBPerNode: 64))
        harness.offerRound()
        let ids = harness.machine.tasks.keys.sorted()
        let (refusing, silent) = (ids[0], ids[1])
        harness.refusingPushes = [refusing]
        harness.unacknowledgedPushes = [silent]
        harness.startAll()
        #expect(harness.pushes.count == 1)
        harness.simulation.advance(by: 0.5)
        harness.send(.tick(now: harness.now))
        #expect(harness.pushes.count == 1, "not yet due")
        harness.refusingPushes = []
        harness.simulation.advance(by: 1)
        harness.send(.tick(now: harness.now))
        #expect(harness.pushes.count == 2)
        #expect(harness.pushes.last?.targets.map(\.taskID) == [refusing], "the push still in flight is not sent twice")
        #expect(harness.pushes.last?.topology.epoch == 1, "a retry re-sends the same epoch")
        // A push whose answer never comes is sent again after the push timeout.
        harness.unacknowledgedPushes = []
        harness.simulation.advance(by: 30)
        harness.send(.tick(now: harness.now))
        #expect(harness.pushes.count == 3)
        #expect(harness.pushes.last?.targets.map(\.taskID) == [silent])
        harness.simulation.advance(by: 31)
        harness.send(.tick(now: harness.now))
        #expect(harness.pushes.count == 3)
        #expect(harness.machine.appliedEpochs.count == 6)
    }

    @Test func restartWhileOffsetsAreAwaitedFinishesThePromotionWithAHigherEpoch() throws {
        var harness = try provisioned()
        let primary = try record(harness, shard: 0, role: .primary)
        let replica = try record(harness, shard: 0, role: .replica)
        harness.deliver(harness.simulation.setState(primary.taskID, .failed))
        #expect(harness.machine.isPromoting(primary.slot.group))
        #expect(harness.durable.tasks[primary.taskID] == nil)

        // The framework dies before the replica answered; the new one finds a shard with a replica and no primary.
        harness.restart()
        harness.offsets = [replica.taskID: 99]
        harness.subscribe()
        #expect(harness.machine.phase == .ready)
        #expect(harness.log.contains(.promote(replica.endpoint)))
        #expect(harness.durable.tasks[replica.taskID]?.role == .primary)
        let push = try #require(harness.pushes.last)
        #expect(push.topology.epoch == 2)
        #expect(push.topology.shards[0].primary.nodeID == "node-\(replica.taskID.value)")
        harness.offerRound()
        harness.startAll()
        #expect(harness.simulation.launched.count == 7, "exactly one replacement")
        #expect(harness.pushes.last?.topology.epoch == 3)
        #expect(harness.durable.layouts["c"]?.epoch == 3)
    }

    @Test func restartAfterThePromotionWasRecordedReassertsItAndPushesAgain() throws {
        var harness = try provisioned()
        let primary = try record(harness, shard: 1, role: .primary)
        let replica = try record(harness, shard: 1, role: .replica)
        harness.offsets = [replica.taskID: 10]
        harness.deliver(harness.simulation.setState(primary.taskID, .failed))
        #expect(harness.durable.tasks[replica.taskID]?.role == .primary)
        let epochBefore = try #require(harness.durable.layouts["c"]?.epoch)
        let promotesBefore = harness.count { $0 == .promote(replica.endpoint) }

        // Whether or not REPLICAOF NO ONE and the push reached the members, a restart sends them again with a new
        // epoch (re-sending to a primary is a no-op).
        harness.restart()
        harness.subscribe()
        #expect(harness.count { $0 == .promote(replica.endpoint) } == promotesBefore + 1)
        let push = try #require(harness.pushes.last)
        #expect(push.topology.epoch == epochBefore + 1)
        #expect(push.topology.shards[1].primary.nodeID == "node-\(replica.taskID.value)")
        #expect(!harness.machine.isPromoting(primary.slot.group))
        #expect(harness.durable.layouts["c"]?.heals.count == 1)
        let other = try record(harness, shard: 0, role: .replica)
        let otherPrimary = try record(harness, shard: 0, role: .primary)
        let secure = TaskEndpoint(taskID: otherPrimary.taskID, hostname: otherPrimary.hostname, port: otherPrimary.ports[1])
        #expect(harness.count { $0 == .replicate(replica: other.endpoint, primary: secure) } == 2, "replication re-asserted")
    }

    @Test func redisServerClustersGetNoTopology() throws {
        var harness = SchedulerHarness(agents: 3, configuration: Self.secureConfiguration())
        harness.subscribe()
        try harness.create(
            ClusterSpec(name: "r", shardCount: 2, replicasPerShard: 1, memoryMBPerNode: 64, engine: .redisServer, secureReplication: false))
        harness.offerRound()
        harness.startAll()
        #expect(harness.pushes.isEmpty)
        #expect(!harness.log.contains { if case .queryClusterNodeID = $0 { true } else { false } })
        #expect(harness.simulation.launched.allSatisfy { !$0.command.arguments.contains("--cluster-enabled") })
    }
}

extension Array where Element == String {
    /// Whether `pair` appears as consecutive elements.
    func contains(_ pair: [String]) -> Bool {
        guard pair.count == 2 else { return false }
        return zip(self, dropFirst()).contains { $0 == pair[0] && $1 == pair[1] }
    }
}
