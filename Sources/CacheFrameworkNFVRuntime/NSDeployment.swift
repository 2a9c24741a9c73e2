// Deploys a network service: creates the chain's VNF instances and instantiates them all at once. The last VNF's
// egress link is bound to the service's egress endpoints; every other VNF's egress link starts unbound and is bound
// (`bindExtLink`) as soon as the next VNF's VNFCs are placed, i.e. their ports are known, well before they are ready:
// the VNF processes follow their link file (`vnf-sample --next-link`), so a service is ready in about one offer round
// plus its slowest VNF's readiness instead of one round and readiness per VNF. A manager without link files (nothing
// could follow a late binding) instantiates the VNFs one after the other, last first, each bound at instantiation.
// Terminating a service terminates its VNFs first to last.
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
    /// Deploys `nsd` in front of `egress` endpoints; waits up to `timeoutSeconds` for the whole service (per VNF when
    /// the manager keeps no link files and the VNFs are instantiated one after the other).
    ///
    /// If a VNF's instantiation fails, the error names it and the service's other instances are left as they are
    /// (created, and instantiating or instantiated): terminate them, or retry the failed occurrence.
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
        guard manager.keepsLinkFiles else {
            return try await deployInTurn(
                nsd, name: name, ids: ids, egress: egress, manager: manager, clock: clock, timeoutSeconds: timeoutSeconds,
                interpose: interpose)
        }
        let ingressLink = nsd.forwardingGraph.ingressLink
        let egressLink = nsd.forwardingGraph.egressLink
        var operations: [String] = []
        for (index, (vnfID, id)) in zip(chain, ids).enumerated() {
            let profile = nsd.vnf(vnfID)!
            let last = index == ids.count - 1
            let accepted = try await manager.submit(
                .instantiateExisting(
                    id, flavour: profile.flavour, level: profile.level, extLinks: last ? [egressLink: egress] : [:],
                    unboundLinks: last ? [] : [egressLink]))
            operations.append(accepted.operationID!)
        }
        // Bind each VNF's egress to the next VNF's ingress once that one's VNFCs have ports (again if they move, e.g.
        // a VNFC that failed to start is placed elsewhere), until every instantiation completed.
        var bound: [Int: [String]] = [:]
        var lastBinding: SchedulerTime?
        let deadline = clock.now().adding(seconds: timeoutSeconds)
        while true {
            for index in ids.indices.dropLast() {
                guard let next = manager.instance(ids[index + 1]), let endpoints = placedEndpoints(next, link: ingressLink),
                    bound[index] != endpoints
                else { continue }
                let target = try await interpose?(endpoints) ?? endpoints
                try await manager.submit(.bindExtLink(ids[index], link: egressLink, endpoints: target))
                bound[index] = endpoints
                lastBinding = clock.now()
            }
            let states = operations.map { manager.operation($0)?.state }
            if let failed = states.indices.first(where: { states[$0].map { ($0.isFinal && $0 != .completed) || $0 == .failedTemp } ?? false }) {
                let others = ids.enumerated().filter { $0.offset != failed }.map(\.element).joined(separator: ", ")
                throw NSDeploymentError(
                    message: "instantiating \(chain[failed]) (\(ids[failed])) ended \(states[failed]!.rawValue): "
                        + "\(manager.operation(operations[failed])?.error ?? ""); the service's other VNF instances (\(others)) "
                        + "are left as they are: retry or roll back operation \(operations[failed]), or terminate them")
            }
            if states.allSatisfy({ $0 == .completed }) && bound.count == ids.count - 1 { break }
            guard clock.now() < deadline else {
                let waiting = zip(chain, states).filter { $0.1 != .completed }.map { "\($0.0) \($0.1?.rawValue ?? "unknown")" }
                throw NSDeploymentError(
                    message: "the service's VNFs were not all instantiated within \(timeoutSeconds) s (\(waiting.joined(separator: ", "))); "
                        + "see their operation occurrences (cachectl vnf ops) for why")
            }
            try await clock.sleep(for: .milliseconds(50))
        }
        // A process reads its link file every 200 ms (`vnf-sample --next-link`): give the last binding that long, so
        // the service forwards when this returns.
        if let lastBinding {
            let settled = lastBinding.adding(seconds: 0.3)
            while clock.now() < settled { try await clock.sleep(for: .milliseconds(50)) }
        }
        let ingress = manager.instance(ids[0])?.endpoints(onLink: ingressLink) ?? []
        return NSInstance(name: name, nsdID: nsd.id, vnfInstanceIDs: ids, ingress: ingress)
    }

    /// The endpoints of `instance` on `link` once every VNFC it should run there is placed (nil before).
    static func placedEndpoints(_ instance: VNFInstance, link: String) -> [String]? {
        guard instance.instantiationState == .instantiated else { return nil }
        let desired = instance.desiredCounts
        for point in instance.vnfd.connectionPoints where point.virtualLink == link && point.direction == .inbound {
            for index in 0..<(desired[point.vdu] ?? 0) {
                guard let vnfc = instance.vnfcs["\(point.vdu).\(index)"], vnfc.taskID != nil, vnfc.hostname != nil else { return nil }
            }
        }
        let endpoints = instance.endpoints(onLink: link)
        return endpoints.isEmpty ? nil : endpoints
    }

    /// Instantiates the VNFs one after the other, last first, each bound at instantiation to the ingress endpoints of
    /// the VNF after it (for a manager whose VNF processes cannot follow a later binding).
    static func deployInTurn(
        _ nsd: NSDescriptor, name: String, ids: [String], egress: [String], manager: NFVManager, clock: any FrameworkClock,
        timeoutSeconds: Double, interpose: (@Sendable ([String]) async throws -> [String])?
    ) async throws -> NSInstance {
        let chain = nsd.forwardingGraph.chain
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
