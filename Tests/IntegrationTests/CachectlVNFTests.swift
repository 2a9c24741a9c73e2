// `cachectl vnf …` end to end against a running `cachectl serve`: deploy the sample chain (secured links) in front of a
// `vnf-sample echo`, push TCP through it, list/show/ops with tables and JSON, scale the firewall out and in, heal the
// rate limiter, terminate everything (identities end up in the authority's revocation list), and the exit codes of
// the error paths; and a framework killed with -9 while an instantiation runs finishes it after its restart.

import Foundation
import LoopbackTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Sends an exchange through `ingress` every 100 ms on its own thread until stopped, counting those answered.
private final class TrafficThread: @unchecked Sendable {
    private let lock = NSLock()
    private var stopping = false
    private var counts = (sent: 0, answered: 0)
    private let done = DispatchSemaphore(value: 0)

    init(ingress: String) {
        Thread.detachNewThread { [self] in
            while !lock.withLock({ stopping }) {
                let sent = lock.withLock { () -> Int in counts.sent += 1; return counts.sent }
                // A slow answer under CI load is still an answer; only a refused or cut connection is not.
                if LoopbackSocket.exchange(endpoint: ingress, message: "during \(sent)", timeoutSeconds: 15) == "E:during \(sent)" {
                    lock.withLock { counts.answered += 1 }
                }
                usleep(100_000)
            }
            done.signal()
        }
    }

    /// Stops the thread and returns how many exchanges were sent and answered.
    func stop() -> (sent: Int, answered: Int) {
        lock.withLock { stopping = true }
        done.wait()
        return lock.withLock { counts }
    }
}

@Suite(.serialized)
struct CachectlVNFTests {
    let framework = CachectlFrameworkTests()

    /// A `cachectl serve` on a fresh data directory and a `vnf-sample echo` target for the chains to end in.
    final class Fixture {
        let dataDirectory: String
        let firstPort: Int
        let echoPort: Int
        private(set) var serve: CachectlFrameworkTests.Serve
        private let echo: BackgroundProgram

        /// Ports from `ports` × 100 (the agents' ranges, then the echo target 250 above). The suite's ranges lie above
        /// the kernel's ephemeral ports (32768–60999) and apart from the other suites' so nothing else holds them.
        init(ports: Range<Int>) throws {
            dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("cachectl-vnf-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            firstPort = Int.random(in: ports) * 100
            echoPort = firstPort + 250
            let serve = try CachectlFrameworkTests.Serve(dataDirectory: dataDirectory, firstPort: firstPort)
            self.serve = serve
            echo = try BackgroundProgram(
                PackagePaths.root.appendingPathComponent(".build/debug/vnf-sample").path, ["echo", "--port", "\(echoPort)", "--tag", "E:"])
            let (echoPort, echo) = (echoPort, echo)
            do {
                try eventually("the echo target answers") { LoopbackSocket.exchange(endpoint: "127.0.0.1:\(echoPort)", message: "x") == "E:x" }
            } catch {
                // No fixture to stop: do not leave the framework running.
                serve.terminate()
                throw HarnessError(description: "the echo target on port \(echoPort) did not answer: \(echo.output)")
            }
        }

        /// Runs `cachectl ARGUMENTS --data-dir …`.
        func ctl(_ arguments: [String]) throws -> ProgramResult {
            try CachectlFrameworkTests().ctl(arguments, dataDirectory: dataDirectory)
        }

        /// Starts `cachectl serve` again on the same data directory and ports (after a kill).
        func restartServe() throws { serve = try CachectlFrameworkTests.Serve(dataDirectory: dataDirectory, firstPort: firstPort) }

        func stop() {
            serve.terminate()
            echo.stop()
            try? FileManager.default.removeItem(atPath: dataDirectory)
        }
    }

    @Test func deployTrafficScaleHealTerminateThroughCachectl() async throws {
        let fixture = try Fixture(ports: 610..<630)
        defer { fixture.stop() }
        let (dataDirectory, echoPort) = (fixture.dataDirectory, fixture.echoPort)
        let ctl = fixture.ctl

        // Deploy the chain: JSON names the three instances and the ingress; traffic is forwarded and filtered.
        let chain = PackagePaths.root.appendingPathComponent("samples/nfv/chain.yaml").path
        let deployed = try ctl(["vnf", "deploy", chain, "--name", "svc", "--egress", "127.0.0.1:\(echoPort)", "--json"])
        #expect(deployed.status == 0, "\(deployed.output)")
        let service = try #require(try framework.json(deployed) as? [String: Any])
        let ids = try #require(service["vnfInstanceIDs"] as? [String])
        #expect(ids.count == 3)
        let ingress = try #require((service["ingress"] as? [String])?.first)
        #expect(LoopbackSocket.exchange(endpoint: ingress, message: "hello") == "E:hello")
        #expect(LoopbackSocket.exchange(endpoint: ingress, message: "DROP me") == "")

        // list / show / ops as tables and JSON.
        let list = try ctl(["vnf", "list"])
        #expect(list.status == 0)
        #expect(list.output.contains("ID") && list.output.contains("svc.fw") && list.output.contains("secure(out)")
            && list.output.contains("secure(in+out)") && list.output.contains("secure(in)"), "\(list.output)")
        let listed = try #require(try framework.json(try ctl(["vnf", "list", "--json"])) as? [[String: Any]])
        #expect(Set(listed.compactMap { $0["id"] as? String }) == Set(ids))
        let shown = try ctl(["vnf", "show", ids[1]])
        #expect(shown.status == 0 && shown.output.contains("rl.0") && shown.output.contains("running"), "\(shown.output)")

        // Scale the firewall out and back in under traffic (an exchange through the chain every 100 ms, each answered);
        // then heal the rate limiter.
        // A thread of its own: this suite's tests block the concurrency pool's few threads while they wait on processes.
        let traffic = TrafficThread(ingress: ingress)
        let out = try ctl(["vnf", "scale", ids[0], "--aspect", "fw-scale"])
        #expect(out.status == 0 && out.output.contains("COMPLETED"), "\(out.output)")
        let scaled = try #require(try framework.json(try ctl(["vnf", "show", ids[0], "--json"])) as? [String: Any])
        #expect((scaled["vnfcs"] as? [String: Any])?.count == 2)
        let back = try ctl(["vnf", "scale", ids[0], "--aspect", "fw-scale", "--in", "--json"])
        #expect(back.status == 0, "\(back.output)")
        #expect((try framework.json(back) as? [String: Any])?["state"] as? String == "COMPLETED")
        let during = traffic.stop()
        #expect(during.sent > 5 && during.answered == during.sent, "answered \(during.answered) of \(during.sent) during the scaling")
        let healed = try ctl(["vnf", "heal", ids[1], "--vnfc", "rl.0"])
        #expect(healed.status == 0 && healed.output.contains("HEAL"), "\(healed.output)")
        try eventually("traffic flows after the heal") { LoopbackSocket.exchange(endpoint: ingress, message: "again") == "E:again" }

        // Rolling update of the rate limiter to 1.1 (its new VNFC runs before the firewall is pointed at it and the
        // old one stops); the version it already runs is refused (1).
        let v11 = dataDirectory + "/ratelimit-1.1.yaml"
        try String(contentsOf: PackagePaths.root.appendingPathComponent("samples/nfv/ratelimit.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "version: \"1.0\"", with: "version: \"1.1\"")
            .write(toFile: v11, atomically: true, encoding: .utf8)
        let updated = try ctl(["vnf", "update", ids[1], v11])
        #expect(updated.status == 0 && updated.output.contains("CHANGE_VNFPKG") && updated.output.contains("COMPLETED"), "\(updated.output)")
        #expect(try ctl(["vnf", "list"]).output.contains("sample-ratelimit 1.1"))
        #expect(LoopbackSocket.exchange(endpoint: ingress, message: "updated") == "E:updated")
        #expect(try ctl(["vnf", "update", ids[1], v11]).status == 1)
        let ops = try #require(try framework.json(try ctl(["vnf", "ops", ids[0], "--json"])) as? [[String: Any]])
        #expect(ops.compactMap { $0["operation"] as? String } == ["INSTANTIATE", "SCALE", "SCALE"])

        // Error paths: unknown instance (5), a scale beyond the aspect's range (1).
        #expect(try ctl(["vnf", "show", "no-such-vnf"]).status == 5)
        #expect(try ctl(["vnf", "scale", ids[1], "--aspect", "rl-scale", "--in"]).status == 1)
        // A VNF whose executable does not exist: its instantiation fails after three launches, at once and saying why.
        let broken = dataDirectory + "/broken-lb.yaml"
        try String(contentsOf: PackagePaths.root.appendingPathComponent("samples/nfv/lb.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "command: vnf-sample", with: "command: /nonexistent/vnf-sample")
            .write(toFile: broken, atomically: true, encoding: .utf8)
        let refused = try ctl(["vnf", "deploy", broken, "--ext", "egress=127.0.0.1:\(echoPort)"])
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.output.contains("FAILED_TEMP") && refused.output.contains("ended 3 times in a row before it ran")
            && refused.output.contains("/nonexistent/vnf-sample"), "\(refused.output)")

        // Terminate every instance; the authority's list then revokes every identity it issued.
        for id in ids {
            let terminated = try ctl(["vnf", "terminate", id])
            #expect(terminated.status == 0 && terminated.output.contains("COMPLETED"), "\(terminated.output)")
        }
        #expect(LoopbackSocket.exchange(endpoint: ingress, message: "gone") == "")
        let issued = try #require(
            try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: dataDirectory + "/authority/issued.json")))
                as? [String: [NSNumber]])
        // Identities are issued per launch ("vnf.<instance>.<vnfc>.<launch>"): fw.0, fw.1 (scaled out, then in), lb.0,
        // and rl.0 before and after its heal and its update (whose new VNFC launched as "rl.0.next"). Under load a VNFC that missed its readiness deadline is relaunched by an
        // automatic heal, which adds a launch of the same VNFC but never another VNFC.
        let launchedVNFCs = issued.keys.filter { $0.hasPrefix("vnf.") }.map { $0.split(separator: ".").filter { $0 != "next" }.suffix(3).prefix(2).joined(separator: ".") }
        #expect(Set(launchedVNFCs) == ["fw.0", "fw.1", "lb.0", "rl.0"], "\(issued.keys.sorted())")
        #expect(launchedVNFCs.filter { $0 == "rl.0" }.count >= 2, "\(issued.keys.sorted())")
        let revoked = try String(contentsOfFile: dataDirectory + "/authority/revoked.list", encoding: .utf8)
        #expect(revoked.contains("RSEC REVOCATION LIST"))
    }

    /// Pids of `vnf-sample lb` processes (from /proc/*/cmdline).
    private func loadBalancerProcesses() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry -> Int32? in
            guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            let words = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return words.count > 1 && words[0].hasSuffix("/vnf-sample") && words[1] == "lb" ? pid : nil
        }
    }

    @Test func aFrameworkKilledDuringAnInstantiationFinishesItAfterItsRestart() async throws {
        let fixture = try Fixture(ports: 630..<650)
        defer { fixture.stop() }
        let echoPort = fixture.echoPort
        let ctl = fixture.ctl
        let before = Set(loadBalancerProcesses())

        // The instantiation is accepted (recorded), then the framework dies with kill -9 before it can finish.
        let lb = PackagePaths.root.appendingPathComponent("samples/nfv/lb.yaml").path
        let accepted = try ctl(["vnf", "deploy", lb, "--ext", "egress=127.0.0.1:\(echoPort)", "--no-wait", "--json"])
        #expect(accepted.status == 0, "\(accepted.output)")
        let operation = try #require(try framework.json(accepted) as? [String: Any])
        let instanceID = try #require(operation["vnfInstanceID"] as? String)
        #expect(["STARTING", "PROCESSING"].contains(operation["state"] as? String), "\(operation)")
        fixture.serve.kill9()

        // Restarted on the same data directory: it reconciles and completes the occurrence, with one process for the
        // one VNFC (the one launched before the kill adopted, or launched now — never both).
        try fixture.restartServe()
        var finalState = ""
        try eventually("the instantiation ends after the restart", seconds: 90) {
            let ops = try framework.json(try ctl(["vnf", "ops", instanceID, "--json"])) as? [[String: Any]] ?? []
            finalState = ops.first { $0["operation"] as? String == "INSTANTIATE" }?["state"] as? String ?? ""
            return ["COMPLETED", "ROLLED_BACK", "FAILED"].contains(finalState)
        }
        #expect(finalState == "COMPLETED")
        let shown = try #require(try framework.json(try ctl(["vnf", "show", instanceID, "--json"])) as? [String: Any])
        let vnfc = try #require((shown["vnfcs"] as? [String: Any])?["lb.0"] as? [String: Any], "\(shown)")
        let hostname = try #require(vnfc["hostname"] as? String)
        let port = try #require((vnfc["ports"] as? [String: Any])?["traffic"] as? Int)
        try eventually("traffic flows through the restarted framework's VNF") {
            LoopbackSocket.exchange(endpoint: "\(hostname):\(port)", message: "after restart") == "E:after restart"
        }
        try eventually("exactly one process runs the VNFC") { Set(loadBalancerProcesses()).subtracting(before).count == 1 }
        let terminated = try ctl(["vnf", "terminate", instanceID])
        #expect(terminated.status == 0 && terminated.output.contains("COMPLETED"), "\(terminated.output)")
        try eventually("no process is left") { Set(loadBalancerProcesses()).subtracting(before).isEmpty }
    }
}
