// Partition-aware task states in the scheduler (Mesos' PARTITION_AWARE semantics, modelled by `SimulatedCluster`):
// an agent partitioned from the master turns its tasks TASK_UNREACHABLE; the scheduler treats them as lost (a primary's
// replica is promoted, the slot replaced elsewhere); when the agent comes back its tasks are re-reported RUNNING and
// the stale one is killed instead of serving as a second primary. An agent marked gone turns its tasks
// TASK_GONE_BY_OPERATOR: replaced, and a persistent member's volume home is forgotten. Simulated backend, no sleeps.

import CacheFramework
import Testing

struct PartitionTests {
    /// A running 2 × (1 + 1) cache-node cluster `p` on 3 agents with its first topology pushed.
    func provisioned(configuration: SchedulerStateMachine.Configuration = .init(), persistence: Bool = false) throws -> SchedulerHarness {
        var harness = SchedulerHarness(agents: 3, configuration: configuration)
        harness.subscribe()
        try harness.create(ClusterSpec(
            name: "p", shardCount: 2, replicasPerShard: 1, memoryMBPerNode: 64, persistence: persistence, secureReplication: false))
        harness.offerRound()
        harness.startAll()
        return harness
    }

    func kills(_ harness: SchedulerHarness, of taskID: TaskID) -> Int {
        harness.count { if case .kill(let id, _) = $0 { id == taskID } else { false } }
    }

    @Test func unreachablePrimaryIsReplacedAndKilledWhenItsAgentReturns() throws {
        var harness = try provisioned()
        #expect(harness.pushes.count == 1)
        let primary = try #require(harness.machine.tasks.values.first { $0.slot.shard == 0 && $0.role == .primary })
        let replica = try #require(harness.machine.tasks.values.first { $0.slot.shard == 0 && $0.role == .replica })
        let stranded = harness.machine.tasks.values.filter { $0.agentID == primary.agentID }.map(\.taskID)
        harness.offsets = Dictionary(uniqueKeysWithValues: harness.machine.tasks.keys.map { ($0, 100) })
        let acknowledgedBefore = harness.simulation.acknowledged.count

        // The agent stops reaching the master: its tasks turn UNREACHABLE (no uuid: nothing to acknowledge).
        for event in harness.simulation.partitionAgent(primary.agentID) { harness.deliver(event) }
        #expect(harness.simulation.acknowledged.count == acknowledgedBefore, "master-generated updates carry no uuid")
        for id in stranded { #expect(harness.machine.tasks[id] == nil, "\(id) no longer counts as a member") }
        #expect(harness.log.contains(.promote(replica.endpoint)), "the replica was promoted")
        #expect(harness.durable.tasks[replica.taskID]?.role == .primary)
        #expect(harness.pushes.last?.topology.shards[0].primary.nodeID == "node-\(replica.taskID.value)")
        // The master answers the KILL of an unreachable task with a reconciliation (UNREACHABLE again): no kill loop.
        #expect(kills(harness, of: primary.taskID) == 1)

        // Replacements go to the agents that still offer, never to the partitioned one.
        harness.offerRound()
        harness.startAll()
        let members = harness.machine.tasks.values.filter { $0.slot.cluster == "p" }
        #expect(members.count == 4, "every slot is filled again: \(members.map(\.taskID))")
        #expect(!members.contains { $0.agentID == primary.agentID })
        let allRunning = members.allSatisfy { $0.isRunning }
        #expect(allRunning)
        let healedMembers = Set(members.map(\.taskID))

        // The agent comes back: its tasks are re-reported RUNNING and killed (they have been replaced).
        for event in harness.simulation.reconnectAgent(primary.agentID) { harness.deliver(event) }
        for id in stranded {
            #expect(kills(harness, of: id) >= 1)
            #expect(harness.simulation.tasks[id]?.state == .killed, "\(id) was killed, not adopted")
        }
        #expect(harness.machine.tasks.values.filter { $0.slot.cluster == "p" }.count == 4)
        #expect(Set(harness.machine.tasks.keys) == healedMembers, "exactly the healed members, no second primary")
        #expect(harness.primaries(of: "p").count == 2)
        #expect(harness.machine.tasks[primary.taskID] == nil)
    }

    @Test func implicitReconciliationLeavesUnreachableTasksAlone() throws {
        var harness = try provisioned()
        let agent = try #require(harness.machine.tasks.values.first?.agentID)
        for event in harness.simulation.partitionAgent(agent) { harness.deliver(event) }
        let killsBefore = harness.count { if case .kill = $0 { true } else { false } }
        harness.send(.tick(now: harness.now.adding(seconds: 601)))  // periodic implicit reconciliation
        #expect(harness.count { if case .kill = $0 { true } else { false } } == killsBefore)
        // A restart reconciles explicitly: the recorded tasks are answered (none is unreachable any more in the records).
        harness.restart()
        harness.subscribe()
        #expect(harness.machine.phase == .ready)
    }

    @Test func agentMarkedGoneReplacesItsMembersAndForgetsTheirVolumes() throws {
        var configuration = SchedulerStateMachine.Configuration()
        configuration.pinPersistentMembers = true
        var harness = try provisioned(configuration: configuration, persistence: true)
        let gone = try #require(harness.machine.tasks.values.first { $0.role == .primary })
        let lost = harness.machine.tasks.values.filter { $0.agentID == gone.agentID }.map(\.taskID)
        harness.offsets = Dictionary(uniqueKeysWithValues: harness.machine.tasks.keys.map { ($0, 1) })

        for event in harness.simulation.markAgentGone(gone.agentID) { harness.deliver(event) }
        for id in lost {
            #expect(harness.machine.tasks[id] == nil)
            #expect(harness.simulation.tasks[id]?.state == .goneByOperator)
        }
        // Not pinned to the gone agent's volume: the slots are filled on the remaining agents at once.
        harness.offerRound()
        harness.startAll()
        let members = harness.machine.tasks.values.filter { $0.slot.cluster == "p" }
        let allRunning = members.allSatisfy { $0.isRunning }
        #expect(members.count == 4 && allRunning)
        #expect(!members.contains { $0.agentID == gone.agentID })
        #expect(harness.primaries(of: "p").count == 2)

        // TASK_GONE_BY_OPERATOR is not always terminal: a task that returns RUNNING anyway is killed.
        let returning = try #require(lost.first)
        harness.deliver(.update(TaskStatus(
            taskID: returning, state: .running, reason: "REASON_SLAVE_REREGISTERED", agentID: gone.agentID)))
        #expect(harness.log.last == .kill(taskID: returning, agentID: gone.agentID))
    }
}

/// Volume homes are durable: a persistent member lost, then the scheduler restarted before the slot was refilled,
/// still waits for its volume's agent (offers of other agents are declined) and is relaunched there.
struct VolumeHomeTests {
    @Test func aRestartedSchedulerStillRelaunchesAnEmptySlotOnItsVolumesAgent() throws {
        var configuration = SchedulerStateMachine.Configuration()
        configuration.pinPersistentMembers = true
        var harness = SchedulerHarness(agents: 2, configuration: configuration)
        harness.subscribe()
        try harness.create(ClusterSpec(
            name: "v", shardCount: 1, replicasPerShard: 0, memoryMBPerNode: 64, engine: .redisServer, persistence: true,
            secureReplication: false))
        harness.offerRound()
        harness.startAll()
        let member = try #require(harness.machine.tasks.values.first)
        #expect(harness.durable.volumeHomes == [member.slot: member.agentID], "the home is recorded with the launch")

        // The member dies; before any offer comes, the scheduler restarts: no task record is left for the slot.
        harness.deliver(harness.simulation.setState(member.taskID, .failed))
        #expect(harness.durable.tasks.isEmpty)
        harness.restart()
        harness.subscribe()
        #expect(harness.machine.phase == .ready)

        // Offers of the other agent are declined: the slot waits for its volume.
        let other = harness.simulation.makeOffers().filter { $0.agentID != member.agentID }
        #expect(!other.isEmpty)
        harness.send(.offers(other, now: harness.now))
        #expect(harness.machine.tasks.isEmpty, "not placed away from its volume")
        harness.simulation.voidOutstandingOffers()
        harness.simulation.advance(by: 10)
        harness.offerRound()
        let relaunched = try #require(harness.machine.tasks.values.first)
        #expect(relaunched.agentID == member.agentID && relaunched.slot == member.slot)

        // Deleting the cluster forgets the home.
        harness.run(try harness.machine.deleteCluster("v"))
        #expect(harness.durable.volumeHomes.isEmpty)
    }

    /// An idle scheduler has suppressed offers (and refused its agents' for minutes), but a deleted cluster's freed
    /// volumes must be offered for the backend to destroy them: the end of a killed member that held one revives
    /// offers. A cluster without volumes leaves them suppressed.
    @Test(arguments: [true, false])
    func deletingAClusterRevivesOffersWhenAMemberWithAVolumeEnds(persistence: Bool) throws {
        var configuration = SchedulerStateMachine.Configuration()
        configuration.pinPersistentMembers = true
        var harness = SchedulerHarness(agents: 2, configuration: configuration)
        harness.subscribe()
        try harness.create(ClusterSpec(
            name: "v", shardCount: 1, replicasPerShard: 0, memoryMBPerNode: 64, engine: .redisServer,
            persistence: persistence, secureReplication: false))
        harness.offerRound()
        harness.startAll()
        harness.simulation.advance(by: 10)
        harness.offerRound()
        #expect(harness.machine.suppressed, "nothing to launch: offers suppressed")
        let member = try #require(harness.machine.tasks.values.first)

        let before = harness.log.count
        harness.run(try harness.machine.deleteCluster("v"))
        let after = Array(harness.log[before...])
        let killed = try #require(after.firstIndex(of: .kill(taskID: member.taskID, agentID: member.agentID)))
        if persistence {
            let revived = try #require(after.firstIndex(of: .revive), "the volume's agent must offer again")
            #expect(killed < revived, "revived once the member has ended, not before")
            #expect(!harness.machine.suppressed)
        } else {
            #expect(!after.contains(.revive))
            #expect(harness.machine.suppressed)
        }
    }
}
