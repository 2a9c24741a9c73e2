// The Mesos backend against the fake master, one rule each: subscription through a redirect, offers and launches
// of real processes with acknowledged updates, redelivery of unacknowledged updates, duplicate accepts dropped,
// offer expiry, reconciliation answers, kills, master failover with resubscription under the same framework id,
// heartbeat loss detected on an injected clock, TEARDOWN, and the failover_timeout-0 trap.

import CacheFramework
import CacheFrameworkMesos
import CacheFrameworkRuntime
import Foundation
import MesosFakeMaster
import Testing

@Suite(.serialized)
struct MesosBackendTests {
    /// Acknowledges every update carrying a uuid, as the scheduler does.
    func acknowledgeAll(_ running: RunningBackend, from index: inout Int) async throws {
        let updates = running.recorder.updates
        while index < updates.count {
            let status = updates[index]
            if let uuid = status.uuid, let agent = status.agentID {
                try await running.backend.acknowledge(agentID: agent, taskID: status.taskID, uuid: uuid)
            }
            index += 1
        }
    }

    @Test func subscribesThroughARedirectAndLaunchesARealProcess() async throws {
        let fixture = try await MesosFixture()
        defer { Task { await fixture.stop() } }
        // Point the backend at the standby: it follows the 307 to the leader.
        let running = try await RunningBackend(fixture.backend(master: 1))
        defer { Task { await running.stop() } }
        try await running.waitSubscribed()
        #expect(await running.backend.currentLeader == fixture.urls[0])
        #expect(await running.backend.statistics.redirects >= 1)
        let id = try #require(running.recorder.subscriptions.first)
        #expect(await fixture.master.frameworkState?.id == id)
        #expect(await fixture.master.frameworkInfo?.failoverTimeout == 7 * 24 * 3600)

        let offer = try await running.nextOffer()
        #expect(offer.frameworkID == id)
        #expect(ResourceQuantities(offer.resources).ports.count == 100, "ports arrive as a RANGES resource")
        let task = sleepTask("t1", on: offer)
        try await running.backend.accept(offerIDs: [offer.id], operations: [.launch([task])], filters: Filters(refuseSeconds: 1))
        var acked = 0
        try await waitUntil("t1 runs") {
            try await acknowledgeAll(running, from: &acked)
            return running.recorder.updates(of: task.taskID).contains { $0.state == .running }
        }
        let updates = running.recorder.updates(of: task.taskID)
        #expect(updates.map(\.state).prefix(2) == [.starting, .running])
        #expect(updates.allSatisfy { $0.uuid.flatMap { Data(base64Encoded: $0) }?.count == 16 }, "uuids are 16 base64 bytes")
        try await waitUntil("the master saw both acknowledgements") {
            try await acknowledgeAll(running, from: &acked)
            return await fixture.master.acknowledgedUUIDs.count >= 2
        }
        #expect(await fixture.master.acknowledgedUUIDs.prefix(2) == updates.compactMap(\.uuid).prefix(2))
        // The process really runs on the agent.
        let agentTask = try #require(await fixture.master.agents.taskViews().first { $0.taskID == task.taskID })
        #expect(agentTask.pid.map(processExists) == true)

        try await running.backend.kill(taskID: task.taskID, agentID: offer.agentID)
        try await waitUntil("t1 is killed") {
            try await acknowledgeAll(running, from: &acked)
            return running.recorder.updates(of: task.taskID).contains { $0.state == .killed }
        }
        #expect(agentTask.pid.map(processExists) == false)
    }

    @Test func unacknowledgedUpdatesAreRedelivered() async throws {
        let fixture = try await MesosFixture(updateRetryInterval: .milliseconds(150))
        defer { Task { await fixture.stop() } }
        let running = try await RunningBackend(fixture.backend())
        defer { Task { await running.stop(killTasks: true) } }
        try await running.waitSubscribed()
        let offer = try await running.nextOffer()
        let task = sleepTask("t-retry", on: offer)
        try await running.backend.accept(offerIDs: [offer.id], operations: [.launch([task])], filters: Filters(refuseSeconds: 1))
        // Never acknowledged: the same STARTING update (same uuid) comes again, and RUNNING waits behind it.
        try await waitUntil("STARTING is redelivered") { running.recorder.updates(of: task.taskID).count >= 3 }
        let updates = running.recorder.updates(of: task.taskID)
        #expect(Set(updates.compactMap(\.uuid)).count == 1)
        #expect(updates.allSatisfy { $0.state == .starting })
        // Acknowledging it lets RUNNING through.
        try await running.backend.acknowledge(agentID: offer.agentID, taskID: task.taskID, uuid: updates[0].uuid!)
        try await waitUntil("RUNNING follows the acknowledgement") {
            running.recorder.updates(of: task.taskID).contains { $0.state == .running }
        }
    }

    @Test func secondAcceptOfAUsedOfferIsDropped() async throws {
        let fixture = try await MesosFixture()
        defer { Task { await fixture.stop() } }
        let running = try await RunningBackend(fixture.backend())
        defer { Task { await running.stop(killTasks: true) } }
        try await running.waitSubscribed()
        let offer = try await running.nextOffer()
        try await running.backend.accept(
            offerIDs: [offer.id], operations: [.launch([sleepTask("first", on: offer)])], filters: Filters(refuseSeconds: 1))
        try await running.backend.accept(
            offerIDs: [offer.id], operations: [.launch([sleepTask("second", on: offer)])], filters: Filters(refuseSeconds: 1))
        try await waitUntil("the second launch is dropped") { !running.recorder.updates(of: TaskID("second")).isEmpty }
        let dropped = try #require(running.recorder.updates(of: TaskID("second")).first)
        #expect(dropped.state == .dropped, "PARTITION_AWARE frameworks get TASK_DROPPED")
        #expect(dropped.reason == "REASON_INVALID_OFFERS")
        #expect(dropped.uuid == nil, "master-generated updates are not acknowledged")
        #expect(dropped.message?.contains("is no longer valid") == true)
        try await waitUntil("the first launch starts") { !running.recorder.updates(of: TaskID("first")).isEmpty }
        #expect(running.recorder.updates(of: TaskID("first")).first?.state == .starting)
    }

    @Test func expiredOffersAreRescindedAndCannotBeAccepted() async throws {
        let fixture = try await MesosFixture(offerTimeout: .milliseconds(300))
        defer { Task { await fixture.stop() } }
        let running = try await RunningBackend(fixture.backend())
        defer { Task { await running.stop(killTasks: true) } }
        try await running.waitSubscribed()
        try await waitUntil("an offer is rescinded") { !running.recorder.rescinded.isEmpty }
        let gone = running.recorder.rescinded[0]
        #expect(running.recorder.offers.contains { $0.id == gone })
        #expect(await !running.backend.outstandingOffers().contains { $0.id == gone })
        let offer = try #require(running.recorder.offers.first { $0.id == gone })
        try await running.backend.accept(
            offerIDs: [gone], operations: [.launch([sleepTask("late", on: offer)])], filters: Filters(refuseSeconds: 1))
        try await waitUntil("the late launch is dropped") { !running.recorder.updates(of: TaskID("late")).isEmpty }
        #expect(running.recorder.updates(of: TaskID("late")).first?.state == .dropped)
    }

    @Test func reconcileAnswersKnownAndUnknownTasks() async throws {
        let fixture = try await MesosFixture()
        defer { Task { await fixture.stop() } }
        let running = try await RunningBackend(fixture.backend())
        defer { Task { await running.stop(killTasks: true) } }
        try await running.waitSubscribed()
        let offer = try await running.nextOffer()
        let task = sleepTask("known", on: offer)
        try await running.backend.accept(offerIDs: [offer.id], operations: [.launch([task])], filters: Filters(refuseSeconds: 1))
        var acked = 0
        try await waitUntil("known runs") {
            try await acknowledgeAll(running, from: &acked)
            return running.recorder.updates(of: task.taskID).contains { $0.state == .running }
        }
        try await running.backend.reconcile([
            ReconcileTask(taskID: task.taskID, agentID: offer.agentID), ReconcileTask(taskID: TaskID("ghost"), agentID: nil),
        ])
        try await waitUntil("both are answered") {
            running.recorder.updates.contains { $0.taskID == TaskID("ghost") }
                && running.recorder.updates(of: task.taskID).contains { $0.reason == TaskStatus.reconciliationReason }
        }
        let ghost = try #require(running.recorder.updates(of: TaskID("ghost")).first)
        #expect(ghost.state == .unknown)
        #expect(ghost.reason == TaskStatus.reconciliationReason)
        #expect(ghost.uuid == nil)
        let known = try #require(running.recorder.updates(of: task.taskID).last { $0.reason == TaskStatus.reconciliationReason })
        #expect(known.state == .running)
        #expect(known.uuid == nil)
        // Implicit reconciliation lists every live task.
        let before = running.recorder.updates(of: task.taskID).count
        try await running.backend.reconcile([])
        try await waitUntil("implicit reconciliation answers") { running.recorder.updates(of: task.taskID).count > before }
        // Killing an unknown task answers TASK_LOST.
        try await running.backend.kill(taskID: TaskID("nobody"), agentID: nil)
        try await waitUntil("the unknown kill is answered") { running.recorder.updates(of: TaskID("nobody")).first?.state == .lost }
    }

    @Test func masterFailoverResubscribesWithTheSameFrameworkIDAndKeepsTasks() async throws {
        let fixture = try await MesosFixture()
        defer { Task { await fixture.stop() } }
        let running = try await RunningBackend(fixture.backend())
        defer { Task { await running.stop(killTasks: true) } }
        try await running.waitSubscribed()
        let id = try #require(running.recorder.subscriptions.first)
        let offer = try await running.nextOffer()
        let task = sleepTask("survivor", on: offer)
        try await running.backend.accept(offerIDs: [offer.id], operations: [.launch([task])], filters: Filters(refuseSeconds: 1))
        var acked = 0
        try await waitUntil("survivor runs") {
            try await acknowledgeAll(running, from: &acked)
            return running.recorder.updates(of: task.taskID).contains { $0.state == .running }
        }
        let pid = try #require(await fixture.master.agents.taskViews().first { $0.taskID == task.taskID }?.pid)
        let streamBefore = await running.backend.currentStreamID

        await fixture.master.failover(to: 1)
        try await running.waitSubscribed(2)
        #expect(running.recorder.disconnects == 1)
        #expect(running.recorder.subscriptions == [id, id], "resubscribed as the same framework")
        #expect(await running.backend.currentLeader == fixture.urls[1], "followed the old leader's redirect")
        #expect(await running.backend.currentStreamID != streamBefore, "a new stream id")
        let resubscribe = try #require(await fixture.master.callLog.last { $0.type == "SUBSCRIBE" && $0.status == 200 })
        #expect(resubscribe.frameworkID == id)
        #expect(resubscribe.master == 1)
        #expect(processExists(pid), "the task kept running")
        #expect(await fixture.master.taskViews[task.taskID]?.state == .running)
        // Calls work on the new stream.
        try await running.backend.reconcile([ReconcileTask(taskID: task.taskID, agentID: offer.agentID)])
        try await waitUntil("reconciled after failover") {
            running.recorder.updates(of: task.taskID).contains { $0.reason == TaskStatus.reconciliationReason && $0.state == .running }
        }
    }

    @Test func heartbeatLossOnTheInjectedClockForcesAResubscription() async throws {
        let fixture = try await MesosFixture(heartbeatInterval: .seconds(1))
        defer { Task { await fixture.stop() } }
        let clock = ManualClock()
        let running = try await RunningBackend(fixture.backend(clock: clock))
        defer { Task { await running.stop(killTasks: true) } }
        try await running.waitSubscribed()
        let id = try #require(running.recorder.subscriptions.first)
        // The master goes silent (a partition that keeps the TCP connection open).
        await fixture.master.silenceCurrentStream()
        // Four intervals of silence are tolerated…
        clock.advance(by: 4)
        try await waitUntil("the watchdog is asleep again") { clock.sleeperCount >= 1 }
        #expect(await running.backend.statistics.heartbeatLosses == 0)
        // …past five the stream is abandoned and the backend resubscribes with its framework id.
        clock.advance(by: 2)
        try await running.waitSubscribed(2)
        #expect(await running.backend.statistics.heartbeatLosses == 1)
        #expect(running.recorder.subscriptions == [id, id])
        #expect(await fixture.master.subscriptions == 2)
    }

    @Test func teardownKillsTasksAndTheFrameworkIsRemoved() async throws {
        let fixture = try await MesosFixture()
        defer { Task { await fixture.stop() } }
        let running = try await RunningBackend(fixture.backend())
        try await running.waitSubscribed()
        let id = try #require(running.recorder.subscriptions.first)
        let offer = try await running.nextOffer()
        let task = sleepTask("doomed", on: offer)
        try await running.backend.accept(offerIDs: [offer.id], operations: [.launch([task])], filters: Filters(refuseSeconds: 1))
        try await waitUntil("doomed started") { await fixture.master.agents.taskViews().first { $0.taskID == task.taskID }?.pid != nil }
        let pid = try #require(await fixture.master.agents.taskViews().first { $0.taskID == task.taskID }?.pid)
        await running.stop(killTasks: true)
        try await waitUntil("TEARDOWN killed the task") { !processExists(pid) }
        #expect(await fixture.master.frameworkState == nil)
        #expect(await fixture.master.callLog.contains { $0.type == "TEARDOWN" && $0.status == 202 })

        // Resubscribing as the removed framework gets ERROR "Framework has been removed".
        let again = try await RunningBackend(fixture.backend(frameworkID: id))
        defer { Task { await again.stop() } }
        try await waitUntil("the master refuses the removed framework") {
            await again.backend.statistics.errors.contains("Framework has been removed")
        }
        #expect(again.recorder.subscriptions.isEmpty)
    }

    @Test func zeroFailoverTimeoutKillsTasksWhenTheSchedulerDisconnects() async throws {
        let fixture = try await MesosFixture()
        defer { Task { await fixture.stop() } }
        var info = MesosBackendConfiguration.defaultFrameworkInfo()
        info.failoverTimeout = nil  // the proto default: 0
        let running = try await RunningBackend(fixture.backend(frameworkInfo: info))
        try await running.waitSubscribed()
        let offer = try await running.nextOffer()
        let task = sleepTask("short-lived", on: offer)
        try await running.backend.accept(offerIDs: [offer.id], operations: [.launch([task])], filters: Filters(refuseSeconds: 1))
        try await waitUntil("it started") { await fixture.master.agents.taskViews().first { $0.taskID == task.taskID }?.pid != nil }
        let pid = try #require(await fixture.master.agents.taskViews().first { $0.taskID == task.taskID }?.pid)
        // Leave without TEARDOWN: with failover_timeout 0 the master kills everything at once.
        await running.stop(killTasks: false)
        try await waitUntil("the master killed the task") { !processExists(pid) }
    }
}

/// Whether a process with this pid exists (and is not a zombie).
func processExists(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    guard let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
}
