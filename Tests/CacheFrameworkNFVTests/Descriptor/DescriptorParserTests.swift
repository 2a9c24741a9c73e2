// VNFD/NSD parsing: the samples parse, and one test per error class checks the kind, the line and the field path.

import CacheFrameworkNFV
import Foundation
import Testing

enum Samples {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("samples/nfv")

    static func text(_ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }

    static func vnfd(_ name: String) throws -> VNFDescriptor { try VNFDescriptorParser.parse(try text(name)) }

    static func chain() throws -> NSDescriptor {
        try NSDescriptorParser.parse(try text("chain.yaml")) { try text($0) }
    }
}

/// A minimal valid VNFD; tests replace one line to make one error.
private let base = """
    vnfd:
      id: v
      version: "1"
      provider: p
      vdus:
        - id: a
          command: vnf-sample
          cpus: 0.5
          mem: 64
          ports: [traffic]
          min_instances: 1
          max_instances: 2
          health_check: {type: tcp, port: traffic}
      connection_points:
        - {id: in, vdu: a, port: traffic, virtual_link: ingress}
      external_virtual_links:
        - {id: ingress}
      deployment_flavours:
        - id: df
          instantiation_levels:
            - {id: one, vdu_instances: {a: 1}}
          scaling_aspects:
            - {id: out, max_scale_level: 1, deltas: [{a: 1}]}
          affinity_groups:
            - {id: apart, type: anti-affinity, scope: agent, members: [a]}
    """

private func failure(_ replace: String, with replacement: String) -> DescriptorError? {
    let text = base.replacingOccurrences(of: replace, with: replacement)
    precondition(text != base, "the test's replacement did not apply: \(replace)")
    do {
        _ = try VNFDescriptorParser.parse(text)
        return nil
    } catch {
        return error
    }
}

struct DescriptorParserTests {
    @Test func samplesParse() throws {
        let firewall = try Samples.vnfd("firewall.yaml")
        #expect(firewall.id == "sample-firewall")
        #expect(firewall.vdus[0].ports == ["traffic"])
        #expect(firewall.vdus[0].healthCheck?.check == .tcp(port: "traffic"))
        #expect(firewall.deploymentFlavours[0].level("large")?.vduInstances == ["fw": 2])
        #expect(firewall.deploymentFlavours[0].affinityGroups[0].scope == .agent)
        #expect(firewall.connectionPoints.map(\.direction) == [.inbound, .outbound])
        let chain = try Samples.chain()
        #expect(chain.forwardingGraph.chain == ["fw", "rl", "lb"])
        #expect(chain.vnf("lb")?.vnfd.lifecycleHooks.first?.event == .instantiateEnd)
    }

    @Test func baseIsValid() throws {
        let vnfd = try VNFDescriptorParser.parse(base)
        let flavour = vnfd.deploymentFlavours[0]
        #expect(vnfd.vnfcCounts(flavour: flavour, level: flavour.level("one")!, scaleLevels: ["out": 1]) == ["a": 2])
    }

    @Test func syntaxError() {
        let error = failure("cpus: 0.5", with: "cpus: [0.5")
        #expect(error?.kind == .syntax)
        #expect((error?.line ?? 0) >= 8)
    }

    @Test func missingField() {
        let error = failure("  provider: p\n", with: "")
        #expect(error?.kind == .missingField)
        #expect(error?.path == "vnfd.provider")
        #expect(error?.line == 2)
    }

    @Test func missingCommand() {
        let error = failure("      command: vnf-sample\n", with: "")
        #expect(error?.kind == .missingField)
        #expect(error?.path == "vnfd.vdus[0].command")
        #expect(error?.line == 6)
    }

    @Test func wrongType() {
        let error = failure("cpus: 0.5", with: "cpus: lots")
        #expect(error?.kind == .wrongType)
        #expect(error?.path == "vnfd.vdus[0].cpus")
        #expect(error?.line == 8)
    }

    @Test func unknownFieldSuggestsTheRightOne() {
        let error = failure("mem: 64", with: "memory: 64")
        #expect(error?.kind == .unknownField)
        #expect(error?.path == "vnfd.vdus[0].memory")
        #expect(error?.line == 9)
        #expect(error?.message.contains("did you mean 'mem'") == true)
    }

    @Test func invalidValue() {
        let error = failure("max_instances: 2", with: "max_instances: 0")
        #expect(error?.kind == .invalidValue)
        #expect(error?.path == "vnfd.vdus[0].max_instances")
        #expect(error?.line == 12)
    }

    @Test func invalidEnum() {
        let error = failure("scope: agent", with: "scope: rack-row")
        #expect(error?.kind == .invalidEnum)
        #expect(error?.path == "vnfd.deployment_flavours[0].affinity_groups[0].scope")
        #expect(error?.line == 25)
        #expect(error?.message.contains("agent, zone") == true)
    }

    @Test func invalidHealthCheckType() {
        let error = failure("{type: tcp, port: traffic}", with: "{type: icmp, port: traffic}")
        #expect(error?.kind == .invalidEnum)
        #expect(error?.path == "vnfd.vdus[0].health_check.type")
    }

    @Test func duplicateID() {
        let error = failure("- {id: out, max_scale_level", with: "- {id: one, max_scale_level")
        #expect(error == nil)  // aspect and level ids live apart
        let vdu = failure("  connection_points:", with: """
                - id: a
                  command: x
                  cpus: 1
                  mem: 1
              connection_points:
            """)
        #expect(vdu?.kind == .duplicateID)
        #expect(vdu?.path == "vnfd.vdus[1]")
        #expect(vdu?.line == 14)
        #expect(vdu?.message.contains("line 6") == true)
    }

    @Test func unknownReference() {
        let error = failure("members: [a]", with: "members: [b]")
        #expect(error?.kind == .unknownReference)
        #expect(error?.path == "vnfd.deployment_flavours[0].affinity_groups[0].members[0]")
        #expect(error?.line == 25)
        let link = failure("virtual_link: ingress}", with: "virtual_link: egress}")
        #expect(link?.kind == .unknownReference)
        #expect(link?.path == "vnfd.connection_points[0].virtual_link")
        let port = failure("{type: tcp, port: traffic}", with: "{type: tcp, port: admin}")
        #expect(port?.kind == .unknownReference)
        #expect(port?.path == "vnfd.vdus[0].health_check.port")
    }

    @Test func instanceBounds() {
        let level = failure("vdu_instances: {a: 1}", with: "vdu_instances: {a: 3}")
        #expect(level?.kind == .instanceBounds)
        #expect(level?.path == "vnfd.deployment_flavours[0].instantiation_levels[0].vdu_instances.a")
        #expect(level?.line == 21)
        let aspect = failure("max_scale_level: 1", with: "max_scale_level: 2")
        #expect(aspect?.kind == .instanceBounds)
        #expect(aspect?.path == "vnfd.deployment_flavours[0].scaling_aspects[0].max_scale_level")
    }

    @Test func nsdErrors() throws {
        let nsd = try Samples.text("chain.yaml")
        let unknown = #expect(throws: DescriptorError.self) {
            try NSDescriptorParser.parse(nsd.replacingOccurrences(of: "chain: [fw, rl, lb]", with: "chain: [fw, nat, lb]")) {
                try Samples.text($0)
            }
        }
        #expect(unknown?.kind == .unknownReference)
        #expect(unknown?.path == "nsd.forwarding_graph.chain[1]")
        let nested = #expect(throws: DescriptorError.self) {
            try NSDescriptorParser.parse(nsd) { name in
                try Samples.text(name).replacingOccurrences(of: "cpus: 0.1", with: "cpus: -1")
            }
        }
        #expect(nested?.kind == .invalidValue)
        #expect(nested?.path == "nsd.vnfs[0].vnfd(firewall.yaml):vnfd.vdus[0].cpus")
    }

    @Test func plaintextLinksIsAnExplicitOptIn() throws {
        let nsd = try Samples.text("chain.yaml")
        #expect(try Samples.chain().forwardingGraph.plaintextLinks == nil)
        let optIn = try NSDescriptorParser.parse(nsd.replacingOccurrences(of: "    egress_link: egress", with: "    egress_link: egress\n    plaintext_links: true")) {
            try Samples.text($0)
        }
        #expect(optIn.forwardingGraph.plaintextLinks == true)
        let wrong = #expect(throws: DescriptorError.self) {
            try NSDescriptorParser.parse(nsd.replacingOccurrences(of: "    egress_link: egress", with: "    egress_link: egress\n    plaintext_links: sometimes")) {
                try Samples.text($0)
            }
        }
        #expect(wrong?.kind == .wrongType)
        #expect(wrong?.path == "nsd.forwarding_graph.plaintext_links")
    }
}
