// NFV operations end to end with real processes (local backend, NFV manager behind the offer router, health monitor
// and metrics collector): a VNFC whose process keeps running but whose health check fails is healed (an automatic
// HEAL replaces it) and the status page lists the VNF with its health; a rolling update of the chain's middle VNF
// keeps every payload of a client sending through the chain answered, and leaves only the new version running; a VNF
// scales out when its VNFCs report many open connections and back in when they close.

import CacheFramework
import CacheFrameworkAPI
import CacheFrameworkNFV
import CacheFrameworkNFVRuntime
import CacheFrameworkRuntime
import Foundation
import Hummingbird
import HummingbirdTesting
import LoopbackTestSupport
import NIOCore
import Prometheus
import ReplicationSec
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A client on its own thread sending one payload per connection through `endpoint` until stopped, recording every
/// payload not answered with the echo's reply.
final class TrafficLoop: Sendable {
    struct Tally {
        var sent = 0
        var failures: [String] = []
        var stop = false
        var done = false
    }
    let tally = Mutex(Tally())

    init(_ endpoint: String) {
        Thread.detachNewThread {
            var index = 0
            while !self.tally.withLock({ $0.stop }) {
                index += 1
                let payload = "payload-\(index)"
                let reply = LoopbackSocket.exchange(endpoint: endpoint, message: payload)
                self.tally.withLock { tally in
                    tally.sent += 1
                    if reply != "E:" + payload { tally.failures.append("\(payload) → '\(reply)'") }
                }
                usleep(50_000)
            }
            self.tally.withLock { $0.done = true }
        }
    }

    var sent: Int { tally.withLock { $0.sent } }

    /// Stops the loop and returns the tally.
    func finish() async throws -> Tally {
        tally.withLock { $0.stop = true }
        try await waitUntil("the traffic loop stops", seconds: 10) { self.tally.withLock { $0.done } }
        return tally.withLock { $0 }
    }
}

@Suite(.serialized)
struct NFVOperationsTests {
    static func watchedLB(marker: String) throws -> VNFDescriptor {
        try VNFDescriptorParser.parse(
            """
            vnfd:
              id: watched-lb
              version: "1.0"
              provider: tests
              vdus:
                - id: lb
                  command: vnf-sample
                  args: [lb, --bind, "${host}", --port, "${port:traffic}", --next, "${ext:egress}"]
                  cpus: 0.1
                  mem: 32
                  ports: [traffic]
                  min_instances: 1
                  max_instances: 1
                  health_check: {type: command, command: [test, -e, "\(marker)"], interval: 1, timeout: 1, failure_threshold: 3}
              connection_points:
                - {id: lb-in, vdu: lb, port: traffic, virtual_link: ingress}
                - {id: lb-out, vdu: lb, virtual_link: egress, direction: outbound}
              external_virtual_links:
                - {id: ingress}
                - {id: egress}
              deployment_flavours:
                - id: default
                  instantiation_levels:
                    - {id: single, vdu_instances: {lb: 1}}
            """)
    }

    @Test func aFailingHealthCheckHealsARunningVNFCAndTheStatusPageShowsIt() async throws {
        try await NFVFramework.withEchoTarget(portBlocks: 200..<210, monitors: true) { framework, echoEndpoint in
            let marker = framework.directory + "/healthy"
            #expect(FileManager.default.createFile(atPath: marker, contents: Data()))
            let accepted = try await framework.manager.submit(
                .instantiate(
                    vnfd: try Self.watchedLB(marker: marker), name: "watched", flavour: nil, level: nil, extLinks: ["egress": [echoEndpoint]]))
            let id = accepted.instanceID
            #expect(try await NSDeployment.waitForFinal(accepted.operationID!, manager: framework.manager, timeoutSeconds: 30) == .completed)
            let ingress = try #require(framework.manager.instance(id)?.endpoints(onLink: "ingress").first)
            // Polled: the command health check (a file exists) passes before the process listens.
            try await waitUntil("the VNFC forwards") { LoopbackSocket.exchange(endpoint: ingress, message: "before") == "E:before" }
            let task = try #require(framework.manager.instance(id)?.vnfcs["lb.0"]?.taskID)
            try await waitUntil("the monitor has checked the VNFC") { framework.health.health()[task]?.lastHealthy == true }

            // The status page lists the VNF instance, its VNFC and its health next to the (empty) cache clusters.
            let health = framework.health
            let router = FrameworkAPI.router(
                driver: framework.driver, registry: PrometheusCollectorRegistry(), token: nil, nfv: framework.manager,
                vnfHealth: { health.health() })
            try await Application(router: router).test(.router) { client in
                try await client.execute(uri: "/status", method: .get) { response in
                    #expect(response.status == .ok)
                    let html = String(buffer: response.body)
                    #expect(html.contains("<h2>VNF instances</h2>"))
                    #expect(html.contains("<td>\(id)</td>"))
                    #expect(html.contains("watched-lb 1.0"))
                    #expect(html.contains("<td>lb.0</td>"))
                    #expect(html.contains("<td>healthy</td>"))
                    #expect(html.contains("egress → \(echoEndpoint)"))
                }
            }

            // The process keeps running, but its health check now fails: an automatic HEAL replaces it.
            let earlier = Set(framework.manager.operations().map(\.id))
            try FileManager.default.removeItem(atPath: marker)
            func healOfTask() -> LcmOpOcc? {
                framework.manager.operations().first {
                    !earlier.contains($0.id) && $0.operation == .heal && $0.isAutomaticInvocation
                        && $0.parameters["cause"] == "\(task) failed its health check"
                }
            }
            try await waitUntil("an automatic heal starts") { healOfTask() != nil }
            let heal = try #require(healOfTask())
            #expect(heal.vnfInstanceID == id)
            // The replacement passes its readiness check once the file is back.
            #expect(FileManager.default.createFile(atPath: marker, contents: Data()))
            try await waitUntil("the heal completes") { framework.manager.operation(heal.id)?.state == .completed }
            let healed = try #require(framework.manager.instance(id)?.vnfcs["lb.0"]?.taskID)
            #expect(healed != task)
            try await waitUntil("traffic flows again") { LoopbackSocket.exchange(endpoint: ingress, message: "after") == "E:after" }
        }
    }

    @Test func aRollingUpdateKeepsTheChainForwarding() async throws {
        try await NFVFramework.withEchoTarget(portBlocks: 212..<222) { framework, echoEndpoint in
            let nsd = try loadChain()
            let service = try await NSDeployment.deploy(nsd, name: "chain", egress: [echoEndpoint], manager: framework.manager, timeoutSeconds: 30)
            let ingress = try #require(service.ingress.first)
            let (fwID, rlID) = (service.vnfInstanceIDs[0], service.vnfInstanceIDs[1])
            let oldTask = try #require(framework.manager.instance(rlID)?.vnfcs["rl.0"]?.taskID)
            let oldEndpoint = try #require(framework.manager.instance(rlID)?.endpoints(onLink: "ingress").first)
            #expect(LoopbackSocket.exchange(endpoint: ingress, message: "hello") == "E:hello")

            // Version 2.0 of the rate limiter: another software version and rate.
            let v2 = try VNFDescriptorParser.parse(
                try String(contentsOf: NFVTestPaths.root.appendingPathComponent("samples/nfv/ratelimit.yaml"), encoding: .utf8)
                    .replacingOccurrences(of: "version: \"1.0\"", with: "version: \"2.0\"")
                    .replacingOccurrences(of: "      cpus: 0.1", with: "      software_version: \"2.0\"\n      cpus: 0.1")
                    .replacingOccurrences(of: "--rate, \"50\"", with: "--rate, \"60\""))
            let traffic = TrafficLoop(ingress)
            try await waitUntil("traffic flows") { traffic.sent >= 5 }
            let accepted = try await framework.manager.submit(.changeVNFPackage(rlID, vnfd: v2))
            let state = try await NSDeployment.waitForFinal(accepted.operationID!, manager: framework.manager, timeoutSeconds: 60)
            #expect(state == .completed, "\(framework.manager.operation(accepted.operationID!)?.error ?? "")")
            let sentAtCompletion = traffic.sent
            try await waitUntil("traffic flows after the update") { traffic.sent >= sentAtCompletion + 10 }
            let tally = try await traffic.finish()
            #expect(tally.failures.isEmpty, "\(tally.failures.count) of \(tally.sent) payloads unanswered: \(tally.failures.prefix(5))")
            #expect(tally.sent >= 20)

            let instance = try #require(framework.manager.instance(rlID))
            #expect(instance.vnfd.version == "2.0")
            #expect(instance.vnfd.vdus[0].softwareVersion == "2.0")
            #expect(instance.vnfcs.keys.sorted() == ["rl.0"])
            #expect(instance.vnfcs["rl.0"]?.vnfdVersion == "2.0")
            let newTask = try #require(instance.vnfcs["rl.0"]?.taskID)
            #expect(newTask != oldTask)
            let newEndpoint = try #require(instance.endpoints(onLink: "ingress").first)
            #expect(newEndpoint != oldEndpoint)
            // The firewall in front was repointed: its record and the link file its process follows.
            #expect(framework.manager.instance(fwID)?.extLinks["egress"] == [newEndpoint])
            let linkFile = try String(contentsOfFile: "\(framework.directory)/links/\(fwID)/egress", encoding: .utf8)
            #expect(linkFile.trimmingCharacters(in: .whitespacesAndNewlines) == newEndpoint)
            // The old task is gone and its identity revoked; only the new one runs.
            let views = await framework.backend.taskViews()
            #expect(views.first { $0.taskID == oldTask }?.state.isTerminal == true)
            #expect(views.filter { $0.taskID.value.hasPrefix("vnf.\(rlID).") && $0.state == .running }.map(\.taskID) == [newTask])
            #expect(framework.authority.revocationList.serials.contains(try identitySerial(framework, oldTask.value)))
            #expect(LoopbackSocket.exchange(endpoint: ingress, message: "please DROP this") == "")

            try await NSDeployment.terminate(service, manager: framework.manager, timeoutSeconds: 30)
        }
    }

    @Test func scalesOutOnOpenConnectionsAndBackIn() async throws {
        try await NFVFramework.withEchoTarget(portBlocks: 224..<234, monitors: true) { framework, echoEndpoint in
            let vnfd = try VNFDescriptorParser.parse(
                scaledLBYAML.replacingOccurrences(of: "collection_period: 1", with: "collection_period: 0.5")
                    .replacingOccurrences(of: "cooldown: 5", with: "cooldown: 1")
                    .replacingOccurrences(of: "scale_out_threshold: 2", with: "scale_out_threshold: 3"))
            let accepted = try await framework.manager.submit(
                .instantiate(vnfd: vnfd, name: "scaled", flavour: nil, level: nil, extLinks: ["egress": [echoEndpoint]]))
            let id = accepted.instanceID
            #expect(try await NSDeployment.waitForFinal(accepted.operationID!, manager: framework.manager, timeoutSeconds: 30) == .completed)
            let ingress = try #require(framework.manager.instance(id)?.endpoints(onLink: "ingress").first)
            #expect(LoopbackSocket.exchange(endpoint: ingress, message: "one") == "E:one")
            let metrics = try #require(framework.manager.instance(id)?.vnfcs["lb.0"]?.endpoint("metrics"))
            // The VNFC serves its counters (the traffic above, readiness and health checks connect too).
            let text = try #require(NFVHealth.httpBody(metrics, path: "/metrics"))
            #expect(NFVMetricsHTTPReader.value(of: "connections_total", in: text).map { $0 >= 1 } == true)
            #expect(NFVMetricsHTTPReader.value(of: "connections_active", in: text) != nil)

            // Four open connections on one VNFC: mean 4 > 3 → one step out (then 4 over 2 VNFCs is well below 3, even with a
            // health check's connection open at the time).
            let held = (0..<4).map { _ in try? LoopbackSocket(endpoint: ingress) }
            #expect(held.allSatisfy { $0 != nil })
            func automatic(_ type: ScaleType) -> LcmOpOcc? {
                framework.manager.operations().first {
                    $0.vnfInstanceID == id && $0.operation == .scale && $0.isAutomaticInvocation && $0.parameters["type"] == type.rawValue
                }
            }
            try await waitUntil("an automatic scale-out completes") { automatic(.scaleOut)?.state == .completed }
            let cause = automatic(.scaleOut)?.parameters["cause"] ?? ""
            #expect(cause.hasPrefix("connections_active mean ") && cause.hasSuffix("over 1 VNFCs above 3"), "\(cause)")
            #expect(framework.manager.instance(id)?.vnfcs.values.filter(\.isRunning).count == 2)

            // The connections close: mean 0 < 1 → back in.
            for connection in held { connection?.close() }
            try await waitUntil("an automatic scale-in completes") { automatic(.scaleIn)?.state == .completed }
            #expect(framework.manager.instance(id)?.vnfcs.keys.sorted() == ["lb.0"])
            #expect(framework.manager.operations().filter { $0.operation == .scale }.count == 2)
        }
    }
}
