// Deploys a network service: creates the chain's VNF instances, then instantiates them from the last to the first,
// binding each VNF's egress link to the ingress endpoints of the VNF after it (the last one's to the service's egress
// endpoints), waiting for each instantiation to complete so its ports are known. Terminating a service terminates its
// VNFs first to last.
//
// Links between two VNFs of the chain are secured unless the descriptor (`plaintext_links: true`) or the deployment
// opts out: before instantiation each instance is told the node id prefix of the VNF before it (accepted on its
// ingress) and after it (required on its egress), so each hop runs the secure channel from one VNF process to the
// next with mutual authentication. The service's own ingress and egress stay plaintext (clients and targets are not
// VNFs).

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
    /// - Parameters:
    ///   - plaintextLinks: overrides the descriptor's `plaintext_links` (nil: as the descriptor says).
    ///   - interpose: maps the ingress endpoints of a VNF to the endpoints the VNF before it is bound to (tests put a
    ///     recording relay on a link with it); nil binds them directly.
    public static func deploy(
        _ nsd: NSDescriptor, name: String, egress: [String], manager: NFVManager, clock: any FrameworkClock = WallClock(),
        timeoutSeconds: Double = 60, plaintextLinks: Bool? = nil,
        interpose: (@Sendable ([String]) async throws -> [String])? = nil
    ) async throws -> NSInstance {
        let chain = nsd.forwardingGraph.chain
        var ids: [String] = []
        for vnfID in chain {
            let profile = nsd.vnf(vnfID)!
            ids.append(try await manager.submit(.create(vnfd: profile.vnfd, name: "\(name).\(vnfID)")).instanceID)
        }
        if !(plaintextLinks ?? nsd.forwardingGraph.plaintextLinks ?? false) {
            for (index, id) in ids.enumerated() where ids.count > 1 {
                let security = VNFLinkSecurity(
                    ingressPeers: index > 0 ? [VNFLinkSecurity.nodeIDPrefix(of: ids[index - 1])] : nil,
                    egressPeers: index < ids.count - 1 ? [VNFLinkSecurity.nodeIDPrefix(of: ids[index + 1])] : nil)
                try await manager.submit(.setLinkSecurity(id, security))
            }
        }
        var next = egress
        for (vnfID, id) in zip(chain, ids).reversed() {
            let profile = nsd.vnf(vnfID)!
            let accepted = try await manager.submit(
                .instantiateExisting(id, flavour: profile.flavour, level: profile.level, extLinks: [nsd.forwardingGraph.egressLink: next]))
            let state = try await waitForFinal(accepted.operationID!, manager: manager, clock: clock, timeoutSeconds: timeoutSeconds)
            guard state == .completed, let instance = manager.instance(accepted.instanceID) else {
                throw NSDeploymentError(
                    message: "instantiating \(vnfID) ended \(state.rawValue): \(manager.operation(accepted.operationID!)?.error ?? "")")
            }
            next = instance.endpoints(onLink: nsd.forwardingGraph.ingressLink)
            if let interpose, vnfID != chain.first { next = try await interpose(next) }
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
