// Resharding in the scheduler: the target split, scale-out (new shards launched and acknowledged before any slot
// moves, then batches each recorded before it is sent and followed by a push), scale-in (removed shards killed only
// after their slots moved and a topology without them was acknowledged), no push while a batch runs, a failed batch
// retried, and a restart mid-migration that re-sends the batch in flight before anything else. Simulated backend,
// manual clock, simulated slot ownership on the nodes.

import CacheFramework
import Foundation
import Testing

struct ReshardingTests {
    /// A running cache-node cluster `c` with `shards` × (1 + `replicas`) members and its first topology pushed.
    func provisioned(shards: Int, replicas: Int = 0, agents: Int = 6) throws -> SchedulerHarness {
        var harness = SchedulerHarness(agents: agents, configuration: ClusterHealTests.secureConfiguration())
        harness.subscribe()
        try harness.create(ClusterSpec(name: "c", shardCount: shards, replicasPerShard: replicas, memoryMBPerNode: 64))
        harness.offerRound()
        harness.startAll()
        #expect(harness.pushes.count == 1)
        return harness
    }

    func persistedLayouts(_ harness: SchedulerHarness) -> [(index: Int, layout: ClusterLayout)] {
        harness.log.enumerated().flatMap { index, action -> [(index: Int, layout: ClusterLayout)] in
            guard case .persist(let batch) = action else { return [] }
            return batch.intents.compactMap { if case .putLayout(let layout) = $0 { (index, layout) } else { nil } }
        }
    }

    /// The slot → primary node id map of a topology.
    func owners(_ topology: SlotTopology) -> [Int: String] {
        var owners: [Int: String] = [:]
        for shard in topology.shards { for range in shard.slots { for slot in range { owners[slot] = shard.primary.nodeID } } }
        return owners
    }

    @Test func targetSplitIsTheEvenSplitKeepingTheMostSlotsInPlace() {
        let three = ClusterPlan.slotRanges(shardCount: 3).map { [$0] }
        let five = Resharding.targetSlots(current: three, toShardCount: 5)
        let even5 = Set(ClusterPlan.slotRanges(shardCount: 5))
        #expect(five.count == 5)
        #expect(Set(five.map { $0[0] }) == even5, "every shard gets one of the even ranges")
        // 0-3276 stays on shard 0, 6554-9829 inside shard 1's old range, 13107-16383 inside shard 2's; the new shards
        // get 3277-6553 and 9830-13106.
        #expect(five[0] == [SlotRange(first: 0, last: 3276)])
        #expect(five[1] == [SlotRange(first: 6554, last: 9829)])
        #expect(five[2] == [SlotRange(first: 13107, last: 16383)])
        #expect(five[3] == [SlotRange(first: 3277, last: 6553)])
        #expect(five[4] == [SlotRange(first: 9830, last: 13106)])
        #expect(Resharding.moves(current: three, target: five) == 6554)
        // An in-order even split would move 12,014.
        let inOrder = ClusterPlan.slotRanges(shardCount: 5).map { [$0] }
        #expect(Resharding.moves(current: three + [[], []], target: inOrder) == 12014)

        // 5 → 2: shards 3 and 4 give everything away; the two survivors end with the two even halves.
        let two = Resharding.targetSlots(current: five, toShardCount: 2)
        #expect(two.count == 5)
        #expect(Set(two.prefix(2).map { $0[0] }) == Set(ClusterPlan.slotRanges(shardCount: 2)))
        #expect(two[2].isEmpty && two[3].isEmpty && two[4].isEmpty)
        #expect(Resharding(current: three, toShardCount: 3).totalSlots == 0)

        // Batches: consecutive slots between the same two shards, at most the limit.
        let move = Resharding.nextMove(current: three, target: five, limit: 64)
        #expect(move == SlotMove(slots: SlotRange(first: 3277, last: 3340), fromShard: 0, toShard: 3))
        var layout = ClusterLayout(cluster: "c", shardSlots: three + [[], []])
        layout.assign(SlotRange(first: 3277, last: 3340), to: 3)
        #expect(layout.shardSlots[0] == [SlotRange(first: 0, last: 3276), SlotRange(first: 3341, last: 5460)])
        #expect(layout.shardSlots[3] == [SlotRange(first: 3277, last: 3340)])
    }

    @Test func scaleOutLaunchesTheNewShardsThenMovesSlotsBatchByBatch() throws {
        var harness = try provisioned(shards: 3, replicas: 1)
        let before = harness.log.count
        harness.run(try harness.machine.scaleCluster("c", replicasPerShard: 1, shardCount: 5))
        #expect(harness.machine.clusters["c"]?.shardCount == 5)
        #expect(harness.durable.layouts["c"]?.resharding?.phase == .launching)
        #expect(harness.machine.pendingSlots.map(\.shard) == [3, 3, 4, 4])
        #expect(harness.migrations.isEmpty, "no slot moves before the new shards run")

        harness.offerRound()
        harness.startAll()
        #expect(harness.simulation.launched.count == 10)
        // The new primaries were pushed (without slots) and acknowledged before the first batch.
        let firstMigration = try #require(harness.log.firstIndex { if case .migrateSlots = $0 { true } else { false } })
        let listing = try #require(harness.log[before...].firstIndex {
            if case .pushTopology(_, let topology, _) = $0 { topology.shards.count == 5 } else { false }
        })
        #expect(listing < firstMigration)

        // Every batch was recorded as in flight before it was sent, and a topology followed each.
        let layouts = persistedLayouts(harness)
        for (index, action) in harness.log.enumerated() {
            guard case .migrateSlots(_, let migration) = action else { continue }
            let recorded = layouts.last { $0.index < index }
            #expect(recorded?.layout.resharding?.inFlight?.slots == migration.slots)
        }
        let resharding = try #require(layouts.compactMap(\.layout.resharding).last)
        #expect(harness.migrations.map(\.slots.count).reduce(0, +) == resharding.totalSlots)
        #expect(resharding.totalSlots == 6554)
        // At most `migrationBatchSlots` (1024) consecutive slots between the same two shards per batch: 3277-5460
        // (0 → 3), 5461-6553 (1 → 3), 9830-10922 (1 → 4) and 10923-13106 (2 → 4) take 3 + 2 + 2 + 3 batches.
        #expect(harness.migrations.allSatisfy { $0.slots.count <= 1024 })
        #expect(harness.migrations.count == 10)

        // Done: the layout is the target, recorded, pushed with a new epoch and acknowledged; the nodes agree.
        let layout = try #require(harness.durable.layouts["c"])
        #expect(layout.resharding == nil)
        #expect(Set(layout.shardSlots.map { $0 }) == Set(ClusterPlan.slotRanges(shardCount: 5).map { [$0] }))
        let last = try #require(harness.pushes.last)
        #expect(last.topology.problems.isEmpty)
        #expect(last.topology.shards.count == 5)
        #expect(last.topology.shards.allSatisfy { $0.replicas.count == 1 })
        #expect(owners(last.topology) == harness.nodeOwners)
        #expect(last.topology.epoch == layout.epoch)
        #expect(harness.machine.appliedEpochs.values.allSatisfy { $0 == layout.epoch })
        #expect(!harness.log.contains { if case .kill = $0 { true } else { false } })
    }

    @Test func scaleInMovesEverySlotBeforeTheRemovedShardsAreKilled() throws {
        var harness = try provisioned(shards: 5, agents: 5)
        let removed = Set(harness.machine.tasks.values.filter { $0.slot.shard >= 2 }.map(\.taskID))
        harness.run(try harness.machine.scaleCluster("c", replicasPerShard: 0, shardCount: 2))

        let kills = harness.log.enumerated().compactMap { index, action -> (Int, TaskID)? in
            if case .kill(let taskID, _) = action { (index, taskID) } else { nil }
        }
        #expect(Set(kills.map(\.1)) == removed)
        let lastMigration = try #require(harness.log.lastIndex { if case .migrateSlots = $0 { true } else { false } })
        let retiringPush = try #require(harness.log.firstIndex {
            if case .pushTopology(_, let topology, _) = $0 { topology.shards.count == 2 } else { false }
        })
        #expect(kills.allSatisfy { $0.0 > lastMigration && $0.0 > retiringPush })
        // The removed members were dropped from the records (and durably) before the push that forgets them.
        #expect(harness.machine.tasks.keys.allSatisfy { !removed.contains($0) })
        #expect(harness.durable.tasks.keys.allSatisfy { !removed.contains($0) })
        #expect(harness.durable.clusters["c"]?.shardCount == 2)
        let layout = try #require(harness.durable.layouts["c"])
        #expect(layout.resharding == nil)
        #expect(layout.shardSlots.count == 2)
        let last = try #require(harness.pushes.last)
        #expect(last.topology.problems.isEmpty)
        #expect(owners(last.topology) == harness.nodeOwners)
        #expect(Set(last.targets.map(\.taskID)).isDisjoint(with: removed))
        #expect(harness.machine.pendingSlots.isEmpty)
    }

    @Test func noTopologyIsPushedWhileABatchRunsAndAFailedBatchIsRetried() throws {
        var harness = try provisioned(shards: 2, replicas: 1, agents: 4)
        harness.holdMigrations = true
        harness.run(try harness.machine.scaleCluster("c", replicasPerShard: 1, shardCount: 1))
        let held = try #require(harness.heldMigrations.first)
        #expect(harness.heldMigrations.count == 1)

        // A replica of shard 0 is lost and replaced while the batch runs: its new topology waits for the batch.
        let pushesBefore = harness.pushes.count
        let replica = try #require(harness.machine.tasks.values.first { $0.slot.shard == 0 && $0.role == .replica })
        harness.simulation.advance(by: 1)
        harness.deliver(harness.simulation.setState(replica.taskID, .failed))
        harness.offerRound()
        harness.startAll()
        harness.simulation.advance(by: 5)
        harness.send(.tick(now: harness.now))
        #expect(harness.pushes.count == pushesBefore, "no push while a batch runs")

        // The batch fails: the waiting topology is pushed, and the same batch is sent again after the retry delay.
        harness.holdMigrations = false
        harness.heldMigrations = []
        harness.run(harness.machine.handle(.slotsMigrated(cluster: "c", held.migration.slots, error: "IOERR")))
        #expect(harness.pushes.count == pushesBefore + 1)
        #expect(harness.machine.layouts["c"]?.resharding?.lastError == "IOERR")
        let sent = harness.migrations.count
        harness.send(.tick(now: harness.now))
        #expect(harness.migrations.count == sent, "not before the retry delay")
        harness.simulation.advance(by: 1)
        harness.send(.tick(now: harness.now))
        #expect(harness.migrations.count > sent)
        #expect(harness.migrations[sent].slots == held.migration.slots)
        #expect(harness.durable.layouts["c"]?.resharding == nil)
        #expect(harness.durable.clusters["c"]?.shardCount == 1)
        #expect(owners(try #require(harness.pushes.last).topology) == harness.nodeOwners)
    }

    @Test func restartMidMigrationResendsTheBatchInFlightBeforeAnyPush() throws {
        var harness = try provisioned(shards: 3, agents: 5)
        harness.holdMigrations = true
        harness.run(try harness.machine.scaleCluster("c", replicasPerShard: 0, shardCount: 4))
        harness.offerRound()
        harness.startAll()
        // Two batches complete, the third is in flight when the framework dies.
        harness.release()
        harness.release()
        let inFlight = try #require(harness.heldMigrations.first?.migration)
        #expect(harness.durable.layouts["c"]?.resharding?.inFlight?.slots == inFlight.slots)
        #expect(harness.durable.layouts["c"]?.resharding?.movedSlots == harness.migrations.prefix(2).map(\.slots.count).reduce(0, +))
        // The nodes finished the batch (or part of it) before the restart: re-sending must be safe.
        harness.heldMigrations = []
        for slot in inFlight.slots.closedRange { harness.nodeOwners[slot] = inFlight.targetNodeID }

        harness.restart()
        let mark = harness.log.count
        harness.holdMigrations = false
        harness.subscribe()
        let after = harness.log[mark...]
        let resent = try #require(after.firstIndex { if case .migrateSlots = $0 { true } else { false } })
        #expect(harness.log[resent] == .migrateSlots(cluster: "c", inFlight))
        #expect(!after[..<resent].contains { if case .pushTopology = $0 { true } else { false } })
        // It then finishes: every slot where the target says, no batch left, nodes and topology agree.
        let layout = try #require(harness.durable.layouts["c"])
        #expect(layout.resharding == nil)
        #expect(Set(layout.shardSlots) == Set(ClusterPlan.slotRanges(shardCount: 4).map { [$0] }))
        #expect(owners(try #require(harness.pushes.last).topology) == harness.nodeOwners)
    }

    @Test func progressSurvivesTheStoresJSONAndOldLayoutsDecodeWithoutIt() throws {
        var layout = ClusterLayout(cluster: "c", epoch: 7, shardSlots: ClusterPlan.slotRanges(shardCount: 3).map { [$0] })
        var resharding = Resharding(current: layout.shardSlots, toShardCount: 2)
        resharding.inFlight = SlotMove(slots: SlotRange(first: 10923, last: 10986), fromShard: 2, toShard: 1)
        resharding.movedSlots = 64
        layout.resharding = resharding
        let decoded = try JSONDecoder().decode(ClusterLayout.self, from: try JSONEncoder().encode(layout))
        #expect(decoded == layout)
        let old = #"{"cluster":"c","epoch":3,"shardSlots":[[{"first":0,"last":16383}]],"heals":[]}"#
        #expect(try JSONDecoder().decode(ClusterLayout.self, from: Data(old.utf8)).resharding == nil)
    }

    @Test func scalingBackBeforeAnySlotMovedCancelsAScaleOutAndStopsItsNewMembers() throws {
        var harness = try provisioned(shards: 3, agents: 5)
        let original = Set(harness.machine.tasks.keys)
        harness.run(try harness.machine.scaleCluster("c", replicasPerShard: 0, shardCount: 5))
        #expect(harness.machine.pendingSlots.map(\.shard) == [3, 4])
        // The new members were launched but never came up (or could not be placed at all): still launching.
        harness.offerRound()
        let launched = Set(harness.machine.tasks.keys).subtracting(original)
        #expect(launched.count == 2)
        #expect(harness.durable.layouts["c"]?.resharding?.phase == .launching)
        // Going to another count is refused; going back to 3 cancels.
        #expect(throws: SchedulerError.reshardingInProgress(cluster: "c", from: 3, to: 5)) {
            try harness.machine.scaleCluster("c", replicasPerShard: 0, shardCount: 4)
        }
        let mark = harness.log.count
        harness.run(try harness.machine.scaleCluster("c", replicasPerShard: 0, shardCount: 3))
        #expect(harness.durable.clusters["c"]?.shardCount == 3)
        #expect(harness.machine.pendingSlots.isEmpty)
        #expect(harness.durable.tasks.keys.allSatisfy { !launched.contains($0) })
        let kills = harness.log[mark...].compactMap { if case .kill(let taskID, _) = $0 { taskID } else { nil } }
        #expect(Set(kills) == launched)
        #expect(harness.migrations.isEmpty)
        let layout = try #require(harness.durable.layouts["c"])
        #expect(layout.resharding == nil)
        #expect(layout.shardSlots == ClusterPlan.slotRanges(shardCount: 3).map { [$0] })
        #expect(try #require(harness.pushes.last).topology.shards.count == 3)
        // A new resharding may start.
        harness.run(try harness.machine.scaleCluster("c", replicasPerShard: 0, shardCount: 4))
        #expect(harness.durable.layouts["c"]?.resharding?.toShardCount == 4)
    }

    @Test func reshardingIsRefusedWhileOneRunsAndBeforeTheClusterServes() throws {
        var harness = try provisioned(shards: 3, agents: 5)
        harness.holdMigrations = true
        harness.run(try harness.machine.scaleCluster("c", replicasPerShard: 0, shardCount: 2))
        #expect(throws: SchedulerError.reshardingInProgress(cluster: "c", from: 3, to: 2)) {
            try harness.machine.scaleCluster("c", replicasPerShard: 0, shardCount: 4)
        }
        #expect(throws: SchedulerError.invalidSpec(.invalidShardCount(0))) {
            var other = try provisioned(shards: 1, agents: 1)
            _ = try other.machine.scaleCluster("c", replicasPerShard: 0, shardCount: 0)
        }
        var fresh = SchedulerHarness(agents: 3)
        fresh.subscribe()
        try fresh.create(ClusterSpec(name: "n", shardCount: 2, replicasPerShard: 0, memoryMBPerNode: 64))
        #expect(throws: SchedulerError.notProvisioned(cluster: "n")) {
            try fresh.machine.scaleCluster("n", replicasPerShard: 0, shardCount: 3)
        }
    }
}
