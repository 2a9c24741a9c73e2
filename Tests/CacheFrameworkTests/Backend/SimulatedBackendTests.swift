// The simulated manager behind `SchedulerBackend`: offers, refuse filters, launches and reconciliation answers.

import CacheFramework
import Testing

struct SimulatedBackendTests {
    static func agents(_ count: Int) -> [SimulatedAgent] {
        (0..<count).map {
            SimulatedAgent(
                id: AgentID("a\($0)"), hostname: "h\($0)",
                total: ResourceQuantities(cpus: 2, memMB: 2048, ports: RangeSet([ValueRange(begin: 31_000, end: 31_009)]))
            )
        }
    }

    @Test func eventStreamCarriesSubscribedOffersAndLaunchUpdates() async throws {
        let backend = SimulatedBackend(cluster: SimulatedCluster(agents: Self.agents(2)))
        await backend.subscribe()
        await backend.sendOffers()
        var iterator = backend.events.makeAsyncIterator()
        #expect(await iterator.next() == .subscribed(FrameworkID("simulated-framework")))
        guard case .offers(let offers) = await iterator.next() else {
            Issue.record("expected offers")
            return
        }
        #expect(offers.count == 2)
        let task = TaskInfo(
            name: "t", taskID: TaskID("t"), agentID: offers[0].agentID,
            resources: [.scalar("cpus", 1), .scalar("mem", 1024), .ranges("ports", RangeSet.of([31_000]))],
            command: CommandInfo(value: "cache-node")
        )
        try await backend.accept(offerIDs: [offers[0].id], operations: [.launch([task])], filters: Filters(refuseSeconds: 5))
        guard case .update(let status) = await iterator.next() else {
            Issue.record("expected an update")
            return
        }
        #expect(status.state == .staging)
        #expect(status.uuid != nil)
        let free = await backend.cluster.free(on: offers[0].agentID)
        #expect(free.cpus == 1 && free.memMB == 1024 && free.ports.count == 9)
        await backend.finish()
    }

    @Test func declinedAgentsAreNotReofferedUntilTheFilterExpires() {
        var cluster = SimulatedCluster(agents: Self.agents(2))
        let offers = cluster.makeOffers()
        _ = cluster.apply(.decline(offerIDs: [offers[0].id], filters: Filters(refuseSeconds: 10)))
        #expect(cluster.makeOffers().isEmpty)  // a0 refused, a1 still has an outstanding offer
        cluster.advance(by: 11)
        #expect(cluster.makeOffers().map(\.agentID) == [AgentID("a0")])
    }

    @Test func explicitReconcileOfAnUnknownTaskAnswersUnknown() {
        var cluster = SimulatedCluster(agents: Self.agents(1))
        let events = cluster.apply(.reconcile([ReconcileTask(taskID: TaskID("ghost"), agentID: nil)]))
        guard case .update(let status) = events.first else {
            Issue.record("no answer")
            return
        }
        #expect(status.state == .unknown)
        #expect(status.reason == TaskStatus.reconciliationReason)
        #expect(status.uuid == nil)
    }
}
