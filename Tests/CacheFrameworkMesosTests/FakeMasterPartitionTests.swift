// The fake master's agent partitions, on the wire, as master.cpp handles them for a PARTITION_AWARE framework: a
// partitioned agent's tasks keep running and turn TASK_UNREACHABLE (SOURCE_MASTER, REASON_SLAVE_REMOVED,
// unreachable_time, no uuid) after the agent timeout, with a FAILURE event; its resources are not offered; implicit
// reconciliation leaves them out, explicit reconciliation and KILL answer "Reconciliation: Task is unreachable"; an
// update the agent produced meanwhile waits on the agent. When it reregisters, its tasks are re-reported
// (REASON_SLAVE_REREGISTERED) and the kept update follows with a uuid. MARK_AGENT_GONE turns tasks
// TASK_GONE_BY_OPERATOR and kills them without further updates. Sleep tasks on the fake's real agents.

import CacheFramework
import CacheFrameworkMesos
import CacheFrameworkRuntime
import Foundation
import MesosFakeMaster
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized)
struct FakeMasterPartitionTests {
    /// Launches `ids` as sleep tasks, each on an offer of `agent`, and waits until they run.
    func launch(_ ids: [String], on agent: AgentID, running: RunningBackend) async throws {
        var used: Set<OfferID> = []
        for id in ids {
            var offer: Offer?
            try await waitUntil("an offer of \(agent)") {
                let outstanding = Set(await running.backend.outstandingOffers().map(\.id))
                offer = running.recorder.offers.last { $0.agentID == agent && !used.contains($0.id) && outstanding.contains($0.id) }
                return offer != nil
            }
            used.insert(offer!.id)
            try await running.backend.accept(
                offerIDs: [offer!.id], operations: [.launch([sleepTask(id, on: offer!)])], filters: Filters(refuseSeconds: 0))
            try await waitUntil("\(id) runs") { running.recorder.updates(of: TaskID(id)).contains { $0.state == .running } }
        }
    }

    /// Declines outstanding offers until `more` new ones arrived after the first `count`.
    func churnOffers(after count: Int, more: Int = 4, running: RunningBackend) async throws {
        try await waitUntil("\(more) more offers arrive") {
            let outstanding = await running.backend.outstandingOffers().map(\.id)
            if !outstanding.isEmpty { try await running.backend.decline(offerIDs: outstanding, filters: Filters(refuseSeconds: 0)) }
            return running.recorder.offers.count >= count + more
        }
    }

    /// Acknowledges every update carrying a uuid, as a scheduler does.
    func acknowledging(_ running: RunningBackend) -> Task<Void, Never> {
        Task {
            var done: Set<String> = []
            while !Task.isCancelled {
                for update in running.recorder.updates {
                    guard let uuid = update.uuid, let agent = update.agentID, done.insert(uuid).inserted else { continue }
                    try? await running.backend.acknowledge(agentID: agent, taskID: update.taskID, uuid: uuid)
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    @Test func partitionedAgentTasksTurnUnreachableAndComeBackWhenItReregisters() async throws {
        let fixture = try await MesosFixture(agents: 2, agentUnreachableTimeout: .seconds(1))
        defer { Task { await fixture.stop() } }
        let running = try await RunningBackend(fixture.backend())
        let wire = WireRecorder(running.backend.mesosEvents)
        try await running.waitSubscribed()
        let acknowledger = acknowledging(running)
        defer { acknowledger.cancel() }
        try await waitUntil("both agents offer") { Set(running.recorder.offers.map(\.agentID)).count == 2 }
        let agents = Set(running.recorder.offers.map(\.agentID)).sorted()
        let (cut, other) = (agents[0], agents[1])
        try await launch(["a1", "a2"], on: cut, running: running)
        try await launch(["b1"], on: other, running: running)
        let pids = Dictionary(uniqueKeysWithValues: await fixture.master.agents.taskViews().compactMap { view in view.pid.map { (view.taskID, $0) } })

        // Partition: nothing is reported before the agent timeout, then TASK_UNREACHABLE from the master.
        await fixture.master.partitionAgent(cut)
        let partitionedAt = Date()
        try await waitUntil("a1 and a2 are unreachable") {
            ["a1", "a2"].allSatisfy { id in running.recorder.updates(of: TaskID(id)).contains { $0.state == .unreachable } }
        }
        #expect(Date().timeIntervalSince(partitionedAt) >= 0.9, "only after the agent timeout")
        let unreachable = wire.all.compactMap(\.update?.status).filter { $0.state == .unreachable }
        #expect(unreachable.count == 2)
        for status in unreachable {
            #expect(status.source == "SOURCE_MASTER")
            #expect(status.reason == "REASON_SLAVE_REMOVED")
            #expect(status.message == "health check timed out")
            #expect(status.uuid == nil, "master-generated: not acknowledged")
            #expect(status.agentID == cut)
            let nanos = try #require(status.unreachableTime?.nanoseconds)
            #expect(abs(Double(nanos) / 1e9 - Date().timeIntervalSince1970) < 30)
        }
        #expect(wire.all.contains { $0.type == .failure && $0.failure?.agentID == cut }, "FAILURE names the removed agent")
        // The processes keep running: only the master lost the agent.
        for id in ["a1", "a2"] { #expect(processExists(try #require(pids[TaskID(id)]))) }

        // Its resources are no longer offered.
        let offersBefore = running.recorder.offers.count
        try await churnOffers(after: offersBefore, running: running)
        #expect(!running.recorder.offers.dropFirst(offersBefore).contains { $0.agentID == cut })

        // Implicit reconciliation leaves unreachable tasks out; explicit reconciliation and KILL report them.
        let before = running.recorder.updates.count
        try await running.backend.reconcile([])
        try await waitUntil("b1 is reconciled") { running.recorder.updates.dropFirst(before).contains { $0.taskID == TaskID("b1") } }
        #expect(!running.recorder.updates.dropFirst(before).contains { $0.taskID == TaskID("a1") || $0.taskID == TaskID("a2") })
        try await running.backend.kill(taskID: TaskID("a1"), agentID: cut)
        try await running.backend.reconcile([ReconcileTask(taskID: TaskID("a2"), agentID: cut)])
        try await waitUntil("both are answered") {
            Set(wire.all.compactMap(\.update?.status).filter { $0.message == "Reconciliation: Task is unreachable" }.map(\.taskID))
                == [TaskID("a1"), TaskID("a2")]
        }
        for status in wire.all.compactMap(\.update?.status) where status.message == "Reconciliation: Task is unreachable" {
            #expect(status.state == .unreachable && status.reason == "REASON_RECONCILIATION" && status.unreachableTime != nil)
        }
        #expect(processExists(try #require(pids[TaskID("a1")])), "the KILL did not reach the partitioned agent")

        // a2 ends while partitioned: the agent keeps the update.
        kill(try #require(pids[TaskID("a2")]), SIGKILL)
        try await waitUntil("the agent saw a2 end") {
            await fixture.master.agents.taskViews().first { $0.taskID == TaskID("a2") }?.state.isTerminal == true
        }
        #expect(!running.recorder.updates(of: TaskID("a2")).contains { $0.state == .failed })

        // The agent reregisters: a1 is re-reported RUNNING by the master, a2 by its kept update.
        await fixture.master.reconnectAgent(cut)
        try await waitUntil("a1 is running again") { running.recorder.updates(of: TaskID("a1")).last?.state == .running }
        let back = try #require(wire.all.compactMap(\.update?.status).last { $0.taskID == TaskID("a1") })
        #expect(back.source == "SOURCE_MASTER" && back.reason == "REASON_SLAVE_REREGISTERED" && back.uuid == nil)
        #expect(back.message == "Unreachable agent re-reregistered")
        try await waitUntil("a2's failure arrives") { running.recorder.updates(of: TaskID("a2")).contains { $0.state == .failed } }
        #expect(running.recorder.updates(of: TaskID("a2")).last { $0.state == .failed }?.uuid != nil, "the agent's own update is acknowledged")
        try await waitUntil("the agent offers again") {
            let outstanding = await running.backend.outstandingOffers().map(\.id)
            if !outstanding.isEmpty { try await running.backend.decline(offerIDs: outstanding, filters: Filters(refuseSeconds: 0)) }
            return running.recorder.offers.dropFirst(offersBefore).contains { $0.agentID == cut }
        }
        try await waitUntil("every update is acknowledged") { await fixture.master.unacknowledged.isEmpty }

        // Now reachable, a1 can be killed.
        try await running.backend.kill(taskID: TaskID("a1"), agentID: cut)
        try await waitUntil("a1 is killed") { running.recorder.updates(of: TaskID("a1")).contains { $0.state == .killed } }
        await running.stop(killTasks: true)
    }

    @Test func agentMarkedGoneReportsGoneByOperatorAndEndsItsTasks() async throws {
        let fixture = try await MesosFixture(agents: 2, agentUnreachableTimeout: .seconds(1))
        defer { Task { await fixture.stop() } }
        let running = try await RunningBackend(fixture.backend())
        let wire = WireRecorder(running.backend.mesosEvents)
        try await running.waitSubscribed()
        let acknowledger = acknowledging(running)
        defer { acknowledger.cancel() }
        try await waitUntil("both agents offer") { Set(running.recorder.offers.map(\.agentID)).count == 2 }
        let agent = Set(running.recorder.offers.map(\.agentID)).sorted()[0]
        try await launch(["g1"], on: agent, running: running)
        let pid = try #require(await fixture.master.agents.taskViews().first { $0.taskID == TaskID("g1") }?.pid)

        // Unreachable first, then the operator asserts the agent is gone.
        await fixture.master.partitionAgent(agent)
        try await waitUntil("g1 is unreachable") { running.recorder.updates(of: TaskID("g1")).contains { $0.state == .unreachable } }
        await fixture.master.markAgentGone(agent)
        try await waitUntil("g1 is gone") { running.recorder.updates(of: TaskID("g1")).contains { $0.state == .goneByOperator } }
        let gone = try #require(wire.all.compactMap(\.update?.status).last { $0.taskID == TaskID("g1") })
        #expect(gone.source == "SOURCE_MASTER" && gone.reason == "REASON_SLAVE_REMOVED_BY_OPERATOR" && gone.uuid == nil)
        #expect(gone.message == "Agent has been marked gone")
        try await waitUntil("its process ended") { !processExists(pid) }
        // Its KILLED never reaches the framework, its agent never offers again, a KILL is answered as gone.
        try await running.backend.kill(taskID: TaskID("g1"), agentID: agent)
        try await waitUntil("the KILL is answered") {
            wire.all.compactMap(\.update?.status).contains { $0.taskID == TaskID("g1") && $0.message == "Reconciliation: Task is gone" }
        }
        #expect(!running.recorder.updates(of: TaskID("g1")).contains { $0.state == .killed })
        let offersBefore = running.recorder.offers.count
        try await churnOffers(after: offersBefore, running: running)
        #expect(!running.recorder.offers.dropFirst(offersBefore).contains { $0.agentID == agent })
        await running.stop(killTasks: true)
    }
}
