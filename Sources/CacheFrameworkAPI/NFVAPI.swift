// The NFV part of the framework API, shaped after ETSI SOL003 (VNF lifecycle management) as OpenStack Tacker serves
// it, plus a network-service resource for chains. Handlers are thin: decode, call `NFVManager`, encode.
//
//   GET    /vnflcm/v1/vnf_instances                          [VNFInstance]
//   POST   /vnflcm/v1/vnf_instances                          {vnfd (YAML), vnfInstanceName} → 201 VNFInstance
//   GET    /vnflcm/v1/vnf_instances/{id}                     VNFInstance
//   DELETE /vnflcm/v1/vnf_instances/{id}                     → 204
//   POST   /vnflcm/v1/vnf_instances/{id}/instantiate         {flavourId, instantiationLevelId?, extVirtualLinks?} → 202 LcmOpOcc
//   POST   /vnflcm/v1/vnf_instances/{id}/scale               {type, aspectId, numberOfSteps?} → 202
//   POST   /vnflcm/v1/vnf_instances/{id}/scale_to_level      {instantiationLevelId} → 202
//   POST   /vnflcm/v1/vnf_instances/{id}/heal                {vnfcInstanceId?: [..]} → 202
//   POST   /vnflcm/v1/vnf_instances/{id}/operate             {changeStateTo} → 202
//   POST   /vnflcm/v1/vnf_instances/{id}/terminate           {terminationType, gracefulTerminationTimeout?} → 202
//   POST   /vnflcm/v1/vnf_instances/{id}/change_vnfpkg       {vnfd (YAML of the new version)} → 202 (rolling update)
//   GET    /vnflcm/v1/vnf_lcm_op_occs                        [LcmOpOcc]
//   GET    /vnflcm/v1/vnf_lcm_op_occs/{id}                   LcmOpOcc
//   POST   /vnflcm/v1/vnf_lcm_op_occs/{id}/retry|rollback|fail → 202 LcmOpOcc
//   POST   /api/v1/network_services                          {name, nsd (YAML), vnfds {path: YAML}, egress [host:port],
//                                                             plaintextLinks?} → 201 NSInstance
// Errors use the API's JSON error shape; codes: unknown_vnf_instance, unknown_op_occ (404), conflict (409),
// invalid_descriptor, invalid_request (400).

public import CacheFrameworkNFV
public import CacheFrameworkNFVRuntime
import Foundation
public import Hummingbird

/// `POST /vnflcm/v1/vnf_instances`.
public struct CreateVnfRequest: Codable, Sendable {
    /// The VNFD as YAML text.
    public var vnfd: String
    /// The instance name.
    public var vnfInstanceName: String?
    public init(vnfd: String, vnfInstanceName: String?) {
        self.vnfd = vnfd
        self.vnfInstanceName = vnfInstanceName
    }
}

/// An external virtual link binding (SOL003 `ExtVirtualLinkData`, reduced to endpoints).
public struct ExtVirtualLinkData: Codable, Sendable {
    public var id: String
    public var endpoints: [String]
    public init(id: String, endpoints: [String]) {
        self.id = id
        self.endpoints = endpoints
    }
}

/// `POST …/instantiate`.
public struct InstantiateVnfRequest: Codable, Sendable {
    public var flavourId: String?
    public var instantiationLevelId: String?
    public var extVirtualLinks: [ExtVirtualLinkData]?
    public init(flavourId: String?, instantiationLevelId: String?, extVirtualLinks: [ExtVirtualLinkData]?) {
        self.flavourId = flavourId
        self.instantiationLevelId = instantiationLevelId
        self.extVirtualLinks = extVirtualLinks
    }
}

/// `POST …/scale`.
public struct ScaleVnfRequest: Codable, Sendable {
    public var type: ScaleType
    public var aspectId: String
    public var numberOfSteps: Int?
    public init(type: ScaleType, aspectId: String, numberOfSteps: Int?) {
        self.type = type
        self.aspectId = aspectId
        self.numberOfSteps = numberOfSteps
    }
}

/// `POST …/scale_to_level`.
public struct ScaleVnfToLevelRequest: Codable, Sendable {
    public var instantiationLevelId: String
    public init(instantiationLevelId: String) { self.instantiationLevelId = instantiationLevelId }
}

/// `POST …/heal`.
public struct HealVnfRequest: Codable, Sendable {
    public var vnfcInstanceId: [String]?
    public init(vnfcInstanceId: [String]?) { self.vnfcInstanceId = vnfcInstanceId }
}

/// `POST …/operate`.
public struct OperateVnfRequest: Codable, Sendable {
    public var changeStateTo: OperationalState
    public init(changeStateTo: OperationalState) { self.changeStateTo = changeStateTo }
}

/// `POST …/terminate`.
public struct TerminateVnfRequest: Codable, Sendable {
    public var terminationType: TerminationType
    public var gracefulTerminationTimeout: Double?
    public init(terminationType: TerminationType, gracefulTerminationTimeout: Double?) {
        self.terminationType = terminationType
        self.gracefulTerminationTimeout = gracefulTerminationTimeout
    }
}

/// `POST …/change_vnfpkg`: the new version of the instance's descriptor (SOL003 `ChangeCurrentVnfPkgRequest`, with
/// the descriptor itself instead of a package id).
public struct ChangeVnfPkgRequest: Codable, Sendable {
    /// The new VNFD as YAML text.
    public var vnfd: String
    public init(vnfd: String) { self.vnfd = vnfd }
}

/// `POST /api/v1/network_services`: an NSD with the VNFDs it references, deployed in front of `egress`.
public struct DeployNSRequest: Codable, Sendable {
    public var name: String
    public var nsd: String
    public var vnfds: [String: String]
    public var egress: [String]
    /// Overrides the NSD's `plaintext_links` (nil: as the descriptor says; links are secured by default).
    public var plaintextLinks: Bool?
    public init(name: String, nsd: String, vnfds: [String: String], egress: [String], plaintextLinks: Bool? = nil) {
        self.name = name
        self.nsd = nsd
        self.vnfds = vnfds
        self.egress = egress
        self.plaintextLinks = plaintextLinks
    }
}

extension FrameworkAPI {
    /// Adds the SOL003-shaped NFV routes for `manager` (behind the bearer token when `token` is set).
    public static func addNFVRoutes(to router: Router<BasicRequestContext>, manager: NFVManager, token: String?) {
        let lcm = router.group("vnflcm/v1")
        if let token { lcm.add(middleware: BearerTokenMiddleware(token: token)) }
        lcm.get("vnf_instances") { _, _ in manager.instances() }
        lcm.post("vnf_instances") { request, context -> EditedResponse<VNFInstance> in
            let body = try await request.decode(as: CreateVnfRequest.self, context: context)
            let vnfd = try descriptor { () throws(DescriptorError) in try VNFDescriptorParser.parse(body.vnfd) }
            let accepted = try await nfv { try await manager.submit(.create(vnfd: vnfd, name: body.vnfInstanceName ?? vnfd.id)) }
            return EditedResponse(status: .created, response: manager.instance(accepted.instanceID)!)
        }
        lcm.get("vnf_instances/:id") { _, context in try instance(try context.parameters.require("id"), manager) }
        lcm.delete("vnf_instances/:id") { _, context -> HTTPResponse.Status in
            _ = try await nfv { try await manager.submit(.delete(try context.parameters.require("id"))) }
            return .noContent
        }
        lcm.post("vnf_instances/:id/instantiate") { request, context in
            let id = try context.parameters.require("id")
            let body = try await request.decode(as: InstantiateVnfRequest.self, context: context)
            let links = Dictionary((body.extVirtualLinks ?? []).map { ($0.id, $0.endpoints) }, uniquingKeysWith: { a, b in a + b })
            return try await accepted(manager) {
                try await manager.submit(.instantiateExisting(id, flavour: body.flavourId, level: body.instantiationLevelId, extLinks: links))
            }
        }
        lcm.post("vnf_instances/:id/scale") { request, context in
            let id = try context.parameters.require("id")
            let body = try await request.decode(as: ScaleVnfRequest.self, context: context)
            return try await accepted(manager) {
                try await manager.submit(.scale(id, aspect: body.aspectId, type: body.type, steps: body.numberOfSteps ?? 1))
            }
        }
        lcm.post("vnf_instances/:id/scale_to_level") { request, context in
            let id = try context.parameters.require("id")
            let body = try await request.decode(as: ScaleVnfToLevelRequest.self, context: context)
            return try await accepted(manager) { try await manager.submit(.scaleToLevel(id, level: body.instantiationLevelId)) }
        }
        lcm.post("vnf_instances/:id/heal") { request, context in
            let id = try context.parameters.require("id")
            let body = try await request.decode(as: HealVnfRequest.self, context: context)
            return try await accepted(manager) { try await manager.submit(.heal(id, vnfcs: body.vnfcInstanceId ?? [])) }
        }
        lcm.post("vnf_instances/:id/operate") { request, context in
            let id = try context.parameters.require("id")
            let body = try await request.decode(as: OperateVnfRequest.self, context: context)
            return try await accepted(manager) { try await manager.submit(.operate(id, body.changeStateTo)) }
        }
        lcm.post("vnf_instances/:id/terminate") { request, context in
            let id = try context.parameters.require("id")
            let body = try await request.decode(as: TerminateVnfRequest.self, context: context)
            return try await accepted(manager) {
                try await manager.submit(.terminate(id, body.terminationType, gracefulTimeout: body.gracefulTerminationTimeout))
            }
        }
        lcm.post("vnf_instances/:id/change_vnfpkg") { request, context in
            let id = try context.parameters.require("id")
            let body = try await request.decode(as: ChangeVnfPkgRequest.self, context: context)
            let vnfd = try descriptor { () throws(DescriptorError) in try VNFDescriptorParser.parse(body.vnfd) }
            return try await accepted(manager) { try await manager.submit(.changeVNFPackage(id, vnfd: vnfd)) }
        }
        lcm.get("vnf_lcm_op_occs") { _, _ in manager.operations() }
        lcm.get("vnf_lcm_op_occs/:id") { _, context in try operation(try context.parameters.require("id"), manager) }
        for (verb, make) in [
            ("retry", NFVManager.Operation.retry), ("rollback", NFVManager.Operation.rollback), ("fail", NFVManager.Operation.fail),
        ] {
            lcm.post("vnf_lcm_op_occs/:id/\(verb)") { _, context in
                let id = try context.parameters.require("id")
                return try await accepted(manager) { try await manager.submit(make(id)) }
            }
        }

        let services = router.group("api/v1/network_services")
        if let token { services.add(middleware: BearerTokenMiddleware(token: token)) }
        services.post { request, context -> EditedResponse<NSInstance> in
            let body = try await request.decode(as: DeployNSRequest.self, context: context)
            let nsd = try descriptor { () throws(DescriptorError) in
                try NSDescriptorParser.parse(body.nsd) { path in
                    guard let text = body.vnfds[path] else { throw NSDeploymentError(message: "the request carries no VNFD '\(path)'") }
                    return text
                }
            }
            do {
                let service = try await NSDeployment.deploy(
                    nsd, name: body.name, egress: body.egress, manager: manager, plaintextLinks: body.plaintextLinks)
                return EditedResponse(status: .created, response: service)
            } catch let error as NFVError {
                throw apiError(error)
            } catch let error as NSDeploymentError {
                throw APIError(.conflict, code: "deployment_failed", message: error.message)
            }
        }
    }

    static func descriptor<T>(_ parse: () throws(DescriptorError) -> T) throws -> T {
        do { return try parse() } catch { throw APIError(.badRequest, code: "invalid_descriptor", message: error.description) }
    }

    static func nfv<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as NFVError { throw apiError(error) }
    }

    static func accepted(_ manager: NFVManager, _ body: () async throws -> NFVManager.Accepted) async throws -> EditedResponse<LcmOpOcc> {
        let accepted = try await nfv(body)
        guard let id = accepted.operationID, let operation = manager.operation(id) else {
            throw APIError(.internalServerError, code: "internal", message: "the operation occurrence vanished")
        }
        return EditedResponse(status: .accepted, headers: [.location: "/vnflcm/v1/vnf_lcm_op_occs/\(id)"], response: operation)
    }

    static func instance(_ id: String, _ manager: NFVManager) throws -> VNFInstance {
        guard let instance = manager.instance(id) else { throw apiError(.unknownInstance(id)) }
        return instance
    }

    static func operation(_ id: String, _ manager: NFVManager) throws -> LcmOpOcc {
        guard let operation = manager.operation(id) else { throw apiError(.unknownOperation(id)) }
        return operation
    }

    static func apiError(_ error: NFVError) -> APIError {
        switch error {
        case .unknownInstance: APIError(.notFound, code: "unknown_vnf_instance", message: error.description)
        case .unknownOperation: APIError(.notFound, code: "unknown_op_occ", message: error.description)
        case .conflict, .wrongState: APIError(.conflict, code: "conflict", message: error.description)
        case .invalidRequest: APIError(.badRequest, code: "invalid_request", message: error.description)
        }
    }
}

extension VNFInstance: ResponseEncodable {}
extension LcmOpOcc: ResponseEncodable {}
extension NSInstance: ResponseEncodable {}
