// VNFCommand: `cachectl vnf deploy|list|show|scale|heal|update|terminate|ops` over the framework's SOL003-shaped NFV API, with
// the cluster commands' habits: tables for people, `--json` for scripts, progress on stderr while an operation runs,
// and exit codes scripts can trust (a FAILED or ROLLED_BACK operation exits 1, a timeout 7).

import ArgumentParser
import CacheFramework
import CacheFrameworkAPI
import CacheFrameworkNFV
import CacheFrameworkNFVRuntime
import Foundation

extension Cachectl {
    struct VNFCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vnf",
            abstract: "Deploy, inspect, scale, heal, update and terminate virtual network functions and service chains.",
            discussion: ExitStatus.help,
            subcommands: [Deploy.self, List.self, Show.self, Scale.self, Heal.self, Update.self, Terminate.self, Ops.self])
    }
}

/// Prints VNF instances as a table.
func printVNFInstances(_ instances: [VNFInstance]) {
    printTable(
        ["ID", "NAME", "VNFD", "STATE", "LEVEL", "VNFCS", "INGRESS", "LINKS"],
        instances.map { instance in
            let running = instance.vnfcs.values.filter(\.isRunning).count
            var links = "plaintext"
            if let security = instance.linkSecurity {
                let sides = [security.ingressPeers.map { _ in "in" }, security.egressPeers.map { _ in "out" }].compactMap { $0 }
                links = "secure(\(sides.joined(separator: "+")))"
            }
            return [
                instance.id, instance.name, "\(instance.vnfd.id) \(instance.vnfd.version)",
                instance.instantiationState == .instantiated ? instance.operationalState.rawValue : instance.instantiationState.rawValue,
                instance.levelID, "\(running)/\(instance.vnfcs.count)",
                instance.endpoints(onLink: "ingress").joined(separator: ",").nonEmpty ?? "-",
                links,
            ]
        })
}

/// Prints operation occurrences as a table.
func printOperations(_ operations: [LcmOpOcc]) {
    printTable(
        ["ID", "INSTANCE", "OPERATION", "STATE", "AUTO", "STARTED", "ERROR"],
        operations.map { operation in
            [
                operation.id, operation.vnfInstanceID, operation.operation.rawValue, operation.state.rawValue,
                operation.isAutomaticInvocation ? "yes" : "no",
                ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: operation.startTime.seconds)),
                operation.error ?? "",
            ]
        })
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}

/// Polls an operation occurrence until it is final or FAILED_TEMP (which waits for an operator: retry, rollback or
/// fail); prints its state changes to stderr unless `quiet`.
func waitForOperation(_ client: FrameworkHTTPClient, _ operation: LcmOpOcc, timeout: Double, quiet: Bool) async throws -> LcmOpOcc {
    let deadline = Date().addingTimeInterval(timeout)
    var current = operation
    var lastState: LcmOperationState?
    while true {
        if !quiet && current.state != lastState {
            lastState = current.state
            FileHandle.standardError.write(Data("\(current.operation.rawValue) \(current.vnfInstanceID): \(current.state.rawValue)\n".utf8))
        }
        if current.state.isFinal || current.state == .failedTemp { return current }
        if Date() >= deadline {
            printError("operation \(current.id) is \(current.state.rawValue) after \(Int(timeout)) s")
            throw ExitStatus.timedOut
        }
        try await Task.sleep(for: .milliseconds(200))
        current = try await client.call(.GET, "/vnflcm/v1/vnf_lcm_op_occs/\(current.id)", as: LcmOpOcc.self)
    }
}

/// Waits (unless `noWait`), prints the outcome and exits 1 when the operation did not complete.
func finishOperation(
    _ client: FrameworkHTTPClient, _ accepted: LcmOpOcc, noWait: Bool, timeout: Double, connection: FrameworkConnectionOptions
) async throws {
    let operation = noWait ? accepted : try await waitForOperation(client, accepted, timeout: timeout, quiet: connection.json)
    if connection.json {
        try printJSON(operation)
    } else {
        printOperations([operation])
    }
    if operation.state == .failedTemp {
        printError(
            "operation \(operation.id) is FAILED_TEMP: \(operation.error ?? "no error recorded"); decide with POST "
                + "/vnflcm/v1/vnf_lcm_op_occs/\(operation.id)/retry, /rollback or /fail")
        throw ExitStatus.refused
    }
    if operation.state.isFinal && operation.state != .completed { throw ExitStatus.refused }
}

extension Cachectl.VNFCommand {
    struct Deploy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deploy a network service (an NSD file) or one VNF (a VNFD file) and wait until it runs.",
            discussion: "An NSD's VNFDs are read relative to it; --egress binds the end of the chain. Links between the chain's VNFs are secured unless --plaintext-links or the NSD's plaintext_links says otherwise.")

        @Argument(help: "An NSD or VNFD YAML file.") var file: String
        @Option(help: "Name of the service or instance (default: the descriptor id).") var name: String?
        @Option(help: "host:port the service's (or VNF's) egress link forwards to; repeatable.") var egress: [String] = []
        @Option(help: "VNFD only: deployment flavour.") var flavour: String?
        @Option(help: "VNFD only: instantiation level.") var level: String?
        @Option(name: .customLong("ext"), help: "VNFD only: bind an external link, LINK=host:port[,host:port]; repeatable.") var extLinks: [String] = []
        @Flag(name: .customLong("plaintext-links"), help: "NSD only: carry the links between VNFs in plaintext (opt-in).") var plaintextLinks = false
        @Flag(name: .customLong("no-wait"), help: "VNFD only: return once the instantiation is accepted.") var noWait = false
        @Option(help: "Seconds to wait.") var timeout: Double = 120
        @OptionGroup var connection: FrameworkConnectionOptions

        func validate() throws {
            for binding in extLinks where !binding.contains("=") { throw ValidationError("--ext \(binding) is not LINK=host:port") }
        }

        func run() async throws {
            let url = URL(fileURLWithPath: file)
            let text: String
            do { text = try String(contentsOf: url, encoding: .utf8) } catch {
                printError("cannot read \(file): \(error.localizedDescription)")
                throw ExitStatus.refused
            }
            let client = try connection.client()
            if text.range(of: #"(?m)^nsd:"#, options: .regularExpression) != nil {
                try await deployService(text, directory: url.deletingLastPathComponent(), client: client)
            } else {
                try await deployVNF(text, client: client)
            }
        }

        private func deployService(_ text: String, directory: URL, client: FrameworkHTTPClient) async throws {
            var vnfds: [String: String] = [:]
            let nsd: NSDescriptor
            do {
                nsd = try NSDescriptorParser.parse(text) { path in
                    let vnfd = try String(contentsOf: directory.appendingPathComponent(path), encoding: .utf8)
                    vnfds[path] = vnfd
                    return vnfd
                }
            } catch {
                printError("\(file): \(error)")
                throw ExitStatus.refused
            }
            guard !egress.isEmpty else {
                printError("a network service needs --egress host:port (where the end of the chain forwards to)")
                throw ExitStatus.refused
            }
            if !connection.json {
                FileHandle.standardError.write(Data("deploying \(nsd.id): \(nsd.forwardingGraph.chain.joined(separator: " → "))\n".utf8))
            }
            let service = try await client.call(
                .POST, "/api/v1/network_services",
                body: DeployNSRequest(
                    name: name ?? nsd.id, nsd: text, vnfds: vnfds, egress: egress, plaintextLinks: plaintextLinks ? true : nil),
                as: NSInstance.self)
            if connection.json { return try printJSON(service) }
            print("service \(service.name) (\(service.nsdID)): ingress \(service.ingress.joined(separator: ","))")
            let instances = try await client.call(.GET, "/vnflcm/v1/vnf_instances", as: [VNFInstance].self)
            printVNFInstances(service.vnfInstanceIDs.compactMap { id in instances.first { $0.id == id } })
        }

        private func deployVNF(_ text: String, client: FrameworkHTTPClient) async throws {
            let created = try await client.call(
                .POST, "/vnflcm/v1/vnf_instances", body: CreateVnfRequest(vnfd: text, vnfInstanceName: name), as: VNFInstance.self)
            var links = extLinks.map { binding -> ExtVirtualLinkData in
                let parts = binding.split(separator: "=", maxSplits: 1).map(String.init)
                return ExtVirtualLinkData(id: parts[0], endpoints: parts[1].split(separator: ",").map(String.init))
            }
            if !egress.isEmpty { links.append(ExtVirtualLinkData(id: "egress", endpoints: egress)) }
            let accepted = try await client.call(
                .POST, "/vnflcm/v1/vnf_instances/\(created.id)/instantiate",
                body: InstantiateVnfRequest(flavourId: flavour, instantiationLevelId: level, extVirtualLinks: links), as: LcmOpOcc.self)
            try await finishOperation(client, accepted, noWait: noWait, timeout: timeout, connection: connection)
            if !connection.json && !noWait {
                printVNFInstances([try await client.call(.GET, "/vnflcm/v1/vnf_instances/\(created.id)", as: VNFInstance.self)])
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List VNF instances.")
        @OptionGroup var connection: FrameworkConnectionOptions

        func run() async throws {
            let instances = try await connection.client().call(.GET, "/vnflcm/v1/vnf_instances", as: [VNFInstance].self)
            if connection.json { return try printJSON(instances) }
            printVNFInstances(instances)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one VNF instance and its VNFCs.")
        @Argument(help: "VNF instance id.") var id: String
        @OptionGroup var connection: FrameworkConnectionOptions

        func run() async throws {
            let instance = try await connection.client().call(.GET, "/vnflcm/v1/vnf_instances/\(id)", as: VNFInstance.self)
            if connection.json { return try printJSON(instance) }
            printVNFInstances([instance])
            print("")
            printTable(
                ["VNFC", "VDU", "STATE", "ENDPOINTS", "TASK", "INCARNATION"],
                instance.vnfcs.values.sorted { $0.id < $1.id }.map { vnfc in
                    [
                        vnfc.id, vnfc.vdu, vnfc.state.map { String($0.rawValue.dropFirst(5)).lowercased() } ?? (vnfc.taskID == nil ? "pending" : "launching"),
                        vnfc.ports.keys.sorted().compactMap { vnfc.endpoint($0) }.joined(separator: ","), vnfc.taskID?.value ?? "-",
                        "\(vnfc.incarnation)",
                    ]
                })
        }
    }

    struct Scale: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Scale a VNF instance out or in along an aspect.")
        @Argument(help: "VNF instance id.") var id: String
        @Option(help: "Scaling aspect id.") var aspect: String
        @Flag(name: .customLong("in"), help: "Scale in (default: out).") var scaleIn = false
        @Option(help: "Steps.") var steps: Int = 1
        @Flag(name: .customLong("no-wait"), help: "Return once the operation is accepted.") var noWait = false
        @Option(help: "Seconds to wait.") var timeout: Double = 60
        @OptionGroup var connection: FrameworkConnectionOptions

        func run() async throws {
            let client = try connection.client()
            let accepted = try await client.call(
                .POST, "/vnflcm/v1/vnf_instances/\(id)/scale",
                body: ScaleVnfRequest(type: scaleIn ? .scaleIn : .scaleOut, aspectId: aspect, numberOfSteps: steps), as: LcmOpOcc.self)
            try await finishOperation(client, accepted, noWait: noWait, timeout: timeout, connection: connection)
        }
    }

    struct Heal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace VNFCs of an instance (all of them by default).")
        @Argument(help: "VNF instance id.") var id: String
        @Option(help: "A VNFC id to heal; repeatable.") var vnfc: [String] = []
        @Flag(name: .customLong("no-wait"), help: "Return once the operation is accepted.") var noWait = false
        @Option(help: "Seconds to wait.") var timeout: Double = 60
        @OptionGroup var connection: FrameworkConnectionOptions

        func run() async throws {
            let client = try connection.client()
            let accepted = try await client.call(
                .POST, "/vnflcm/v1/vnf_instances/\(id)/heal", body: HealVnfRequest(vnfcInstanceId: vnfc.isEmpty ? nil : vnfc),
                as: LcmOpOcc.self)
            try await finishOperation(client, accepted, noWait: noWait, timeout: timeout, connection: connection)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rolling update of a VNF instance to a new version of its descriptor (SOL003 change_vnfpkg).",
            discussion: "VNFCs are replaced one at a time: the new one runs and passes its health check, whatever forwarded to the old one is pointed at it, then the old one is stopped. A failed update rolls back to the old version.")
        @Argument(help: "VNF instance id.") var id: String
        @Argument(help: "The new VNFD YAML file (same VDUs, ports and connection points; a new version).") var file: String
        @Flag(name: .customLong("no-wait"), help: "Return once the operation is accepted.") var noWait = false
        @Option(help: "Seconds to wait.") var timeout: Double = 120
        @OptionGroup var connection: FrameworkConnectionOptions

        func run() async throws {
            let text: String
            do { text = try String(contentsOf: URL(fileURLWithPath: file), encoding: .utf8) } catch {
                printError("cannot read \(file): \(error.localizedDescription)")
                throw ExitStatus.refused
            }
            let client = try connection.client()
            let accepted = try await client.call(
                .POST, "/vnflcm/v1/vnf_instances/\(id)/change_vnfpkg", body: ChangeVnfPkgRequest(vnfd: text), as: LcmOpOcc.self)
            try await finishOperation(client, accepted, noWait: noWait, timeout: timeout, connection: connection)
        }
    }

    struct Terminate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Terminate a VNF instance: its tasks stop and their identities are revoked.")
        @Argument(help: "VNF instance id.") var id: String
        @Flag(help: "Kill and forget at once instead of waiting for the tasks to end.") var forceful = false
        @Option(name: .customLong("graceful-timeout"), help: "Seconds a graceful termination waits for the tasks.") var gracefulTimeout: Double?
        @Flag(name: .customLong("no-wait"), help: "Return once the operation is accepted.") var noWait = false
        @Option(help: "Seconds to wait.") var timeout: Double = 60
        @OptionGroup var connection: FrameworkConnectionOptions

        func run() async throws {
            let client = try connection.client()
            let accepted = try await client.call(
                .POST, "/vnflcm/v1/vnf_instances/\(id)/terminate",
                body: TerminateVnfRequest(terminationType: forceful ? .forceful : .graceful, gracefulTerminationTimeout: gracefulTimeout),
                as: LcmOpOcc.self)
            try await finishOperation(client, accepted, noWait: noWait, timeout: timeout, connection: connection)
        }
    }

    struct Ops: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List lifecycle operation occurrences (of one instance if given).")
        @Argument(help: "VNF instance id.") var id: String?
        @OptionGroup var connection: FrameworkConnectionOptions

        func run() async throws {
            var operations = try await connection.client().call(.GET, "/vnflcm/v1/vnf_lcm_op_occs", as: [LcmOpOcc].self)
            if let id { operations = operations.filter { $0.vnfInstanceID == id } }
            if connection.json { return try printJSON(operations) }
            printOperations(operations)
        }
    }
}
