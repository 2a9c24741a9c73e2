// Rolling update (CHANGE_VNFPKG) on the simulated cluster: one VNFC at a time, the new one running before anything
// is pointed at it, the upstream instance's link rebound before the old VNFC is killed, the new version recorded;
// a new version that never runs rolls back automatically; a restart in the middle completes it; and a descriptor that
// changes the VNF's shape is refused.

import CacheFramework
import CacheFrameworkNFV
import Foundation
import Testing

/// The sample firewall as version 2.0 (another software version and one more argument), or with `edit` applied.
func firewallV2(_ edit: (String) -> String = { $0 }) throws -> VNFDescriptor {
    let text = try Samples.text("firewall.yaml")
        .replacingOccurrences(of: "software_version: \"1.0\"", with: "software_version: \"2.0\"")
        .replacingOccurrences(of: "version: \"1.0\"", with: "version: \"2.0\"")
        .replacingOccurrences(of: "--default, allow]", with: "--default, allow, --deny-pattern, V2BLOCK]")
    return try VNFDescriptorParser.parse(edit(text))
}

struct NFVRollingUpdateTests {
    /// A firewall instance (`fw`) and, in front of it, another instance whose egress leads to fw's ingress.
    func chain(_ harness: inout NFVHarness) throws -> (fw: String, upstream: String) {
        let fw = try harness.machine.instantiate(
            vnfd: try Samples.vnfd("firewall.yaml"), name: "fw", extLinks: ["egress": ["127.0.0.1:9"]], now: harness.now)
        harness.run(fw.actions)
        #expect(harness.converge(fw.operationID) == .completed)
        let ingress = harness.machine.instances[fw.instanceID]!.endpoints(onLink: "ingress")
        let upstream = try harness.machine.instantiate(
            vnfd: try Samples.vnfd("ratelimit.yaml"), name: "rl", extLinks: ["egress": ingress], now: harness.now)
        harness.run(upstream.actions)
        #expect(harness.converge(upstream.operationID) == .completed)
        return (fw.instanceID, upstream.instanceID)
    }

    @Test func replacesOneVNFCAtATimeAndRepointsTheUpstreamFirst() throws {
        var harness = NFVHarness(agents: 2)
        let (fw, upstream) = try chain(&harness)
        let old = harness.machine.instances[fw]!.vnfcs["fw.0"]!
        let oldEndpoint = try #require(old.endpoint("traffic"))
        #expect(old.vnfdVersion == "1.0")

        let update = try harness.machine.changeVNFPackage(fw, vnfd: try firewallV2(), now: harness.now)
        harness.run(update.actions)
        #expect(harness.machine.operations[update.operationID]?.operation == .changeVnfpkg)
        #expect(harness.machine.operations[update.operationID]?.state == .starting)
        #expect(harness.durable.instances[fw]?.vnfd.version == "2.0")
        #expect(harness.durable.operations[update.operationID]?.rollbackPoint.vnfd?.version == "1.0")
        // Only one update at a time.
        #expect(throws: NFVError.self) { try harness.machine.changeVNFPackage(fw, vnfd: try firewallV2(), now: harness.now) }

        harness.tick()  // PROCESSING
        harness.offerRound()  // the successor VNFC appears and is placed
        #expect(harness.machine.instances[fw]!.vnfcs["fw.0.next"]?.replaces == "fw.0")
        let launched = try #require(harness.simulation.launched.last)
        #expect(launched.command.arguments.contains("V2BLOCK"))
        let successor = harness.machine.instances[fw]!.vnfcs["fw.0.next"]!
        #expect(successor.vnfdVersion == "2.0")
        // Anti-affinity: the new VNFC goes to the other agent while the old one runs.
        #expect(successor.agentID != old.agentID)
        // Nothing is pointed at it, and the old VNFC is not killed, before it runs.
        harness.tick()
        #expect(harness.machine.instances[upstream]!.extLinks["egress"] == [oldEndpoint])
        #expect(!harness.log.contains(.kill(taskID: old.taskID!, agentID: old.agentID)))

        harness.runLaunched()  // RUNNING (on a real agent: after its health check passed)
        let newEndpoint = try #require(harness.machine.instances[fw]!.vnfcs["fw.0.next"]?.endpoint("traffic"))
        let rebind = NFVAction.rebind(instanceID: upstream, link: "egress", endpoints: [newEndpoint])
        #expect(harness.log.contains(rebind))
        #expect(harness.durable.instances[upstream]?.extLinks["egress"] == [newEndpoint])
        #expect(!harness.log.contains(.kill(taskID: old.taskID!, agentID: old.agentID)))
        // After the grace period the old VNFC is killed; its successor takes its id.
        harness.tick(2)
        let kill = NFVAction.kill(taskID: old.taskID!, agentID: old.agentID)
        let rebindAt = try #require(harness.log.firstIndex(of: rebind))
        let killAt = try #require(harness.log.firstIndex(of: kill))
        #expect(rebindAt < killAt)
        harness.tick()
        #expect(harness.machine.operations[update.operationID]?.state == .completed)
        let instance = harness.machine.instances[fw]!
        #expect(instance.vnfcs.keys.sorted() == ["fw.0"])
        #expect(instance.vnfcs["fw.0"]?.taskID == launched.taskID)
        #expect(instance.vnfcs["fw.0"]?.vnfdVersion == "2.0")
        #expect(instance.vnfcs["fw.0"]?.incarnation == old.incarnation + 1)
        #expect(instance.vnfd.vdus[0].softwareVersion == "2.0")
        #expect(harness.simulation.tasks[old.taskID!]?.state == .killed)
        #expect(harness.durable.instances[fw] == instance)
        // A later relaunch of the upstream gets the new endpoint in its arguments.
        let rl = harness.machine.instances[upstream]!
        let info = VNFTaskTemplate.taskInfo(
            for: rl.vnfcs["rl.0"]!, of: rl, taskID: TaskID("t"), agentID: AgentID("a"), hostname: "h")
        #expect(info.command.arguments.contains(newEndpoint))
    }

    @Test func everyVNFCIsReplacedInTurn() throws {
        var harness = NFVHarness(agents: 3)
        let created = try harness.machine.instantiate(
            vnfd: try Samples.vnfd("firewall.yaml"), name: "fw", level: "large", extLinks: ["egress": ["127.0.0.1:9"]],
            now: harness.now)
        harness.run(created.actions)
        #expect(harness.converge(created.operationID) == .completed)
        let id = created.instanceID
        let update = try harness.machine.changeVNFPackage(id, vnfd: try firewallV2(), now: harness.now)
        harness.run(update.actions)
        var mostAtOnce = 0
        for _ in 0..<20 {
            harness.tick()
            harness.offerRound()
            harness.runLaunched()
            mostAtOnce = max(mostAtOnce, harness.machine.instances[id]!.vnfcs.values.filter { $0.replaces != nil }.count)
            if harness.machine.operations[update.operationID]?.state == .completed { break }
        }
        #expect(harness.machine.operations[update.operationID]?.state == .completed)
        #expect(mostAtOnce == 1)
        let instance = harness.machine.instances[id]!
        #expect(instance.vnfcs.keys.sorted() == ["fw.0", "fw.1"])
        #expect(instance.vnfcs.values.allSatisfy { $0.vnfdVersion == "2.0" && $0.isRunning })
        #expect(harness.runningTasks(of: id).count == 2)
    }

    @Test func aNewVersionThatNeverRunsRollsBack() throws {
        var configuration = NFVStateMachine.Configuration()
        configuration.operationTimeoutSeconds = 5
        var harness = NFVHarness(agents: 2, configuration: configuration)
        let (fw, upstream) = try chain(&harness)
        let old = harness.machine.instances[fw]!.vnfcs["fw.0"]!
        let oldEndpoint = try #require(old.endpoint("traffic"))
        let update = try harness.machine.changeVNFPackage(fw, vnfd: try firewallV2(), now: harness.now)
        harness.run(update.actions)
        harness.tick()
        harness.offerRound()  // launched, never RUNNING
        let successor = try #require(harness.machine.instances[fw]!.vnfcs["fw.0.next"]?.taskID)
        harness.tick(6)
        let operation = harness.machine.operations[update.operationID]
        #expect(operation?.state == .rollingBack || operation?.state == .rolledBack)
        #expect(operation?.error?.contains("fw.0.next") == true)
        harness.tick()
        harness.tick()
        #expect(harness.machine.operations[update.operationID]?.state == .rolledBack)
        let instance = harness.machine.instances[fw]!
        #expect(instance.vnfd.version == "1.0")
        #expect(instance.vnfcs.keys.sorted() == ["fw.0"])
        #expect(instance.vnfcs["fw.0"]?.taskID == old.taskID)
        #expect(harness.simulation.tasks[successor]?.state == .killed)
        #expect(harness.simulation.tasks[old.taskID!]?.state == .running)
        #expect(harness.machine.instances[upstream]!.extLinks["egress"] == [oldEndpoint])
    }

    @Test func aRollbackAfterRepointingPointsTheUpstreamBack() throws {
        var harness = NFVHarness(agents: 2)
        let (fw, upstream) = try chain(&harness)
        let oldEndpoint = try #require(harness.machine.instances[fw]!.vnfcs["fw.0"]?.endpoint("traffic"))
        var configuration = NFVStateMachine.Configuration()
        configuration.repointGraceSeconds = 1000  // the old VNFC stays until the update fails
        configuration.operationTimeoutSeconds = 5
        harness.machine = NFVStateMachine(restoring: harness.durable, configuration: configuration)
        let update = try harness.machine.changeVNFPackage(fw, vnfd: try firewallV2(), now: harness.now)
        harness.run(update.actions)
        harness.tick()
        harness.offerRound()
        harness.runLaunched()
        harness.tick()
        #expect(harness.machine.instances[upstream]!.extLinks["egress"] != [oldEndpoint])
        harness.tick(6)
        harness.tick()
        harness.tick()
        #expect(harness.machine.operations[update.operationID]?.state == .rolledBack)
        #expect(harness.machine.instances[upstream]!.extLinks["egress"] == [oldEndpoint])
        #expect(harness.log.contains(.rebind(instanceID: upstream, link: "egress", endpoints: [oldEndpoint])))
        #expect(harness.machine.instances[fw]!.vnfcs.values.allSatisfy { $0.vnfdVersion == "1.0" && $0.replaces == nil })
    }

    @Test func aRestartInTheMiddleCompletesTheUpdate() throws {
        var harness = NFVHarness(agents: 2)
        let (fw, _) = try chain(&harness)
        let old = harness.machine.instances[fw]!.vnfcs["fw.0"]!
        let update = try harness.machine.changeVNFPackage(fw, vnfd: try firewallV2(), now: harness.now)
        harness.run(update.actions)
        harness.tick()
        harness.offerRound()
        harness.runLaunched()
        harness.tick()  // repointed; the framework "crashes" before killing the old VNFC
        harness.machine = NFVStateMachine(restoring: harness.durable)
        #expect(harness.machine.operations[update.operationID]?.state == .processing)
        #expect(harness.machine.instances[fw]!.vnfcs["fw.0.next"]?.repointedAt != nil)
        harness.run(harness.machine.start())
        #expect(harness.converge(update.operationID) == .completed)
        #expect(harness.simulation.tasks[old.taskID!]?.state == .killed)
        #expect(harness.machine.instances[fw]!.vnfcs.keys.sorted() == ["fw.0"])
        #expect(harness.machine.instances[fw]!.vnfcs["fw.0"]?.vnfdVersion == "2.0")
    }

    @Test func aDescriptorThatChangesTheShapeIsRefused() throws {
        var harness = NFVHarness(agents: 2)
        let (fw, _) = try chain(&harness)
        let same = #expect(throws: NFVError.self) {
            try harness.machine.changeVNFPackage(fw, vnfd: try Samples.vnfd("firewall.yaml"), now: harness.now)
        }
        #expect(same?.description.contains("already runs version 1.0") == true)
        let ports = #expect(throws: NFVError.self) {
            try harness.machine.changeVNFPackage(
                fw, vnfd: try firewallV2 { $0.replacingOccurrences(of: "ports: [traffic]", with: "ports: [traffic, admin]") },
                now: harness.now)
        }
        #expect(ports?.description.contains("VDU 'fw' ports") == true)
        #expect(harness.machine.operations.values.allSatisfy { $0.operation != .changeVnfpkg })
    }
}
