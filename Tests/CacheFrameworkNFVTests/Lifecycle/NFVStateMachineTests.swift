// NFVStateMachine against the simulated cluster: each lifecycle operation's occurrence states, placement rules,
// auto-heal, FAILED_TEMP with retry/rollback, terminate, and a restart in the middle of an operation.

import CacheFramework
import CacheFrameworkNFV
import Testing

struct NFVStateMachineTests {
    let firewall: VNFDescriptor

    init() throws { firewall = try Samples.vnfd("firewall.yaml") }

    func instantiate(_ harness: inout NFVHarness, level: String = "small") throws -> (String, String) {
        let result = try harness.machine.instantiate(
            vnfd: firewall, name: "fw", level: level, extLinks: ["egress": ["127.0.0.1:9"]], now: harness.now)
        harness.run(result.actions)
        return (result.instanceID, result.operationID)
    }

    @Test func instantiateGoesThroughStartingProcessingCompleted() throws {
        var harness = NFVHarness(agents: 2)
        let (id, op) = try instantiate(&harness)
        #expect(harness.machine.operations[op]?.state == .starting)
        #expect(harness.durable.operations[op]?.state == .starting)
        harness.tick()
        #expect(harness.machine.operations[op]?.state == .processing)
        harness.offerRound()
        #expect(harness.simulation.launched.count == 1)
        let info = harness.simulation.launched[0]
        #expect(info.taskID.value.hasPrefix("vnf.\(id).fw.0."))
        let port = harness.machine.instances[id]!.vnfcs["fw.0"]!.ports["traffic"]!
        #expect(info.command.arguments.contains("\(port)"))
        #expect(info.command.arguments.contains("127.0.0.1:9"))
        let hostname = harness.machine.instances[id]!.vnfcs["fw.0"]!.hostname!
        #expect(info.labels[VNFTaskTemplate.Label.health] == "tcp \(hostname):\(port)")
        // Offers NFV did not use are left for the cache scheduler.
        #expect(harness.leftovers.count == 1)
        #expect(harness.durable.instances[id]?.vnfcs["fw.0"]?.taskID == info.taskID)
        harness.runLaunched()
        harness.tick()
        #expect(harness.machine.operations[op]?.state == .completed)
        #expect(harness.durable.operations[op]?.state == .completed)
    }

    @Test func linkSecurityIsRecordedBeforeInstantiationAndReachesTheTasks() throws {
        var harness = NFVHarness(agents: 2)
        let created = harness.machine.create(vnfd: firewall, name: "fw")
        harness.run(created.actions)
        let id = created.instanceID
        let security = VNFLinkSecurity(ingressPeers: nil, egressPeers: [VNFLinkSecurity.nodeIDPrefix(of: "sample-ratelimit-9")])
        harness.run(try harness.machine.setLinkSecurity(id, security))
        #expect(harness.durable.instances[id]?.linkSecurity == security)
        let result = try harness.machine.instantiate(id, extLinks: ["egress": ["127.0.0.1:9"]], now: harness.now)
        harness.run(result.actions)
        #expect(harness.converge(result.operationID) == .completed)
        let info = try #require(harness.simulation.launched.first)
        #expect(info.command.environment[VNFTaskTemplate.Environment.egressPeers] == "vnf.sample-ratelimit-9.")
        #expect(info.command.environment[VNFTaskTemplate.Environment.ingressPeers] == nil)
        // Once instantiated, the links' security cannot change under running VNFCs.
        #expect(throws: NFVError.self) { try harness.machine.setLinkSecurity(id, nil) }
    }

    @Test func antiAffinityKeepsVNFCsOnDifferentAgents() throws {
        var harness = NFVHarness(agents: 2)
        let (id, op) = try instantiate(&harness, level: "large")
        #expect(harness.converge(op) == .completed)
        let agents = Set(harness.runningTasks(of: id).map(\.info.agentID))
        #expect(agents.count == 2)

        var single = NFVHarness(agents: 1, configuration: { var c = NFVStateMachine.Configuration(); c.operationTimeoutSeconds = 5; return c }())
        let (_, op2) = try instantiate(&single, level: "large")
        #expect(single.converge(op2, rounds: 4) == .failedTemp)
        let error = single.machine.operations[op2]?.error ?? ""
        #expect(error.contains("fw.1"))
        #expect(error.contains("already host"))
    }

    @Test func scaleOutAndInByAspect() throws {
        var harness = NFVHarness(agents: 2)
        let (id, op) = try instantiate(&harness)
        #expect(harness.converge(op) == .completed)
        let out = try harness.machine.scale(id, aspect: "fw-scale", type: .scaleOut, now: harness.now)
        harness.run(out.actions)
        #expect(harness.converge(out.operationID) == .completed)
        #expect(harness.runningTasks(of: id).count == 2)
        #expect(throws: NFVError.self) { try harness.machine.scale(id, aspect: "fw-scale", type: .scaleOut, now: harness.now) }
        let scaleIn = try harness.machine.scale(id, aspect: "fw-scale", type: .scaleIn, now: harness.now)
        harness.run(scaleIn.actions)
        #expect(harness.converge(scaleIn.operationID) == .completed)
        #expect(harness.runningTasks(of: id).count == 1)
        #expect(harness.machine.instances[id]?.vnfcs.keys.sorted() == ["fw.0"])
    }

    @Test func scaleToLevel() throws {
        var harness = NFVHarness(agents: 2)
        let (id, op) = try instantiate(&harness)
        #expect(harness.converge(op) == .completed)
        let result = try harness.machine.scaleToLevel(id, level: "large", now: harness.now)
        harness.run(result.actions)
        #expect(harness.converge(result.operationID) == .completed)
        #expect(harness.runningTasks(of: id).count == 2)
    }

    @Test func oneOperationAtATime() throws {
        var harness = NFVHarness(agents: 2)
        let (id, op) = try instantiate(&harness)
        let error = #expect(throws: NFVError.self) { try harness.machine.terminate(id, now: harness.now) }
        #expect(error == .conflict(instanceID: id, operationID: op))
    }

    @Test func failedTaskIsHealedInPlace() throws {
        var harness = NFVHarness(agents: 2)
        let (id, op) = try instantiate(&harness)
        #expect(harness.converge(op) == .completed)
        let before = harness.machine.instances[id]!.vnfcs["fw.0"]!
        if case .update(let status)? = harness.simulation.setState(before.taskID!, .failed) {
            harness.run(harness.machine.handle(.update(status, now: harness.now)))
        }
        let heal = harness.machine.operations.values.first { $0.operation == .heal }
        #expect(heal?.isAutomaticInvocation == true)
        #expect(heal.map { harness.converge($0.id) } == .completed)
        let after = harness.machine.instances[id]!.vnfcs["fw.0"]!
        #expect(after.taskID != before.taskID)
        #expect(after.agentID == before.agentID)
        #expect(after.ports == before.ports)
        #expect(after.incarnation == before.incarnation + 1)
    }

    @Test func failedTempThenRetryOrRollback() throws {
        var configuration = NFVStateMachine.Configuration()
        configuration.operationTimeoutSeconds = 3
        var harness = NFVHarness(agents: 1, configuration: configuration)
        let (id, op) = try instantiate(&harness)
        harness.tick()
        harness.tick(5)  // no offer round: nothing runs
        #expect(harness.machine.operations[op]?.state == .failedTemp)
        _ = try harness.machine.retry(op, now: harness.now)
        #expect(harness.machine.operations[op]?.state == .processing)
        #expect(harness.machine.operations[op]?.retries == 1)
        harness.offerRound()  // launched, but never reports RUNNING
        harness.tick(5)
        #expect(harness.machine.operations[op]?.state == .failedTemp)
        harness.run(try harness.machine.rollback(op, now: harness.now))
        // The simulated agent answers the rollback's kills at once, so it may already be complete.
        #expect([.rollingBack, .rolledBack].contains(harness.machine.operations[op]?.state))
        harness.tick()
        harness.tick()
        #expect(harness.machine.operations[op]?.state == .rolledBack)
        #expect(harness.machine.instances[id]?.instantiationState == .notInstantiated)
        #expect(harness.machine.instances[id]?.vnfcs.isEmpty == true)
        #expect(harness.simulation.tasks.values.allSatisfy { $0.state.isTerminal })
    }

    @Test func aVNFCThatCannotStartFailsItsOperationInsteadOfRelaunchingWithoutEnd() throws {
        var harness = NFVHarness(agents: 1)
        let (id, op) = try instantiate(&harness)
        harness.tick()
        // Each launch ends before it runs, as a missing executable does.
        for attempt in 1...3 {
            harness.offerRound()
            #expect(harness.simulation.launched.count == attempt)
            let task = harness.simulation.launched[attempt - 1].taskID
            if case .update(let status)? = harness.simulation.setState(task, .failed, message: "exec: vnf-sample: not found") {
                harness.run(harness.machine.handle(.update(status, now: harness.now)))
            }
            harness.tick()
        }
        let failed = try #require(harness.machine.operations[op])
        #expect(failed.state == .failedTemp)
        #expect(failed.error?.contains("VNFC fw.0 ended 3 times in a row before it ran") == true, "\(failed.error ?? "")")
        #expect(failed.error?.contains("not found") == true)
        harness.offerRound()
        #expect(harness.simulation.launched.count == 3, "no fourth launch while the operation is FAILED_TEMP")
        // A retry gives it fresh attempts; this time it runs.
        harness.run(try harness.machine.retry(op, now: harness.now))
        #expect(harness.converge(op) == .completed)
        #expect(harness.simulation.launched.count == 4)
        #expect(harness.machine.instances[id]?.vnfcs["fw.0"]?.startFailures == nil)
    }

    @Test func failMarksFailed() throws {
        var configuration = NFVStateMachine.Configuration()
        configuration.operationTimeoutSeconds = 3
        var harness = NFVHarness(agents: 1, configuration: configuration)
        let (_, op) = try instantiate(&harness)
        harness.tick()
        harness.tick(5)
        harness.run(try harness.machine.fail(op, now: harness.now))
        #expect(harness.machine.operations[op]?.state == .failed)
        #expect(throws: NFVError.self) { try harness.machine.retry(op, now: harness.now) }
    }

    @Test func operateStopsAndStarts() throws {
        var harness = NFVHarness(agents: 2)
        let (id, op) = try instantiate(&harness)
        #expect(harness.converge(op) == .completed)
        let stop = try harness.machine.operate(id, to: .stopped, now: harness.now)
        harness.run(stop.actions)
        #expect(harness.converge(stop.operationID) == .completed)
        #expect(harness.runningTasks(of: id).isEmpty)
        let start = try harness.machine.operate(id, to: .started, now: harness.now)
        harness.run(start.actions)
        #expect(harness.converge(start.operationID) == .completed)
        #expect(harness.runningTasks(of: id).count == 1)
    }

    @Test func terminateGracefulKillsEverything() throws {
        var harness = NFVHarness(agents: 2)
        let (id, op) = try instantiate(&harness, level: "large")
        #expect(harness.converge(op) == .completed)
        let result = try harness.machine.terminate(id, type: .graceful, now: harness.now)
        harness.run(result.actions)
        #expect(harness.converge(result.operationID) == .completed)
        #expect(harness.machine.instances[id]?.instantiationState == .notInstantiated)
        #expect(harness.machine.instances[id]?.vnfcs.isEmpty == true)
        #expect(harness.simulation.tasks.values.allSatisfy { $0.state.isTerminal })
        harness.run(try harness.machine.delete(id))
        #expect(harness.durable.instances[id] == nil)
    }

    @Test func terminateForcefulDoesNotWaitForTasks() throws {
        var harness = NFVHarness(agents: 2)
        let (id, op) = try instantiate(&harness)
        #expect(harness.converge(op) == .completed)
        let result = try harness.machine.terminate(id, type: .forceful, now: harness.now)
        harness.run(result.actions)
        // The first tick moves the occurrence to PROCESSING, the next sends the kills.
        harness.tick()
        harness.tick()
        let kills = harness.log.filter { if case .kill = $0 { true } else { false } }
        #expect(!kills.isEmpty)
        harness.machine = NFVStateMachine(restoring: harness.durable)
        var machine = harness.machine
        _ = machine.handle(.tick(now: harness.now.adding(seconds: 1)))
        _ = machine.handle(.tick(now: harness.now.adding(seconds: 2)))
        #expect(machine.operations[result.operationID]?.state == .completed)
        #expect(machine.instances[id]?.vnfcs.isEmpty == true)
    }

    @Test func restartInTheMiddleOfAnOperationCompletesIt() throws {
        var harness = NFVHarness(agents: 2)
        let (id, op) = try instantiate(&harness, level: "large")
        harness.tick()
        harness.offerRound()  // launches recorded and sent, then the framework "crashes"
        #expect(harness.durable.instances[id]?.vnfcs.values.allSatisfy { $0.taskID != nil } == true)
        // One task ran, one launch never reached the agent.
        let tasks = harness.simulation.tasks.keys.sorted()
        _ = harness.simulation.setState(tasks[0], .running)
        harness.machine = NFVStateMachine(restoring: harness.durable)
        #expect(harness.machine.operations[op]?.state == .processing)
        let start = harness.machine.start()
        #expect(start == [.reconcile(harness.machine.recordedTasks)])
        harness.run(start)
        #expect(harness.converge(op) == .completed)
        #expect(harness.runningTasks(of: id).count == 2)
    }

    @Test func argumentsAreSubstituted() throws {
        var harness = NFVHarness(agents: 1)
        let (id, op) = try instantiate(&harness)
        #expect(harness.converge(op) == .completed)
        let instance = harness.machine.instances[id]!
        let info = harness.runningTasks(of: id)[0].info
        let port = instance.vnfcs["fw.0"]!.ports["traffic"]!
        #expect(info.command.value == "vnf-sample")
        #expect(Array(info.command.arguments.prefix(7)) == ["firewall", "--bind", "host-0", "--port", "\(port)", "--next", "127.0.0.1:9"])
        #expect(instance.endpoints(onLink: "ingress") == ["host-0:\(port)"])
    }
}
