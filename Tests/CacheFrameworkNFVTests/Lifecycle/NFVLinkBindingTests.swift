// Links bound or moved while VNFs run, on the simulated cluster: an instance instantiated with its egress unbound
// (a network service starts its VNFs at once) launches, and `bindExtLink` records the endpoints and rebinds the link;
// during a rolling update, a VDU that reaches another VDU of the same VNF through an internal link (`${vl:LINK}`) is
// pointed at the new VNFC once it runs and before the old one is killed, and back on a rollback.

import CacheFramework
import CacheFrameworkNFV
import Foundation
import Testing

/// A two-tier VNF: `fe` (a load balancer on the external ingress) reaches `be` (an echo backend) through the internal
/// link `backend`, following its file; version `version` tags the backend's replies with it.
func twoTier(version: String = "1.0") throws -> VNFDescriptor {
    try VNFDescriptorParser.parse(
        """
        vnfd:
          id: two-tier
          version: "\(version)"
          provider: tests
          vdus:
            - id: fe
              command: vnf-sample
              args: [lb, --bind, "${host}", --port, "${port:traffic}", --next, "${vl:backend}", --next-link, backend]
              cpus: 0.1
              mem: 32
              ports: [traffic]
              min_instances: 1
              max_instances: 1
              health_check: {type: tcp, port: traffic}
            - id: be
              command: vnf-sample
              args: [echo, --bind, "${host}", --port, "${port:traffic}", --tag, "v\(version):"]
              software_version: "\(version)"
              cpus: 0.1
              mem: 32
              ports: [traffic]
              min_instances: 1
              max_instances: 1
              health_check: {type: tcp, port: traffic}
          connection_points:
            - {id: fe-in, vdu: fe, port: traffic, virtual_link: ingress}
            - {id: fe-out, vdu: fe, virtual_link: backend, direction: outbound}
            - {id: be-in, vdu: be, port: traffic, virtual_link: backend}
          internal_virtual_links:
            - {id: backend}
          external_virtual_links:
            - {id: ingress}
          deployment_flavours:
            - id: default
              instantiation_levels:
                - {id: single, vdu_instances: {fe: 1, be: 1}}
        """)
}

struct NFVLinkBindingTests {
    @Test func anUnboundEgressLaunchesAndIsBoundLater() throws {
        var harness = NFVHarness(agents: 2)
        let vnfd = try Samples.vnfd("ratelimit.yaml")
        // Without the link marked unbound, instantiation still needs its endpoints.
        #expect(throws: NFVError.self) { try harness.machine.instantiate(vnfd: vnfd, name: "rl", now: harness.now) }
        let created = harness.machine.create(vnfd: vnfd, name: "rl")
        harness.run(created.actions)
        let id = created.instanceID
        #expect(throws: NFVError.self) { try harness.machine.bindExtLink(id, link: "egress", endpoints: ["127.0.0.1:9"]) }
        #expect(throws: NFVError.self) {
            try harness.machine.instantiate(id, unboundLinks: ["nope"], now: harness.now)
        }
        let instantiated = try harness.machine.instantiate(id, unboundLinks: ["egress"], now: harness.now)
        harness.run(instantiated.actions)
        harness.tick()
        harness.offerRound()
        // Launched at once, its egress empty until bound.
        let launched = try #require(harness.simulation.launched.last)
        let next = try #require(launched.command.arguments.firstIndex(of: "--next"))
        #expect(launched.command.arguments[next + 1] == "")

        let actions = try harness.machine.bindExtLink(id, link: "egress", endpoints: ["127.0.0.1:7001"])
        harness.run(actions)
        #expect(actions.contains(.rebind(instanceID: id, link: "egress", endpoints: ["127.0.0.1:7001"])))
        #expect(harness.durable.instances[id]?.extLinks["egress"] == ["127.0.0.1:7001"])
        // Binding it again to the same endpoints does nothing; an unknown link or no endpoints are refused.
        #expect(try harness.machine.bindExtLink(id, link: "egress", endpoints: ["127.0.0.1:7001"]).isEmpty)
        #expect(throws: NFVError.self) { try harness.machine.bindExtLink(id, link: "nope", endpoints: ["127.0.0.1:1"]) }
        #expect(throws: NFVError.self) { try harness.machine.bindExtLink(id, link: "egress", endpoints: []) }
        harness.runLaunched()
        harness.tick()
        #expect(harness.machine.operations[instantiated.operationID]?.state == .completed)
        // A later launch (a heal) gets the bound endpoints in its arguments.
        let instance = harness.machine.instances[id]!
        let info = VNFTaskTemplate.taskInfo(
            for: instance.vnfcs["rl.0"]!, of: instance, taskID: TaskID("t"), agentID: AgentID("a"), hostname: "h")
        #expect(info.command.arguments.contains("127.0.0.1:7001"))
    }

    @Test func aRollingUpdateRepointsInternalLinksBeforeKillingTheOldVNFC() throws {
        var harness = NFVHarness(agents: 2)
        let created = try harness.machine.instantiate(vnfd: try twoTier(), name: "tt", now: harness.now)
        harness.run(created.actions)
        #expect(harness.converge(created.operationID) == .completed)
        let id = created.instanceID
        let old = harness.machine.instances[id]!.vnfcs["be.0"]!
        let oldEndpoint = try #require(old.endpoint("traffic"))
        #expect(harness.machine.instances[id]!.internalLinkEndpoints("backend") == [oldEndpoint])

        let update = try harness.machine.changeVNFPackage(id, vnfd: try twoTier(version: "2.0"), now: harness.now)
        harness.run(update.actions)
        harness.tick()  // PROCESSING
        harness.offerRound()  // be.0 is replaced first (by id); its successor is placed
        let successor = try #require(harness.machine.instances[id]!.vnfcs["be.0.next"])
        #expect(successor.replaces == "be.0")
        let newEndpoint = try #require(successor.endpoint("traffic"))
        #expect(newEndpoint != oldEndpoint)
        // Not pointed at before it runs.
        harness.tick()
        #expect(!harness.log.contains { if case .rebind = $0 { true } else { false } })
        #expect(harness.machine.instances[id]!.internalLinkEndpoints("backend") == [oldEndpoint])

        harness.runLaunched()
        let rebind = NFVAction.rebind(instanceID: id, link: "backend", endpoints: [newEndpoint])
        let rebindAt = try #require(harness.log.firstIndex(of: rebind))
        // Recorded durably (a restarted framework rewrites the link file from it).
        #expect(harness.durable.instances[id]?.internalLinkEndpoints("backend") == [newEndpoint])
        harness.tick(2)
        let killAt = try #require(harness.log.firstIndex(of: .kill(taskID: old.taskID!, agentID: old.agentID)))
        #expect(rebindAt < killAt)
        // The rest of the update (fe.0 is replaced too: nothing internal leads to it) completes; the link stays on
        // the new backend, which took be.0's id.
        #expect(harness.converge(update.operationID, rounds: 8) == .completed)
        let instance = harness.machine.instances[id]!
        #expect(instance.vnfcs["be.0"]?.taskID == successor.taskID)
        #expect(instance.internalLinkEndpoints("backend") == [newEndpoint])
        #expect(harness.log.filter { if case .rebind(_, "backend", _) = $0 { true } else { false } }.count == 1)
    }

    @Test func aRollbackAfterRepointingPointsTheInternalLinkBack() throws {
        var configuration = NFVStateMachine.Configuration()
        configuration.repointGraceSeconds = 100
        var harness = NFVHarness(agents: 2, configuration: configuration)
        let created = try harness.machine.instantiate(vnfd: try twoTier(), name: "tt", now: harness.now)
        harness.run(created.actions)
        #expect(harness.converge(created.operationID) == .completed)
        let id = created.instanceID
        let oldEndpoint = try #require(harness.machine.instances[id]!.vnfcs["be.0"]?.endpoint("traffic"))
        let update = try harness.machine.changeVNFPackage(id, vnfd: try twoTier(version: "2.0"), now: harness.now)
        harness.run(update.actions)
        harness.tick()
        harness.offerRound()
        harness.runLaunched()
        let successor = try #require(harness.machine.instances[id]!.vnfcs["be.0.next"])
        #expect(harness.log.contains(.rebind(instanceID: id, link: "backend", endpoints: [successor.endpoint("traffic")!])))

        // The new backend dies before the old one is killed: the link goes back to the old backend.
        _ = harness.simulation.setState(successor.taskID!, .failed).map { event in
            if case .update(let status) = event { harness.run(harness.machine.handle(.update(status, now: harness.now))) }
        }
        #expect(harness.log.last { if case .rebind(_, "backend", _) = $0 { true } else { false } }
            == .rebind(instanceID: id, link: "backend", endpoints: [oldEndpoint]))
        #expect(harness.machine.instances[id]!.internalLinkEndpoints("backend") == [oldEndpoint])
    }
}
