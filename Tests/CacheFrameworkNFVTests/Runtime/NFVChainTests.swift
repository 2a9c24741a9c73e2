// End to end with real processes: the framework (local backend, cache driver, NFV manager behind the offer router)
// deploys the sample chain firewall → ratelimit → lb in front of a `vnf-sample echo` target, its VNFs instantiated
// at once (their INSTANTIATE occurrences overlap) and its links secured by default; TCP traffic goes through it and is forwarded or filtered as the descriptors say; a killed instance is
// healed in place; terminate leaves no task and every VNF identity revoked.

import CacheFramework
import CacheFrameworkNFV
import CacheFrameworkNFVRuntime
import CacheFrameworkRuntime
import Foundation
import Logging
import LoopbackTestSupport
import ReplicationSec
import Testing

#if canImport(Glibc)
import Glibc
#endif

struct NFVTestError: Error, CustomStringConvertible {
    var description: String
}

enum NFVTestPaths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static var buildDirectory: String {
        ProcessInfo.processInfo.environment["CACHE_BUILD_DIR"] ?? root.appendingPathComponent(".build/debug").path
    }
}

/// The framework with NFV, over a temporary data directory; with `monitors`, also the health monitor (auto-heal) and
/// the metrics collector (auto-scale).
final class NFVFramework: Sendable {
    let directory: String
    let backend: LocalBackend
    let manager: NFVManager
    let driver: FrameworkDriver
    let authority: FrameworkAuthority
    let health: NFVHealthMonitor
    private let tasks: [Task<Void, any Error>]

    init(firstPort: UInt64, monitors: Bool = false) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nfv-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var logger = Logger(label: "test.nfv")
        logger.logLevel = .warning
        let store = try SQLiteStateStore(directory: directory)
        let backend = LocalBackend(
            configuration: LocalBackendConfiguration(
                agents: LocalAgentSpec.split(count: 2, cpus: 8, memMB: 4096, firstPort: firstPort, portsPerAgent: 50),
                sandboxDirectory: directory + "/sandboxes", executableSearchPaths: [NFVTestPaths.buildDirectory],
                offerInterval: .milliseconds(200), killGracePeriod: .seconds(2)),
            journal: store, frameworkID: FrameworkID("test-nfv"), logger: logger,
            readiness: NFVHealth.readiness(fallback: RESPNodeControl(timeout: .milliseconds(500)).pingReadiness()))
        self.backend = backend
        var nfv = NFVManager.Configuration()
        nfv.tickInterval = .milliseconds(200)
        nfv.machine.operationTimeoutSeconds = 30
        nfv.linksDirectory = directory + "/links"
        authority = try FrameworkAuthority(directory: directory + "/authority")
        let manager = NFVManager(
            backend: backend, store: try SQLiteNFVStore(directory: directory), configuration: nfv, logger: logger, authority: authority)
        var configuration = FrameworkDriver.Configuration()
        configuration.tickInterval = .milliseconds(200)
        let driver = FrameworkDriver(
            backend: NFVOfferRouter(base: backend, manager: manager), store: store, configuration: configuration, logger: logger)
        self.manager = manager
        self.driver = driver
        let health = NFVHealthMonitor(manager: manager, pollInterval: .milliseconds(100), logger: logger)
        let metrics = NFVMetricsCollector(manager: manager, pollInterval: .milliseconds(200), logger: logger)
        self.health = health
        tasks = [Task { try await manager.run() }, Task { try await driver.run() }]
            + (monitors ? [Task { try await health.run() }, Task { try await metrics.run() }] : [])
    }

    func stop() async {
        for task in tasks.reversed() {
            task.cancel()
            _ = try? await task.value
        }
    }
}

/// Sends `message` to `port`, half-closes, and returns everything read until the peer closes ("" if refused).
extension NFVFramework {
    /// Runs `body` with a framework whose agents' ports start at a random base from `portBlocks` (× 100) and an echo
    /// target on base + 150 (a chain's egress) that answers; stops both afterwards, whether `body` throws or not.
    static func withEchoTarget(
        portBlocks: Range<UInt64>, monitors: Bool = false,
        _ body: (_ framework: NFVFramework, _ echoEndpoint: String) async throws -> Void
    ) async throws {
        let base = UInt64.random(in: portBlocks) * 100
        let framework = try NFVFramework(firstPort: base, monitors: monitors)
        do {
            let echo = try startEcho(port: Int(base) + 150)
            defer {
                echo.terminate()
                echo.waitUntilExit()
            }
            let echoEndpoint = "127.0.0.1:\(base + 150)"
            try await waitUntil("the echo target answers") { LoopbackSocket.exchange(endpoint: echoEndpoint, message: "x") == "E:x" }
            try await body(framework, echoEndpoint)
        } catch {
            await framework.stop()
            throw error
        }
        await framework.stop()
    }
}

/// The sample service chain (samples/nfv/chain.yaml: firewall, rate limiter, load balancer) with its VNF descriptors.
func loadChain() throws -> NSDescriptor {
    let directory = NFVTestPaths.root.appendingPathComponent("samples/nfv")
    return try NSDescriptorParser.parse(try String(contentsOf: directory.appendingPathComponent("chain.yaml"), encoding: .utf8)) {
        try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8)
    }
}

func waitUntil(_ what: String, seconds: Double = 30, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw NFVTestError(description: "timed out after \(seconds) s waiting until \(what)")
}

/// Starts `vnf-sample echo` on a free loopback port.
func startEcho(port: Int) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: NFVTestPaths.buildDirectory + "/vnf-sample")
    process.arguments = ["echo", "--port", "\(port)", "--tag", "E:"]
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    return process
}

@Suite(.serialized)
struct NFVChainTests {
    @Test func chainForwardsFiltersHealsAndTerminates() async throws {
        try await NFVFramework.withEchoTarget(portBlocks: 236..<250) { framework, echoEndpoint in
            let nsd = try loadChain()
            let service = try await NSDeployment.deploy(nsd, name: "chain", egress: [echoEndpoint], manager: framework.manager, timeoutSeconds: 30)
            #expect(service.vnfInstanceIDs.count == 3)
            let ingress = try #require(service.ingress.first)
            // The VNFs were instantiated at once: every INSTANTIATE occurrence of the service started before any of
            // them completed (one after the other, each would start after the previous one completed).
            let instantiations = framework.manager.operations().filter {
                $0.operation == .instantiate && service.vnfInstanceIDs.contains($0.vnfInstanceID)
            }
            #expect(instantiations.count == 3 && instantiations.allSatisfy { $0.state == .completed })
            let lastStart = try #require(instantiations.map(\.startTime).max())
            let firstCompletion = try #require(instantiations.map(\.stateEnteredTime).min())
            #expect(lastStart < firstCompletion, "the service's INSTANTIATE occurrences do not overlap")

            // Forwarded through firewall → ratelimit → lb → echo, and filtered by the firewall's deny pattern.
            #expect(LoopbackSocket.exchange(endpoint: ingress, message: "hello chain") == "E:hello chain")
            #expect(LoopbackSocket.exchange(endpoint: ingress, message: "please DROP this") == "")
            #expect(LoopbackSocket.exchange(endpoint: ingress, message: "still fine") == "E:still fine")

            // Every VNF task runs, and the cache scheduler left them alone.
            let views = await framework.backend.taskViews()
            #expect(views.filter { $0.taskID.value.hasPrefix("vnf.") && $0.state == .running }.count == 3)

            // Kill the load balancer's process: an automatic HEAL replaces it on the same port.
            let lbID = service.vnfInstanceIDs[2]
            let lbTask = try #require(framework.manager.instance(lbID)?.vnfcs["lb.0"]?.taskID)
            let pid = try #require(views.first { $0.taskID == lbTask }?.pid)
            kill(pid, SIGKILL)
            try await waitUntil("the lb instance is healed") {
                framework.manager.operations().contains {
                    $0.vnfInstanceID == lbID && $0.operation == .heal && $0.isAutomaticInvocation && $0.state == .completed
                }
            }
            #expect(framework.manager.instance(lbID)?.vnfcs["lb.0"]?.taskID != lbTask)
            try await waitUntil("traffic flows again") { LoopbackSocket.exchange(endpoint: ingress, message: "after heal") == "E:after heal" }

            // Terminate: every VNF task ends.
            try await NSDeployment.terminate(service, manager: framework.manager, timeoutSeconds: 30)
            for id in service.vnfInstanceIDs {
                #expect(framework.manager.instance(id)?.instantiationState == .notInstantiated)
            }
            try await waitUntil("no VNF task is left") {
                await framework.backend.taskViews().allSatisfy { !$0.taskID.value.hasPrefix("vnf.") || $0.state.isTerminal }
            }
            #expect(LoopbackSocket.exchange(endpoint: ingress, message: "gone") == "")
            // Every identity the framework issued to a VNFC (the healed lb's first one too) is revoked.
            let list = framework.authority.revocationList
            let issued = framework.authority.issuedNodeIDs.filter { $0.hasPrefix("vnf.") }
            #expect(issued.count == 4)
            for nodeID in issued {
                #expect(list.serials.contains(try identitySerial(framework, nodeID)), "\(nodeID) is not revoked")
            }
            let operations = framework.manager.operations().map(\.operation.rawValue)
            #expect(operations.filter { $0 == "INSTANTIATE" }.count == 3)
            #expect(operations.filter { $0 == "TERMINATE" }.count == 3)
        }
    }
}
