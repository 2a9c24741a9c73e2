// End to end with real processes: a two-tier VNF whose front (`vnf-sample lb`) reaches its backend (`vnf-sample
// echo`) through an internal link (`${vl:backend}`, `--next-link backend`) is updated; once the backend is replaced,
// the front process that still runs the old version sends its traffic to the new backend (it followed the link file
// the framework rewrote), and after the update the new front does too.

import CacheFramework
import CacheFrameworkNFV
import CacheFrameworkNFVRuntime
import Foundation
import LoopbackTestSupport
import Testing

@Suite(.serialized)
struct InternalLinkUpdateTests {
    @Test func theFrontFollowsItsInternalLinkToTheNewBackend() async throws {
        // Another range than the other NFV suites (suites run in parallel).
        let base = UInt64.random(in: 268..<282) * 100
        let framework = try NFVFramework(firstPort: base)
        do {
            let accepted = try await framework.manager.submit(
                .instantiate(vnfd: try twoTier(), name: "tt", flavour: nil, level: nil, extLinks: [:]))
            let id = accepted.instanceID
            #expect(try await NSDeployment.waitForFinal(accepted.operationID!, manager: framework.manager, timeoutSeconds: 30) == .completed)
            let oldIngress = try #require(framework.manager.instance(id)?.endpoints(onLink: "ingress").first)
            try await waitUntil("the front forwards to the backend") { LoopbackSocket.exchange(endpoint: oldIngress, message: "a") == "v1.0:a" }

            let update = try await framework.manager.submit(.changeVNFPackage(id, vnfd: try twoTier(version: "2.0")))
            // be.0 is replaced first; the old front (version 1.0, still serving until its own successor runs) then
            // answers through the new backend.
            try await waitUntil("the old front reaches the new backend", seconds: 20) { LoopbackSocket.exchange(endpoint: oldIngress, message: "b") == "v2.0:b" }
            #expect(framework.manager.instance(id)?.vnfcs["fe.0"]?.vnfdVersion == "1.0")

            #expect(try await NSDeployment.waitForFinal(update.operationID!, manager: framework.manager, timeoutSeconds: 60) == .completed)
            let ingress = try #require(framework.manager.instance(id)?.endpoints(onLink: "ingress").first)
            try await waitUntil("the new front forwards to the new backend") { LoopbackSocket.exchange(endpoint: ingress, message: "c") == "v2.0:c" }

            let terminate = try await framework.manager.submit(.terminate(id, .graceful, gracefulTimeout: nil))
            _ = try await NSDeployment.waitForFinal(terminate.operationID!, manager: framework.manager, timeoutSeconds: 30)
        } catch {
            await framework.stop()
            throw error
        }
        await framework.stop()
    }
}
