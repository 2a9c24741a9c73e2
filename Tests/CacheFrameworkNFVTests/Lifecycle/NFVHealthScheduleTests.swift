// Periodic health checks after start, on the pure schedule (times are given, nothing sleeps): the first check one
// interval after a VNFC is seen running, consecutive failures up to the VDU's threshold, a reset on success, one
// verdict per task; and the verdict through the state machine: an automatic HEAL that replaces the VNFC.

import CacheFramework
import CacheFrameworkNFV
import Testing

struct NFVHealthScheduleTests {
    /// A firewall instance running on the simulated cluster (its health check: tcp, every 2 s, threshold 3).
    func running() throws -> (NFVHarness, String) {
        var harness = NFVHarness(agents: 2)
        let result = try harness.machine.instantiate(
            vnfd: try Samples.vnfd("firewall.yaml"), name: "fw", extLinks: ["egress": ["127.0.0.1:9"]], now: harness.now)
        harness.run(result.actions)
        #expect(harness.converge(result.operationID) == .completed)
        return (harness, result.instanceID)
    }

    @Test func failuresInARowReachTheThresholdOnce() throws {
        let (harness, id) = try running()
        let vnfc = harness.machine.instances[id]!.vnfcs["fw.0"]!
        let task = try #require(vnfc.taskID)
        var schedule = NFVHealthSchedule()
        let start = harness.now
        schedule.sync(Array(harness.machine.instances.values), now: start)
        #expect(schedule.due(now: start).isEmpty)
        #expect(schedule.nextDue == start.adding(seconds: 2))

        let first = schedule.due(now: start.adding(seconds: 2))
        #expect(first.map(\.taskID) == [task])
        #expect(first.first?.label == "tcp \(vnfc.hostname!):\(vnfc.ports["traffic"]!)")
        #expect(first.first?.timeoutSeconds == 1)
        // Handed out once until its result is in.
        #expect(schedule.due(now: start.adding(seconds: 3)).isEmpty)
        #expect(schedule.record(task, healthy: false, now: start.adding(seconds: 2)) == nil)
        #expect(schedule.health[task]?.consecutiveFailures == 1)
        // A success resets the count.
        #expect(schedule.due(now: start.adding(seconds: 4)).count == 1)
        #expect(schedule.record(task, healthy: true, now: start.adding(seconds: 4)) == nil)
        #expect(schedule.health[task]?.consecutiveFailures == 0)
        #expect(schedule.health[task]?.lastHealthy == true)

        var verdict: UnhealthyVNFC?
        for step in 1...3 {
            let now = start.adding(seconds: 4 + 2 * Double(step))
            #expect(schedule.due(now: now).count == 1)
            verdict = schedule.record(task, healthy: false, now: now)
            #expect((verdict != nil) == (step == 3))
        }
        #expect(verdict?.vnfcID == "fw.0")
        #expect(verdict?.reason.contains("3 health checks in a row failed") == true)
        // Reported once: no more checks of that task while it is being replaced.
        #expect(schedule.due(now: start.adding(seconds: 100)).isEmpty)
        // Rearmed (the heal could not start), it is checked and counted afresh.
        schedule.rearm(task)
        #expect(schedule.due(now: start.adding(seconds: 100)).count == 1)
        #expect(schedule.health[task]?.consecutiveFailures == 0)
    }

    @Test func followsTheRunningVNFCs() throws {
        let setup = try running()
        var harness = setup.0
        let id = setup.1
        var schedule = NFVHealthSchedule()
        schedule.sync(Array(harness.machine.instances.values), now: harness.now)
        #expect(schedule.health.count == 1)
        let terminate = try harness.machine.terminate(id, now: harness.now)
        harness.run(terminate.actions)
        #expect(harness.converge(terminate.operationID) == .completed)
        schedule.sync(Array(harness.machine.instances.values), now: harness.now)
        #expect(schedule.health.isEmpty)
        #expect(schedule.due(now: harness.now.adding(seconds: 60)).isEmpty)
    }

    @Test func anUnhealthyVNFCIsHealedAutomatically() throws {
        let setup = try running()
        var harness = setup.0
        let id = setup.1
        let before = harness.machine.instances[id]!.vnfcs["fw.0"]!
        let task = try #require(before.taskID)
        // Its process still runs; only its health check fails.
        let actions = harness.machine.handle(.healthFailed(task, now: harness.now))
        #expect(actions.contains(.kill(taskID: task, agentID: before.agentID)))
        harness.run(actions)
        let heal = try #require(harness.machine.operations.values.first { $0.operation == .heal })
        #expect(heal.isAutomaticInvocation)
        #expect(heal.parameters["cause"] == "\(task) failed its health check")
        #expect(harness.durable.operations[heal.id] != nil)
        #expect(harness.converge(heal.id) == .completed)
        let after = harness.machine.instances[id]!.vnfcs["fw.0"]!
        #expect(after.taskID != task)
        #expect(after.isRunning)
        #expect(after.ports == before.ports)
        // A second report about the old task does nothing.
        #expect(harness.machine.handle(.healthFailed(task, now: harness.now)).isEmpty)
    }

    @Test func noHealWhileAnotherOperationRuns() throws {
        let setup = try running()
        var harness = setup.0
        let id = setup.1
        let task = try #require(harness.machine.instances[id]!.vnfcs["fw.0"]!.taskID)
        let scale = try harness.machine.scale(id, aspect: "fw-scale", type: .scaleOut, now: harness.now)
        harness.run(scale.actions)
        #expect(harness.machine.handle(.healthFailed(task, now: harness.now)).isEmpty)
        #expect(harness.machine.operations.values.filter { $0.operation == .heal }.isEmpty)
    }
}
