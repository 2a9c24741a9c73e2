// Deploys a network service: instantiates the chain's VNFs from the last to the first, binding each VNF's egress
// link to the ingress endpoints of the VNF after it (the last one's to the service's egress endpoints), waiting for
// each instantiation to complete so its ports are known. Terminating a service terminates its VNFs first to last.

import CacheFramework
public import CacheFrameworkNFV
public import CacheFrameworkRuntime
import Foundation

/// A deployed network service.
public struct NSInstance: Hashable, Codable, Sendable {
    /// A name.
    public var name: String
    /// The descriptor id.
    public var nsdID: String
    /// VNF instance ids in chain order.
    public var vnfInstanceIDs: [String]
    /// Where traffic enters the chain.
    public var ingress: [String]
}

/// Why a service deployment failed.
public struct NSDeploymentError: Error, CustomStringConvertible, Sendable {
    /// What failed.
    public var message: String
    /// Creates an error.
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// Network service deployment over an `NFVManager`.
public enum NSDeployment {
    /// Deploys `nsd` in front of `egress` endpoints; waits up to `timeoutSeconds` per VNF.
    public static func deploy(
        _ nsd: NSDescriptor, name: String, egress: [String], manager: NFVManager, clock: any FrameworkClock = WallClock(),
        timeoutSeconds: Double = 60
    ) async throws -> NSInstance {
        var next = egress
        var ids: [String] = []
        for vnfID in nsd.forwardingGraph.chain.reversed() {
            let profile = nsd.vnf(vnfID)!
            let accepted = try await manager.submit(
                .instantiate(
                    vnfd: profile.vnfd, name: "\(name).\(vnfID)", flavour: profile.flavour, level: profile.level,
                    extLinks: [nsd.forwardingGraph.egressLink: next]))
            let state = try await waitForFinal(accepted.operationID!, manager: manager, clock: clock, timeoutSeconds: timeoutSeconds)
            guard state == .completed, let instance = manager.instance(accepted.instanceID) else {
                throw NSDeploymentError(
                    message: "instantiating \(vnfID) ended \(state.rawValue): \(manager.operation(accepted.operationID!)?.error ?? "")")
            }
            ids.insert(instance.id, at: 0)
            next = instance.endpoints(onLink: nsd.forwardingGraph.ingressLink)
        }
        return NSInstance(name: name, nsdID: nsd.id, vnfInstanceIDs: ids, ingress: next)
    }

    /// Terminates the service's VNFs, first to last, and waits for each.
    public static func terminate(
        _ service: NSInstance, type: TerminationType = .graceful, manager: NFVManager, clock: any FrameworkClock = WallClock(),
        timeoutSeconds: Double = 60
    ) async throws {
        for id in service.vnfInstanceIDs {
            let accepted = try await manager.submit(.terminate(id, type, gracefulTimeout: nil))
            _ = try await waitForFinal(accepted.operationID!, manager: manager, clock: clock, timeoutSeconds: timeoutSeconds)
        }
    }

    /// Waits until the occurrence is COMPLETED, ROLLED_BACK, FAILED or FAILED_TEMP.
    public static func waitForFinal(
        _ operationID: String, manager: NFVManager, clock: any FrameworkClock = WallClock(), timeoutSeconds: Double
    ) async throws -> LcmOperationState {
        let deadline = clock.now().adding(seconds: timeoutSeconds)
        while clock.now() < deadline {
            if let state = manager.operation(operationID)?.state, state.isFinal || state == .failedTemp { return state }
            try await clock.sleep(for: .milliseconds(100))
        }
        throw NSDeploymentError(message: "operation \(operationID) did not finish within \(timeoutSeconds) s")
    }
}
