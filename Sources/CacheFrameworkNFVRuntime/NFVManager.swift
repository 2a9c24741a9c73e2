// The NFV manager service: runs `NFVStateMachine` against the shared backend and the NFV store. Like the cache
// driver, everything the machine sees goes through one input stream (offers and updates handed over by
// `NFVOfferRouter`, ticks, user operations), so `.persist` is always durable before the accept or kill after it.
// With the framework's authority, every VNFC gets an identity (role vnf, node id = task id) just before it is
// launched, and the identity is revoked when the task is killed (terminate, scale in, heal) or ends: the authority
// re-signs `revoked.list`, which every VNF process with secured links watches.
// With a links directory, each instance's external links, and the internal links its VNFCs reach, are kept as files
// (`<dir>/<instance>/<link>`, endpoints comma-separated) that its processes can follow (`VNF_LINKS_DIR`); a rolling
// update rewrites the file of every link that led to a replaced VNFC (`.rebind`), a network service deployment the
// file of each link it binds late, and a (re)start rewrites them all from the store.

public import CacheFramework
public import CacheFrameworkNFV
public import CacheFrameworkRuntime
import Foundation
public import Logging
import ReplicationSec
public import ServiceLifecycle
import Synchronization

/// The NFV manager.
public final class NFVManager: Service, Sendable {
    /// Settings.
    public struct Configuration: Sendable {
        /// The state machine's settings.
        public var machine = NFVStateMachine.Configuration()
        /// How often `.tick` is fed.
        public var tickInterval: Duration = .milliseconds(500)
        /// Where instances' external link files are kept (nil: none; a rolling update then cannot repoint running
        /// upstream processes).
        public var linksDirectory: String?
        /// The defaults.
        public init() {}
    }

    /// A user operation.
    public enum Operation: Sendable {
        case instantiate(vnfd: VNFDescriptor, name: String, flavour: String?, level: String?, extLinks: [String: [String]])
        case create(vnfd: VNFDescriptor, name: String)
        /// Instantiates a created instance; `unboundLinks` are bound later with `bindExtLink`.
        case instantiateExisting(String, flavour: String?, level: String?, extLinks: [String: [String]], unboundLinks: Set<String> = [])
        /// Binds an external link of an instantiated instance to endpoints (its processes follow the link file).
        case bindExtLink(String, link: String, endpoints: [String])
        case scale(String, aspect: String, type: ScaleType, steps: Int)
        case scaleToLevel(String, level: String)
        case heal(String, vnfcs: [String])
        case operate(String, OperationalState)
        case terminate(String, TerminationType, gracefulTimeout: Double?)
        /// Rolling update to a new version of the instance's descriptor (SOL003 change current VNF package).
        case changeVNFPackage(String, vnfd: VNFDescriptor)
        /// A one-step scale the metrics collector decided (an automatic occurrence with its cause).
        case autoScale(String, aspect: String, type: ScaleType, cause: String)
        case delete(String)
        /// Sets how a NOT_INSTANTIATED instance's links are secured (see `VNFLinkSecurity`).
        case setLinkSecurity(String, VNFLinkSecurity?)
        case retry(String)
        case rollback(String)
        case fail(String)
    }

    /// What an accepted operation created.
    public struct Accepted: Sendable {
        /// The instance.
        public var instanceID: String
        /// The occurrence (nil for delete/retry/rollback/fail).
        public var operationID: String?
    }

    enum Input: Sendable {
        case offers([Offer], CheckedContinuation<[Offer], Never>)
        case update(TaskStatus)
        case subscribed
        case tick
        case healthFailed(TaskID, CheckedContinuation<Bool, Never>)
        case operation(Operation, CheckedContinuation<Accepted, any Error>)
    }

    struct View: Sendable {
        var instances: [String: VNFInstance] = [:]
        var operations: [String: LcmOpOcc] = [:]
        var shortfalls: [String: String] = [:]
        var pending = false
    }

    private let backend: any SchedulerBackend
    private let store: any NFVStore
    private let clock: any FrameworkClock
    private let configuration: Configuration
    private let logger: Logger
    private let authority: FrameworkAuthority?
    private let inputs: AsyncStream<Input>
    private let continuation: AsyncStream<Input>.Continuation
    private let view = Mutex(View())

    /// Whether instances' link files are kept, so running processes can follow a link that is bound or moved later.
    public var keepsLinkFiles: Bool { configuration.linksDirectory != nil }

    /// Creates a manager acting on `backend` (the real one, not the router).
    public init(
        backend: any SchedulerBackend, store: any NFVStore, clock: any FrameworkClock = WallClock(),
        configuration: Configuration = Configuration(), logger: Logger = Logger(label: "cache-framework.nfv"),
        authority: FrameworkAuthority? = nil
    ) {
        self.authority = authority
        self.backend = backend
        self.store = store
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
        (inputs, continuation) = AsyncStream.makeStream(of: Input.self)
    }

    public func run() async throws {
        var machine = NFVStateMachine(restoring: try await store.load(), configuration: configuration.machine)
        publish(machine)
        for instance in machine.instances.values.sorted(by: { $0.id < $1.id }) { writeLinkFiles(of: instance) }
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    while !Task.isCancelled {
                        do { try await self.clock.sleep(for: self.configuration.tickInterval) } catch { return }
                        self.continuation.yield(.tick)
                    }
                }
                for await input in self.inputs {
                    let now = self.clock.now()
                    switch input {
                    case .offers(let offers, let reply):
                        let (actions, leftover) = machine.handleOffers(offers, now: now)
                        self.publish(machine)  // launches write the instances' link files from the view
                        await self.execute(actions, group: &group)
                        reply.resume(returning: leftover)
                    case .update(let status):
                        if status.state.isTerminal { self.revoke(status.taskID) }
                        await self.execute(machine.handle(.update(status, now: now)), group: &group)
                    case .subscribed:
                        await self.execute(machine.start(), group: &group)
                    case .tick:
                        await self.execute(machine.handle(.tick(now: now)), group: &group)
                    case .healthFailed(let taskID, let reply):
                        let actions = machine.handle(.healthFailed(taskID, now: now))
                        await self.execute(actions, group: &group)
                        reply.resume(returning: !actions.isEmpty)
                    case .operation(let operation, let reply):
                        do {
                            let (accepted, actions) = try self.apply(operation, to: &machine, now: now)
                            await self.execute(actions, group: &group)
                            self.publish(machine)
                            reply.resume(returning: accepted)
                        } catch {
                            reply.resume(throwing: error)
                        }
                    }
                    self.publish(machine)
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
    }

    // MARK: called by the router

    /// Takes what NFV needs from `offers`; returns the rest (for the cache scheduler).
    func offers(_ offers: [Offer]) async -> [Offer] {
        await withCheckedContinuation { reply in
            if case .terminated = continuation.yield(.offers(offers, reply)) { reply.resume(returning: offers) }
        }
    }

    /// A VNF task's update.
    func update(_ status: TaskStatus) { continuation.yield(.update(status)) }

    /// The backend (re)subscribed: reconcile the recorded VNF tasks.
    func subscribed() { continuation.yield(.subscribed) }

    /// A VNFC failed its health check `failureThreshold` times in a row (the health monitor): starts an automatic
    /// HEAL; returns false when none started (another operation runs on the instance, or the task is gone).
    public func healthFailed(_ taskID: TaskID) async -> Bool {
        await withCheckedContinuation { reply in
            if case .terminated = continuation.yield(.healthFailed(taskID, reply)) { reply.resume(returning: false) }
        }
    }

    /// Whether VNFCs wait for offers (the router keeps offers flowing while they do).
    var hasPendingLaunches: Bool { view.withLock { $0.pending } }

    // MARK: user operations

    /// Submits an operation; returns once it is recorded.
    @discardableResult
    public func submit(_ operation: Operation) async throws -> Accepted {
        try await withCheckedThrowingContinuation { reply in
            if case .terminated = continuation.yield(.operation(operation, reply)) {
                reply.resume(throwing: NFVError.invalidRequest("the NFV manager is not running"))
            }
        }
    }

    private func apply(_ operation: Operation, to machine: inout NFVStateMachine, now: SchedulerTime) throws -> (Accepted, [NFVAction]) {
        switch operation {
        case .instantiate(let vnfd, let name, let flavour, let level, let links):
            let result = try machine.instantiate(vnfd: vnfd, name: name, flavour: flavour, level: level, extLinks: links, now: now)
            return (Accepted(instanceID: result.instanceID, operationID: result.operationID), result.actions)
        case .create(let vnfd, let name):
            let result = machine.create(vnfd: vnfd, name: name)
            return (Accepted(instanceID: result.instanceID, operationID: nil), result.actions)
        case .instantiateExisting(let id, let flavour, let level, let links, let unbound):
            let result = try machine.instantiate(id, flavour: flavour, level: level, extLinks: links, unboundLinks: unbound, now: now)
            return (Accepted(instanceID: id, operationID: result.operationID), result.actions)
        case .bindExtLink(let id, let link, let endpoints):
            return (Accepted(instanceID: id, operationID: nil), try machine.bindExtLink(id, link: link, endpoints: endpoints))
        case .scale(let id, let aspect, let type, let steps):
            let result = try machine.scale(id, aspect: aspect, type: type, steps: steps, now: now)
            return (Accepted(instanceID: id, operationID: result.operationID), result.actions)
        case .scaleToLevel(let id, let level):
            let result = try machine.scaleToLevel(id, level: level, now: now)
            return (Accepted(instanceID: id, operationID: result.operationID), result.actions)
        case .heal(let id, let vnfcs):
            let result = try machine.heal(id, vnfcIDs: vnfcs, now: now)
            return (Accepted(instanceID: id, operationID: result.operationID), result.actions)
        case .operate(let id, let state):
            let result = try machine.operate(id, to: state, now: now)
            return (Accepted(instanceID: id, operationID: result.operationID), result.actions)
        case .terminate(let id, let type, let timeout):
            let result = try machine.terminate(id, type: type, gracefulTimeoutSeconds: timeout, now: now)
            return (Accepted(instanceID: id, operationID: result.operationID), result.actions)
        case .changeVNFPackage(let id, let vnfd):
            let result = try machine.changeVNFPackage(id, vnfd: vnfd, now: now)
            return (Accepted(instanceID: id, operationID: result.operationID), result.actions)
        case .autoScale(let id, let aspect, let type, let cause):
            let result = try machine.scale(id, aspect: aspect, type: type, automatic: true, cause: cause, now: now)
            return (Accepted(instanceID: id, operationID: result.operationID), result.actions)
        case .delete(let id):
            return (Accepted(instanceID: id, operationID: nil), try machine.delete(id))
        case .setLinkSecurity(let id, let security):
            return (Accepted(instanceID: id, operationID: nil), try machine.setLinkSecurity(id, security))
        case .retry(let op):
            let actions = try machine.retry(op, now: now)
            return (Accepted(instanceID: machine.operations[op]!.vnfInstanceID, operationID: op), actions)
        case .rollback(let op):
            let actions = try machine.rollback(op, now: now)
            return (Accepted(instanceID: machine.operations[op]!.vnfInstanceID, operationID: op), actions)
        case .fail(let op):
            let actions = try machine.fail(op, now: now)
            return (Accepted(instanceID: machine.operations[op]!.vnfInstanceID, operationID: op), actions)
        }
    }

    // MARK: actions

    private func execute(_ actions: [NFVAction], group: inout ThrowingDiscardingTaskGroup<any Error>) async {
        for action in actions {
            do {
                switch action {
                case .persist(let batch):
                    try await store.apply(batch)
                case .accept(let offerIDs, let operations, let filters):
                    for case .launch(let infos) in operations {
                        logger.info("nfv: launching \(infos.map(\.taskID.value).joined(separator: ", "))")
                    }
                    try await backend.accept(
                        offerIDs: offerIDs, operations: operations.map { withLinks(withIdentities($0)) }, filters: filters)
                case .kill(let taskID, let agentID):
                    logger.info("nfv: killing \(taskID)")
                    revoke(taskID)
                    try await backend.kill(taskID: taskID, agentID: agentID)
                case .acknowledge(let agentID, let taskID, let uuid):
                    try await backend.acknowledge(agentID: agentID, taskID: taskID, uuid: uuid)
                case .reconcile(let tasks):
                    try await backend.reconcile(tasks)
                case .revive:
                    try await backend.revive()
                case .rebind(let instanceID, let link, let endpoints):
                    logger.info("nfv: \(instanceID) link \(link) now leads to \(endpoints.joined(separator: ","))")
                    writeLinkFile(instanceID, link: link, endpoints: endpoints)
                case .runHook(let instanceID, let event, let command):
                    let logger = logger
                    group.addTask { NFVHooks.run(command, instanceID: instanceID, event: event, logger: logger) }
                }
            } catch {
                // A failed persist must not be followed by the actions after it.
                logger.error("nfv: \(action) failed: \(error)")
                if case .persist = action { return }
            }
        }
    }

    // MARK: identities

    /// Issues each launched VNFC its identity and points its process at it (`VNFTaskTemplate.Environment`). A VNFC
    /// whose identity cannot be written launches without it; if its links are secured it fails to start and is healed.
    private func withIdentities(_ operation: OfferOperation) -> OfferOperation {
        guard let authority, case .launch(let infos) = operation else { return operation }
        return .launch(
            infos.map { info in
                var info = info
                do {
                    let credentials = try authority.issueVNF(taskID: info.taskID)
                    info.command.environment[VNFTaskTemplate.Environment.identity] = credentials.identityPath
                    info.command.environment[VNFTaskTemplate.Environment.authority] = credentials.authorityPath
                    info.command.environment[VNFTaskTemplate.Environment.revocationList] = authority.revocationListPath
                } catch {
                    logger.error("nfv: \(error)")
                }
                return info
            })
    }

    // MARK: link files

    /// Points each launched VNFC at its instance's link files (written now from the instance's current links).
    private func withLinks(_ operation: OfferOperation) -> OfferOperation {
        guard let directory = configuration.linksDirectory, case .launch(let infos) = operation else { return operation }
        return .launch(
            infos.map { info in
                guard let instanceID = info.labels[VNFTaskTemplate.Label.instance] else { return info }
                var info = info
                if let instance = instance(instanceID) { writeLinkFiles(of: instance) }
                info.command.environment[VNFTaskTemplate.Environment.linksDirectory] = "\(directory)/\(instanceID)"
                return info
            })
    }

    /// Writes the files of the instance's external links and of its internal links its VNFCs reach.
    private func writeLinkFiles(of instance: VNFInstance) {
        for (link, endpoints) in instance.extLinks { writeLinkFile(instance.id, link: link, endpoints: endpoints) }
        for link in instance.vnfd.internalVirtualLinks {
            let endpoints = instance.internalLinkEndpoints(link.id)
            if !endpoints.isEmpty { writeLinkFile(instance.id, link: link.id, endpoints: endpoints) }
        }
    }

    /// Atomically replaces `<links directory>/<instance>/<link>` with the endpoints, comma-separated.
    private func writeLinkFile(_ instanceID: String, link: String, endpoints: [String]) {
        guard let directory = configuration.linksDirectory else { return }
        let folder = "\(directory)/\(instanceID)"
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data((endpoints.joined(separator: ",") + "\n").utf8).write(to: URL(fileURLWithPath: "\(folder)/\(link)"), options: .atomic)
        } catch {
            logger.error("nfv: cannot write the link file of \(instanceID)/\(link) in \(directory): \(error)")
        }
    }

    /// Revokes a VNFC's identity (a no-op for one never issued or already revoked).
    private func revoke(_ taskID: TaskID) {
        guard let authority, taskID.value.hasPrefix(VNFTaskTemplate.taskPrefix) else { return }
        do {
            if let list = try authority.revoke(nodeID: taskID.value) {
                logger.info("nfv: revoked the identity of \(taskID) (revocation list \(list.sequence))")
            }
        } catch {
            logger.error("nfv: \(error)")
        }
    }

    // MARK: views

    private func publish(_ machine: NFVStateMachine) {
        view.withLock {
            $0.instances = machine.instances
            $0.operations = machine.operations
            $0.shortfalls = machine.shortfalls
            $0.pending = machine.hasPendingLaunches
        }
    }

    /// Every VNF instance.
    public func instances() -> [VNFInstance] { view.withLock { $0.instances.values.sorted { $0.id < $1.id } } }
    /// One instance.
    public func instance(_ id: String) -> VNFInstance? { view.withLock { $0.instances[id] } }
    /// Every operation occurrence, oldest first.
    public func operations() -> [LcmOpOcc] {
        view.withLock { $0.operations.values.sorted { ($0.startTime, $0.id) < ($1.startTime, $1.id) } }
    }
    /// One occurrence.
    public func operation(_ id: String) -> LcmOpOcc? { view.withLock { $0.operations[id] } }
    /// Why VNFCs are not placed.
    public func shortfalls() -> [String: String] { view.withLock { $0.shortfalls } }
}

/// Runs lifecycle hooks (fire and forget; their outcome is logged).
enum NFVHooks {
    static func run(_ command: [String], instanceID: String, event: LifecycleEvent, logger: Logger) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        var environment = ProcessInfo.processInfo.environment
        environment["VNF_INSTANCE_ID"] = instanceID
        environment["VNF_LCM_EVENT"] = event.rawValue
        process.environment = environment
        do {
            try process.run()
            process.waitUntilExit()
            logger.info("nfv: hook \(event.rawValue) of \(instanceID) exited \(process.terminationStatus)")
        } catch {
            logger.warning("nfv: hook \(event.rawValue) of \(instanceID) could not start: \(error)")
        }
    }
}
