// The VNF lifecycle manager as a pure value: user operations and scheduler events in, actions out (persist, accept,
// kill, reconcile, revive, run a hook). It never reads a clock: every call carries a `SchedulerTime`.
//
// Model. Each VNF instance has a desired shape (instantiated or not, started or stopped, level, scale levels) from
// which the number of VNFCs per VDU follows. Operations change the desired shape and record an operation occurrence
// (STARTING); the next event moves it to PROCESSING, and `converge` then works towards the shape: VNFCs that should
// not exist are killed and forgotten once their task ended, missing ones are placed from the next offers (through
// `VNFPlacement`, i.e. the scheduler core's `Placement`). An occurrence COMPLETES when every desired VNFC runs and no
// extra one is left; past its deadline it becomes FAILED_TEMP (retried automatically `automaticRetries` times), from
// where the operator retries, rolls back (the shape before the operation is restored: ROLLING_BACK → ROLLED_BACK) or
// fails it (FAILED). A VNFC whose task ends, or fails its health check, while nothing else runs on the instance starts
// an automatic HEAL. One occurrence at a time per instance (SOL003's 409 conflict otherwise).
//
// Rolling update (CHANGE_VNFPKG). The instance takes the new descriptor at once; its VNFCs still run the old version
// (each record keeps the version its task runs) and are replaced one at a time: a successor VNFC (`<id>.next`,
// `replaces` = the old id) is placed and launched next to the old one; once it runs (the backend reports RUNNING after
// its health check passes), every other instance whose external links lead to the old VNFC's endpoints is pointed at
// the successor's (`.rebind`), as is every internal link (`${vl:…}`) of the instance that leads to it, and after `repointGraceSeconds` the old task is killed; when it has ended the successor
// takes its id. A failed update rolls back (automatically unless configured otherwise) the same way, to the old
// descriptor.
//
// Durability. Every change is written as an `NFVBatch` (`.persist`) before the actions after it: a launch is recorded
// before its accept, so a restarted framework reconciles (`start`) instead of launching twice, and operation
// occurrences survive to complete or roll back.

public import CacheFramework

/// An event for the NFV state machine.
public enum NFVEvent: Hashable, Sendable {
    /// Offers (the router hands them to NFV before the cache scheduler).
    case offers([Offer], now: SchedulerTime)
    /// A status update of a VNF task.
    case update(TaskStatus, now: SchedulerTime)
    /// A VNFC failed its health check (after the descriptor's failure threshold).
    case healthFailed(TaskID, now: SchedulerTime)
    /// Time passed.
    case tick(now: SchedulerTime)
}

/// What the runtime must do, in order; a `.persist` is durable before the following actions.
public enum NFVAction: Hashable, Sendable {
    /// Durably apply a batch.
    case persist(NFVBatch)
    /// ACCEPT offers of one agent with launches.
    case accept(offerIDs: [OfferID], operations: [OfferOperation], filters: Filters)
    /// KILL a task.
    case kill(taskID: TaskID, agentID: AgentID?)
    /// ACKNOWLEDGE an update.
    case acknowledge(agentID: AgentID, taskID: TaskID, uuid: String)
    /// RECONCILE these tasks.
    case reconcile([ReconcileTask])
    /// REVIVE offers (new VNFCs to place).
    case revive
    /// Run a lifecycle hook of an instance.
    case runHook(instanceID: String, event: LifecycleEvent, command: [String])
    /// An instance's external link, or an internal link its VNFCs reach through `${vl:LINK}`, now leads to `endpoints`
    /// (a rolling update moved what it led to, or the link was bound late): tell its running processes (the runtime
    /// rewrites the link's file in the instance's links directory).
    case rebind(instanceID: String, link: String, endpoints: [String])
}

/// Why an NFV request was refused.
public enum NFVError: Error, Hashable, Sendable, CustomStringConvertible {
    case unknownInstance(String)
    case unknownOperation(String)
    /// Another operation occurrence of the instance is not final yet (SOL003: 409).
    case conflict(instanceID: String, operationID: String)
    /// The instance is not in the state the operation needs (SOL003: 409).
    case wrongState(instanceID: String, String)
    /// The request names something the descriptor lacks, or a value out of range (SOL003: 400/422).
    case invalidRequest(String)

    public var description: String {
        switch self {
        case .unknownInstance(let id): "no VNF instance '\(id)'"
        case .unknownOperation(let id): "no operation occurrence '\(id)'"
        case .conflict(let instance, let operation):
            "VNF instance '\(instance)' has operation \(operation) in progress: wait, or retry/rollback/fail it first"
        case .wrongState(let instance, let why): "VNF instance '\(instance)': \(why)"
        case .invalidRequest(let why): why
        }
    }
}

/// Scale direction (SOL003 `ScaleVnfRequest.type`).
public enum ScaleType: String, Hashable, Codable, Sendable {
    case scaleOut = "SCALE_OUT"
    case scaleIn = "SCALE_IN"
}

/// The NFV lifecycle state machine.
public struct NFVStateMachine: Sendable {
    /// Tunables.
    public struct Configuration: Sendable {
        /// Seconds an occurrence may stay PROCESSING before FAILED_TEMP.
        public var operationTimeoutSeconds: Double = 60
        /// Automatic retries from FAILED_TEMP before waiting for the operator.
        public var automaticRetries = 0
        /// Seconds a heal waits for the VNFC's old agent and ports before placing it elsewhere.
        public var pinWaitSeconds: Double = 10
        /// Default seconds a graceful terminate waits for tasks to end.
        public var gracefulTimeoutSeconds: Double = 10
        /// Start a HEAL when a VNFC's task ends unasked.
        public var autoHeal = true
        /// Tasks of one VNFC in a row that may end before running (a missing executable, a port in use, a crash at
        /// start) before its operation fails at once instead of relaunching it until the operation's deadline.
        public var maximumStartFailures = 3
        /// Placement strategy.
        public var strategy: PlacementStrategy = .spread
        /// Seconds a rolling update waits between pointing upstream VNFs at a new VNFC and killing the old one (their
        /// processes pick up the new endpoints meanwhile).
        public var repointGraceSeconds: Double = 2
        /// A rolling update that reaches FAILED_TEMP rolls back at once instead of waiting for the operator.
        public var rollBackFailedUpdates = true
        /// The defaults.
        public init() {}
    }

    public let configuration: Configuration
    /// Instances by id.
    public private(set) var instances: [String: VNFInstance]
    /// Occurrences by id.
    public private(set) var operations: [String: LcmOpOcc]
    /// Why VNFCs were not placed in the last round (`instance/vnfc` → reason).
    public private(set) var shortfalls: [String: String] = [:]
    private var nextNumber: UInt64
    private var nextBatchID: UInt64 = 1
    private var dirtyInstances: Set<String> = []
    private var dirtyOperations: Set<String> = []
    private var killsSent: Set<TaskID> = []

    /// Creates the machine from a snapshot (empty for a first start).
    public init(restoring snapshot: NFVSnapshot = NFVSnapshot(), configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.instances = snapshot.instances
        self.operations = snapshot.operations
        self.nextNumber = snapshot.nextNumber
    }

    /// The occurrence of `instanceID` that is not final, if any.
    public func activeOperation(of instanceID: String) -> LcmOpOcc? {
        operations.values.first { $0.vnfInstanceID == instanceID && !$0.state.isFinal }
    }

    /// Every recorded VNF task, for reconciliation after a restart.
    public var recordedTasks: [ReconcileTask] {
        instances.values.flatMap { instance in
            instance.vnfcs.values.compactMap { vnfc in vnfc.taskID.map { ReconcileTask(taskID: $0, agentID: vnfc.agentID) } }
        }.sorted { $0.taskID < $1.taskID }
    }

    /// Whether VNFCs wait for offers.
    public var hasPendingLaunches: Bool { !pendingVNFCs.isEmpty }

    /// After a (re)start: reconcile every recorded task (unknown ones come back LOST and are replaced).
    public mutating func start() -> [NFVAction] {
        let tasks = recordedTasks
        return tasks.isEmpty ? [] : [.reconcile(tasks)]
    }

    // MARK: operations

    /// Creates a NOT_INSTANTIATED instance of `vnfd` (SOL003 `POST /vnf_instances`).
    public mutating func create(vnfd: VNFDescriptor, name: String) -> (instanceID: String, actions: [NFVAction]) {
        let id = "\(vnfd.id)-\(takeNumber())"
        instances[id] = VNFInstance(
            id: id, name: name, vnfd: vnfd, flavourID: vnfd.deploymentFlavours[0].id,
            levelID: vnfd.deploymentFlavours[0].defaultLevel, scaleLevels: [:], extLinks: [:],
            instantiationState: .notInstantiated, operationalState: .started, vnfcs: [:])
        dirtyInstances.insert(id)
        return (id, flush())
    }

    /// Sets how a NOT_INSTANTIATED instance's traffic links are secured (SOL003 "modify VNF information"; a network
    /// service deployment calls it between create and instantiate, once the ids of the VNFs around it are known).
    public mutating func setLinkSecurity(_ id: String, _ security: VNFLinkSecurity?) throws(NFVError) -> [NFVAction] {
        guard var instance = instances[id] else { throw .unknownInstance(id) }
        guard instance.instantiationState == .notInstantiated else {
            throw .wrongState(instanceID: id, "link security is set before instantiation")
        }
        instance.linkSecurity = security
        instances[id] = instance
        dirtyInstances.insert(id)
        return flush()
    }

    /// Creates an instance of `vnfd` and instantiates it to `flavour` and `level`, binding external links.
    public mutating func instantiate(
        vnfd: VNFDescriptor, name: String, flavour flavourID: String? = nil, level levelID: String? = nil,
        extLinks: [String: [String]] = [:], now: SchedulerTime
    ) throws(NFVError) -> (instanceID: String, operationID: String, actions: [NFVAction]) {
        var copy = self
        let created = copy.create(vnfd: vnfd, name: name)
        let result = try copy.instantiate(created.instanceID, flavour: flavourID, level: levelID, extLinks: extLinks, now: now)
        self = copy
        return (created.instanceID, result.operationID, created.actions + result.actions)
    }

    /// Instantiates a NOT_INSTANTIATED instance to `flavour` and `level`, binding external links to endpoints.
    ///
    /// - Parameter unboundLinks: outbound external links whose endpoints are not known yet (a network service
    ///   instantiates its VNFs at once; the next VNF's ports are known once it is placed). The VNFCs launch with those
    ///   links empty (`${ext:LINK}` is ""), and `bindExtLink` binds them later: their processes must follow the link's
    ///   file (`vnf-sample --next-link`).
    public mutating func instantiate(
        _ id: String, flavour flavourID: String? = nil, level levelID: String? = nil, extLinks: [String: [String]] = [:],
        unboundLinks: Set<String> = [], now: SchedulerTime
    ) throws(NFVError) -> (operationID: String, actions: [NFVAction]) {
        guard var instance = instances[id] else { throw .unknownInstance(id) }
        if let active = activeOperation(of: id) { throw .conflict(instanceID: id, operationID: active.id) }
        guard instance.instantiationState == .notInstantiated else { throw .wrongState(instanceID: id, "it is instantiated already") }
        let vnfd = instance.vnfd
        let flavourID = flavourID ?? vnfd.deploymentFlavours[0].id
        guard let flavour = vnfd.flavour(flavourID) else { throw .invalidRequest("VNFD '\(vnfd.id)' has no flavour '\(flavourID)'") }
        let levelID = levelID ?? flavour.defaultLevel
        guard flavour.level(levelID) != nil else { throw .invalidRequest("flavour '\(flavourID)' has no instantiation level '\(levelID)'") }
        for link in vnfd.externalVirtualLinks where vnfd.connectionPoints.contains(where: { $0.virtualLink == link.id && $0.direction == .outbound }) {
            if unboundLinks.contains(link.id) { continue }
            guard let endpoints = extLinks[link.id], !endpoints.isEmpty else {
                throw .invalidRequest("external virtual link '\(link.id)' needs endpoints (host:port) at instantiation")
            }
        }
        for link in Set(extLinks.keys).union(unboundLinks) where !vnfd.externalVirtualLinks.contains(where: { $0.id == link }) {
            throw .invalidRequest("VNFD '\(vnfd.id)' has no external virtual link '\(link)'")
        }
        let point = rollbackPoint(instance)
        instance.flavourID = flavourID
        instance.levelID = levelID
        instance.scaleLevels = [:]
        instance.extLinks = extLinks
        instance.operationalState = .started
        instance.instantiationState = .instantiated
        instances[id] = instance
        dirtyInstances.insert(id)
        let operation = begin(.instantiate, on: id, point: point, parameters: ["flavour": flavourID, "level": levelID], now: now)
        return (operation, flush() + hooks(id, .instantiateStart))
    }

    /// Binds (or rebinds) external link `link` of an instantiated or instantiating instance to `endpoints` (SOL003
    /// "change external VNF connectivity", without an occurrence): recorded, then `.rebind` tells the running
    /// processes. A network service deployment calls it once the next VNF's ports are known.
    public mutating func bindExtLink(_ id: String, link: String, endpoints: [String]) throws(NFVError) -> [NFVAction] {
        guard var instance = instances[id] else { throw .unknownInstance(id) }
        guard instance.vnfd.externalVirtualLinks.contains(where: { $0.id == link }) else {
            throw .invalidRequest("VNFD '\(instance.vnfd.id)' has no external virtual link '\(link)'")
        }
        guard instance.instantiationState == .instantiated else {
            throw .wrongState(instanceID: id, "instantiate it (with the link unbound) before binding link '\(link)'")
        }
        guard !endpoints.isEmpty else { throw .invalidRequest("binding link '\(link)' of '\(id)' needs endpoints (host:port)") }
        guard instance.extLinks[link] != endpoints else { return [] }
        instance.extLinks[link] = endpoints
        instances[id] = instance
        dirtyInstances.insert(id)
        return flush() + [.rebind(instanceID: id, link: link, endpoints: endpoints)]
    }

    /// Scales `aspect` out or in by `steps`; `automatic` marks an auto-scale (with its `cause`).
    public mutating func scale(
        _ instanceID: String, aspect aspectID: String, type: ScaleType, steps: Int = 1, automatic: Bool = false,
        cause: String? = nil, now: SchedulerTime
    ) throws(NFVError) -> (operationID: String, actions: [NFVAction]) {
        var instance = try instantiated(instanceID)
        guard let aspect = instance.flavour.aspect(aspectID) else {
            throw .invalidRequest("flavour '\(instance.flavourID)' has no scaling aspect '\(aspectID)'")
        }
        guard steps >= 1 else { throw .invalidRequest("steps must be at least 1") }
        let current = instance.scaleLevels[aspectID] ?? 0
        let target = type == .scaleOut ? current + steps : current - steps
        guard (0...aspect.maxScaleLevel).contains(target) else {
            throw .invalidRequest("aspect '\(aspectID)' is at level \(current); \(type.rawValue) by \(steps) leaves 0…\(aspect.maxScaleLevel)")
        }
        let point = rollbackPoint(instance)
        instance.scaleLevels[aspectID] = target
        instances[instanceID] = instance
        dirtyInstances.insert(instanceID)
        var parameters = ["aspect": aspectID, "type": type.rawValue, "steps": "\(steps)", "level": "\(target)"]
        if let cause { parameters["cause"] = cause }
        let operation = begin(.scale, on: instanceID, point: point, parameters: parameters, now: now, automatic: automatic)
        return (operation, flush() + hooks(instanceID, .scaleStart))
    }

    /// Scales to instantiation level `levelID` (aspects back to 0).
    public mutating func scaleToLevel(_ instanceID: String, level levelID: String, now: SchedulerTime) throws(NFVError) -> (operationID: String, actions: [NFVAction]) {
        var instance = try instantiated(instanceID)
        guard instance.flavour.level(levelID) != nil else { throw .invalidRequest("flavour '\(instance.flavourID)' has no level '\(levelID)'") }
        let point = rollbackPoint(instance)
        instance.levelID = levelID
        instance.scaleLevels = [:]
        instances[instanceID] = instance
        dirtyInstances.insert(instanceID)
        let operation = begin(.scaleToLevel, on: instanceID, point: point, parameters: ["level": levelID], now: now)
        return (operation, flush() + hooks(instanceID, .scaleStart))
    }

    /// Heals (replaces) the named VNFCs, or every VNFC when `vnfcIDs` is empty.
    public mutating func heal(
        _ instanceID: String, vnfcIDs: [String] = [], cause: String? = nil, automatic: Bool = false, now: SchedulerTime
    ) throws(NFVError) -> (operationID: String, actions: [NFVAction]) {
        let instance = try instantiated(instanceID)
        let targets = vnfcIDs.isEmpty ? Array(instance.vnfcs.keys) : vnfcIDs
        var parameters: [String: String] = [:]
        for id in targets {
            guard let vnfc = instance.vnfcs[id] else { throw .invalidRequest("VNF instance '\(instanceID)' has no VNFC '\(id)'") }
            parameters["vnfc.\(id)"] = "\(vnfc.incarnation)"
        }
        if let cause { parameters["cause"] = cause }
        let operation = begin(.heal, on: instanceID, point: rollbackPoint(instance), parameters: parameters, now: now, automatic: automatic)
        var actions = flush() + hooks(instanceID, .healStart)
        for id in targets {
            if let vnfc = instance.vnfcs[id], let taskID = vnfc.taskID, !(vnfc.state?.isTerminal ?? false) {
                killsSent.insert(taskID)
                actions.append(.kill(taskID: taskID, agentID: vnfc.agentID))
            }
        }
        return (operation, actions)
    }

    /// Rolling update to `vnfd` (SOL003 "change current VNF package"): a new version of the same VNF whose VDUs keep
    /// their ids, ports and connection points (command, arguments, software version, resources and health checks may
    /// change). VNFCs are replaced one at a time, each new one running before the old one is killed.
    public mutating func changeVNFPackage(
        _ instanceID: String, vnfd: VNFDescriptor, now: SchedulerTime
    ) throws(NFVError) -> (operationID: String, actions: [NFVAction]) {
        var instance = try instantiated(instanceID)
        if let why = Self.rollingUpdateProblem(from: instance, to: vnfd) { throw .invalidRequest(why) }
        var point = rollbackPoint(instance)
        point.vnfd = instance.vnfd
        for (id, vnfc) in instance.vnfcs where vnfc.vnfdVersion == nil { instance.vnfcs[id]?.vnfdVersion = instance.vnfd.version }
        instance.vnfd = vnfd
        instances[instanceID] = instance
        dirtyInstances.insert(instanceID)
        let operation = begin(
            .changeVnfpkg, on: instanceID, point: point,
            parameters: ["vnfdId": vnfd.id, "fromVersion": point.vnfd?.version ?? "", "toVersion": vnfd.version], now: now)
        return (operation, flush())
    }

    /// Why `vnfd` cannot replace `instance`'s descriptor in a rolling update (nil: it can).
    static func rollingUpdateProblem(from instance: VNFInstance, to vnfd: VNFDescriptor) -> String? {
        let old = instance.vnfd
        let fix = "; a rolling update keeps VDUs, ports, connection points, links and flavours (deploy a new instance instead)"
        guard vnfd.version != old.version else {
            return "VNF instance '\(instance.id)' already runs version \(old.version) of '\(old.id)'; give the new descriptor a new version"
        }
        guard vnfd.vdus.map(\.id) == old.vdus.map(\.id) else {
            return "VDUs \(vnfd.vdus.map(\.id)) differ from the running \(old.vdus.map(\.id))" + fix
        }
        for (new, current) in zip(vnfd.vdus, old.vdus) where new.ports != current.ports {
            return "VDU '\(new.id)' ports \(new.ports) differ from the running \(current.ports)" + fix
        }
        guard vnfd.connectionPoints == old.connectionPoints else { return "the connection points differ" + fix }
        guard vnfd.externalVirtualLinks.map(\.id) == old.externalVirtualLinks.map(\.id),
            vnfd.internalVirtualLinks.map(\.id) == old.internalVirtualLinks.map(\.id)
        else { return "the virtual links differ" + fix }
        guard let flavour = vnfd.flavour(instance.flavourID), flavour.level(instance.levelID) != nil else {
            return "the new descriptor lacks flavour '\(instance.flavourID)' with level '\(instance.levelID)'" + fix
        }
        for (aspect, level) in instance.scaleLevels where level > 0 && (flavour.aspect(aspect)?.maxScaleLevel ?? -1) < level {
            return "the new descriptor's flavour cannot hold aspect '\(aspect)' at level \(level)" + fix
        }
        return nil
    }

    /// Starts or stops the instance's VNFCs.
    public mutating func operate(_ instanceID: String, to state: OperationalState, now: SchedulerTime) throws(NFVError) -> (operationID: String, actions: [NFVAction]) {
        var instance = try instantiated(instanceID)
        guard instance.operationalState != state else { throw .wrongState(instanceID: instanceID, "it is \(state.rawValue) already") }
        let point = rollbackPoint(instance)
        instance.operationalState = state
        instances[instanceID] = instance
        dirtyInstances.insert(instanceID)
        let operation = begin(.operate, on: instanceID, point: point, parameters: ["changeStateTo": state.rawValue], now: now)
        return (operation, flush())
    }

    /// Terminates the instance: graceful (wait up to `gracefulTimeoutSeconds` for the tasks to end, then forget
    /// them) or forceful (forget them at once).
    public mutating func terminate(
        _ instanceID: String, type: TerminationType = .graceful, gracefulTimeoutSeconds: Double? = nil, now: SchedulerTime
    ) throws(NFVError) -> (operationID: String, actions: [NFVAction]) {
        var instance = try instantiated(instanceID)
        let point = rollbackPoint(instance)
        instance.instantiationState = .notInstantiated
        instances[instanceID] = instance
        dirtyInstances.insert(instanceID)
        let timeout = type == .forceful ? 0 : gracefulTimeoutSeconds ?? configuration.gracefulTimeoutSeconds
        let operation = begin(
            .terminate, on: instanceID, point: point, parameters: ["terminationType": type.rawValue], now: now, timeout: timeout)
        operations[operation]!.terminationType = type
        return (operation, flush() + hooks(instanceID, .terminateStart))
    }

    /// Forgets a terminated instance (SOL003 DELETE).
    public mutating func delete(_ instanceID: String) throws(NFVError) -> [NFVAction] {
        guard let instance = instances[instanceID] else { throw .unknownInstance(instanceID) }
        guard instance.instantiationState == .notInstantiated, instance.vnfcs.isEmpty else {
            throw .wrongState(instanceID: instanceID, "terminate it before deleting it")
        }
        if let active = activeOperation(of: instanceID) { throw .conflict(instanceID: instanceID, operationID: active.id) }
        instances[instanceID] = nil
        return [.persist(makeBatch([.deleteInstance(instanceID)]))]
    }

    /// Retries a FAILED_TEMP occurrence.
    public mutating func retry(_ operationID: String, now: SchedulerTime) throws(NFVError) -> [NFVAction] {
        var operation = try failedTemp(operationID)
        operation.retries += 1
        operation.error = nil
        if var instance = instances[operation.vnfInstanceID] {
            // A retry gives VNFCs that could not start a fresh set of attempts.
            for id in instance.vnfcs.keys where instance.vnfcs[id]?.startFailures != nil {
                instance.vnfcs[id]?.startFailures = nil
                instance.vnfcs[id]?.lastStartFailure = nil
            }
            instances[instance.id] = instance
            dirtyInstances.insert(instance.id)
        }
        enter(.processing, &operation, now: now)
        operation.deadline = now.adding(seconds: configuration.operationTimeoutSeconds)
        operations[operationID] = operation
        return flush() + [.revive]
    }

    /// Rolls a FAILED_TEMP occurrence back to the instance's shape before it.
    public mutating func rollback(_ operationID: String, now: SchedulerTime) throws(NFVError) -> [NFVAction] {
        var operation = try failedTemp(operationID)
        guard [.instantiate, .scale, .scaleToLevel, .operate, .changeVnfpkg].contains(operation.operation) else {
            throw .invalidRequest("\(operation.operation.rawValue) cannot be rolled back; retry or fail it")
        }
        beginRollback(&operation, now: now)
        operations[operationID] = operation
        return flush() + converge(now: now)
    }

    /// Restores the instance's shape before `operation` and moves it to ROLLING_BACK.
    private mutating func beginRollback(_ operation: inout LcmOpOcc, now: SchedulerTime) {
        var instance = instances[operation.vnfInstanceID]!
        let point = operation.rollbackPoint
        instance.instantiationState = point.instantiationState
        instance.operationalState = point.operationalState
        instance.levelID = point.levelID
        instance.scaleLevels = point.scaleLevels
        if let vnfd = point.vnfd { instance.vnfd = vnfd }
        instances[instance.id] = instance
        dirtyInstances.insert(instance.id)
        enter(.rollingBack, &operation, now: now)
        operation.deadline = now.adding(seconds: configuration.operationTimeoutSeconds)
    }

    /// Marks a FAILED_TEMP occurrence FAILED (the instance stays as it is).
    public mutating func fail(_ operationID: String, now: SchedulerTime) throws(NFVError) -> [NFVAction] {
        var operation = try failedTemp(operationID)
        enter(.failed, &operation, now: now)
        operations[operationID] = operation
        return flush()
    }

    // MARK: events

    /// Handles an event (use `handleOffers` for offers, which also returns the offers left for others).
    public mutating func handle(_ event: NFVEvent) -> [NFVAction] {
        switch event {
        case .offers(let offers, let now): return handleOffers(offers, now: now).actions
        case .update(let status, let now): return update(status, now: now)
        case .healthFailed(let taskID, let now):
            // An automatic HEAL of that VNFC, unless another operation runs on the instance (the health monitor reports
            // again after the next failures if it still fails then).
            guard configuration.autoHeal, let (instanceID, vnfcID) = locate(taskID),
                let vnfc = instances[instanceID]?.vnfcs[vnfcID], vnfc.replaces == nil, !killsSent.contains(taskID),
                activeOperation(of: instanceID) == nil,
                let (_, actions) = try? heal(
                    instanceID, vnfcIDs: [vnfcID], cause: "\(taskID) failed its health check", automatic: true, now: now)
            else { return [] }
            return actions + converge(now: now)
        case .tick(let now): return converge(now: now)
        }
    }

    /// Places pending VNFCs on `offers`; returns the actions and the offers NFV did not use.
    public mutating func handleOffers(_ offers: [Offer], now: SchedulerTime) -> (actions: [NFVAction], leftover: [Offer]) {
        var actions = converge(now: now)
        let pending = pendingVNFCs
        guard !pending.isEmpty, !offers.isEmpty else { return (actions, offers) }
        let result = VNFPlacement.place(
            pending, instances: instances, offers: offers, strategy: configuration.strategy, now: now,
            pinWaitSeconds: configuration.pinWaitSeconds)
        shortfalls = result.shortfalls
        var launches: [AgentID: (offers: [OfferID], tasks: [TaskInfo])] = [:]
        var order: [AgentID] = []
        for assignment in result.assignments {
            let instanceID = assignment.pending.instanceID
            var instance = instances[instanceID]!
            var vnfc = instance.vnfcs[assignment.pending.vnfc.id]!
            let vdu = instance.vnfd.vdu(vnfc.vdu)!
            let taskID = TaskID("\(VNFTaskTemplate.taskPrefix)\(instanceID).\(vnfc.id).\(takeNumber())")
            vnfc.taskID = taskID
            vnfc.agentID = assignment.agentID
            vnfc.hostname = assignment.hostname
            vnfc.failureDomain = assignment.failureDomain
            vnfc.ports = Dictionary(uniqueKeysWithValues: zip(vdu.ports, assignment.ports))
            vnfc.state = nil
            vnfc.endedAt = nil
            vnfc.incarnation += 1
            vnfc.vnfdVersion = instance.vnfd.version
            instance.vnfcs[vnfc.id] = vnfc
            instances[instanceID] = instance
            dirtyInstances.insert(instanceID)
            let info = VNFTaskTemplate.taskInfo(for: vnfc, of: instance, taskID: taskID, agentID: assignment.agentID, hostname: assignment.hostname)
            if launches[assignment.agentID] == nil {
                order.append(assignment.agentID)
                launches[assignment.agentID] = (assignment.offerIDs, [])
            }
            launches[assignment.agentID]!.tasks.append(info)
        }
        actions += flush()
        for agent in order {
            let launch = launches[agent]!
            actions.append(.accept(offerIDs: launch.offers, operations: [.launch(launch.tasks)], filters: Filters(refuseSeconds: 1)))
        }
        return (actions, offers.filter { !result.usedOfferIDs.contains($0.id) })
    }

    private mutating func update(_ status: TaskStatus, now: SchedulerTime) -> [NFVAction] {
        var actions: [NFVAction] = []
        if let uuid = status.uuid, let agent = status.agentID {
            actions.append(.acknowledge(agentID: agent, taskID: status.taskID, uuid: uuid))
        }
        guard let (instanceID, vnfcID) = locate(status.taskID) else {
            // A VNF task this machine does not know (launched before a crash and never recorded): stop it.
            if !status.state.isTerminal && status.taskID.value.hasPrefix(VNFTaskTemplate.taskPrefix) {
                actions.append(.kill(taskID: status.taskID, agentID: status.agentID))
            }
            return actions
        }
        var instance = instances[instanceID]!
        var vnfc = instance.vnfcs[vnfcID]!
        if status.state.needsReplacement {
            let asked = killsSent.remove(status.taskID) != nil
            if !asked && vnfc.state != .running {
                // Ended before it ran: count it, so a VNFC that cannot start is not relaunched without end.
                vnfc.startFailures = (vnfc.startFailures ?? 0) + 1
                vnfc.lastStartFailure = status.state.rawValue + (status.message.map { ": \($0)" } ?? "")
            } else {
                vnfc.startFailures = nil
                vnfc.lastStartFailure = nil
            }
            if let replaced = vnfc.replaces {
                // A rolling update's new VNFC ended: dropped (asked), or failed (launched again while the update runs;
                // what was pointed at it goes back to the VNFC it was to replace).
                let wasRepointed = vnfc.repointedAt != nil
                if asked {
                    instance.vnfcs[vnfcID] = nil
                } else {
                    vnfc.taskID = nil
                    vnfc.state = status.state
                    vnfc.endedAt = now
                    vnfc.repointedAt = nil
                    instance.vnfcs[vnfcID] = vnfc
                }
                var rebinds: [NFVAction] = []
                if wasRepointed, let old = instance.vnfcs[replaced], old.taskID != nil {
                    rebinds = repoint(instance, from: vnfc, to: old)
                }
                instances[instanceID] = instance
                dirtyInstances.insert(instanceID)
                return actions + flush() + rebinds + converge(now: now)
            }
            if let successor = instance.vnfcs.values.first(where: { $0.replaces == vnfcID && $0.isRunning }) {
                // The old VNFC of a rolling update ended: its successor takes its id.
                var promoted = successor
                promoted.id = vnfcID
                promoted.replaces = nil
                promoted.repointedAt = nil
                promoted.incarnation = vnfc.incarnation + 1
                instance.vnfcs[successor.id] = nil
                instance.vnfcs[vnfcID] = promoted
                instances[instanceID] = instance
                dirtyInstances.insert(instanceID)
                return actions + converge(now: now)
            }
            vnfc.taskID = nil
            vnfc.state = status.state
            vnfc.endedAt = now
            instance.vnfcs[vnfcID] = vnfc
            instances[instanceID] = instance
            dirtyInstances.insert(instanceID)
            let wanted = (instance.desiredCounts[vnfc.vdu] ?? 0) > vnfc.index
            if !asked && wanted && configuration.autoHeal && activeOperation(of: instanceID) == nil {
                actions += flush()
                if let (_, healActions) = try? heal(
                    instanceID, vnfcIDs: [vnfcID], cause: "\(status.taskID) \(status.state.rawValue)", automatic: true, now: now)
                {
                    actions += healActions
                }
            }
        } else if vnfc.state != status.state {
            vnfc.state = status.state
            if status.state == .running {
                vnfc.startFailures = nil
                vnfc.lastStartFailure = nil
            }
            instance.vnfcs[vnfcID] = vnfc
            instances[instanceID] = instance
            dirtyInstances.insert(instanceID)
        }
        return actions + converge(now: now)
    }

    // MARK: convergence

    /// Kills what should not run, forgets what ended, and moves occurrences along.
    private mutating func converge(now: SchedulerTime) -> [NFVAction] {
        var kills: [NFVAction] = []
        var rebinds: [NFVAction] = []
        var hookActions: [NFVAction] = []
        for id in instances.keys.sorted() {
            var instance = instances[id]!
            let desired = instance.desiredCounts
            var changed = false
            let active = activeOperation(of: id)
            // Missing VNFC slots appear only once an occurrence processes (or when healing on its own).
            if active == nil || active?.state == .processing || active?.state == .rollingBack {
                for vdu in instance.vnfd.vdus {
                    for index in 0..<(desired[vdu.id] ?? 0) where instance.vnfcs["\(vdu.id).\(index)"] == nil {
                        instance.vnfcs["\(vdu.id).\(index)"] = VNFCRecord(
                            id: "\(vdu.id).\(index)", vdu: vdu.id, index: index, taskID: nil, agentID: nil, hostname: nil,
                            failureDomain: nil, ports: [:], state: nil, endedAt: nil, incarnation: 0)
                        changed = true
                    }
                }
            }
            for vnfc in instance.vnfcs.values.sorted(by: { $0.id < $1.id }) where vnfc.index >= desired[vnfc.vdu] ?? 0 {
                if let taskID = vnfc.taskID {
                    if !killsSent.contains(taskID) && (active == nil || active?.state != .starting) {
                        killsSent.insert(taskID)
                        kills.append(.kill(taskID: taskID, agentID: vnfc.agentID))
                    }
                } else {
                    instance.vnfcs[vnfc.id] = nil
                    changed = true
                }
            }
            if let active, active.operation == .changeVnfpkg {
                if active.state == .processing || active.state == .rollingBack {
                    changed = rollingStep(&instance, kills: &kills, rebinds: &rebinds, now: now) || changed
                }
            } else {
                // No rolling update runs (it completed, failed or was rolled back): new VNFCs left over go.
                for surge in instance.vnfcs.values.filter({ $0.replaces != nil }).sorted(by: { $0.id < $1.id }) {
                    changed = drop(surge, of: &instance, kills: &kills, rebinds: &rebinds) || changed
                }
            }
            if changed {
                instances[id] = instance
                dirtyInstances.insert(id)
            }
            if let active { hookActions += progress(active, instance: instance, now: now) }
        }
        let persisted = flush()
        let revive: [NFVAction] = persisted.isEmpty || pendingVNFCs.isEmpty ? [] : [.revive]
        return persisted + rebinds + kills + hookActions + revive
    }

    /// One step of a rolling update (or its rollback) towards every VNFC running `instance.vnfd`'s version; returns
    /// whether the instance changed.
    private mutating func rollingStep(
        _ instance: inout VNFInstance, kills: inout [NFVAction], rebinds: inout [NFVAction], now: SchedulerTime
    ) -> Bool {
        let target = instance.vnfd.version
        let desired = instance.desiredCounts
        var changed = false
        // New VNFCs no longer needed (their old VNFC ended or runs the target version, e.g. after a rollback began) or
        // launched with another version go.
        for surge in instance.vnfcs.values.filter({ $0.replaces != nil }).sorted(by: { $0.id < $1.id }) {
            let old = instance.vnfcs[surge.replaces!]
            let needed = old.map { $0.taskID != nil && $0.vnfdVersion != target } ?? false
            if !needed || (surge.vnfdVersion != nil && surge.vnfdVersion != target) {
                changed = drop(surge, of: &instance, kills: &kills, rebinds: &rebinds) || changed
            }
        }
        let surges = instance.vnfcs.values.filter { $0.replaces != nil }.sorted { $0.id < $1.id }
        guard let surge = surges.first else {
            // Start the next replacement: the first VNFC (by id) whose running task has another version.
            let outdated = instance.vnfcs.values.filter { vnfc in
                guard let task = vnfc.taskID else { return false }
                return vnfc.replaces == nil && vnfc.vnfdVersion != target && vnfc.index < desired[vnfc.vdu] ?? 0 && !killsSent.contains(task)
            }
            guard let next = outdated.min(by: { $0.id < $1.id }) else { return changed }
            instance.vnfcs["\(next.id).next"] = VNFCRecord(
                id: "\(next.id).next", vdu: next.vdu, index: next.index, taskID: nil, agentID: nil, hostname: nil,
                failureDomain: nil, ports: [:], state: nil, endedAt: nil, incarnation: 0, replaces: next.id)
            return true
        }
        guard surge.isRunning, let surgeTask = surge.taskID, !killsSent.contains(surgeTask),
            let old = instance.vnfcs[surge.replaces!], let oldTask = old.taskID
        else { return changed }
        if let repointed = surge.repointedAt {
            if now.seconds - repointed.seconds >= configuration.repointGraceSeconds && !killsSent.contains(oldTask) {
                killsSent.insert(oldTask)
                kills.append(.kill(taskID: oldTask, agentID: old.agentID))
            }
            return changed
        }
        instance.vnfcs[surge.id]?.repointedAt = now
        rebinds += repoint(instance, from: old, to: surge)
        return true
    }

    /// Removes a rolling update's new VNFC: what was pointed at it goes back to the old one, its task is killed (the
    /// record goes when the task has ended) or, without a task, the record goes now. Returns whether anything changed.
    private mutating func drop(
        _ surge: VNFCRecord, of instance: inout VNFInstance, kills: inout [NFVAction], rebinds: inout [NFVAction]
    ) -> Bool {
        var changed = false
        if surge.repointedAt != nil {
            instance.vnfcs[surge.id]?.repointedAt = nil
            if let old = surge.replaces.flatMap({ instance.vnfcs[$0] }), old.taskID != nil {
                rebinds += repoint(instance, from: surge, to: old)
            }
            changed = true
        }
        if let task = surge.taskID {
            if !killsSent.contains(task) {
                killsSent.insert(task)
                kills.append(.kill(taskID: task, agentID: surge.agentID))
            }
        } else {
            instance.vnfcs[surge.id] = nil
            changed = true
        }
        return changed
    }

    /// Points every other instance's external links that lead to `from`'s inbound endpoints at `to`'s, and tells the
    /// instance's own VNFCs that reach `from` through an internal link (`${vl:LINK}`) where that link leads now
    /// (`instance` already records which of the two carries the traffic: a rolling update's new VNFC with
    /// `repointedAt` set stands in for the VNFC it replaces). Returns the `.rebind` actions (to run after the
    /// instances are persisted).
    private mutating func repoint(_ instance: VNFInstance, from: VNFCRecord, to: VNFCRecord) -> [NFVAction] {
        var mapping: [String: String] = [:]
        for point in instance.vnfd.connectionPoints where point.vdu == from.vdu && point.direction == .inbound {
            if let port = point.port, let old = from.endpoint(port), let new = to.endpoint(port) { mapping[old] = new }
        }
        guard !mapping.isEmpty else { return [] }
        var actions: [NFVAction] = []
        let reached = Set(
            instance.vnfd.connectionPoints.filter { $0.vdu == from.vdu && $0.direction == .inbound }.map(\.virtualLink))
        for link in instance.vnfd.internalVirtualLinks.map(\.id) where reached.contains(link) {
            guard instance.vnfd.vdus.contains(where: { $0.arguments.contains { $0.contains("${vl:\(link)}") } }) else { continue }
            let endpoints = instance.internalLinkEndpoints(link)
            if !endpoints.isEmpty { actions.append(.rebind(instanceID: instance.id, link: link, endpoints: endpoints)) }
        }
        for id in instances.keys.sorted() where id != instance.id {
            var other = instances[id]!
            for link in other.extLinks.keys.sorted() {
                let endpoints = other.extLinks[link]!
                let moved = endpoints.map { mapping[$0] ?? $0 }
                guard moved != endpoints else { continue }
                other.extLinks[link] = moved
                actions.append(.rebind(instanceID: id, link: link, endpoints: moved))
            }
            if other != instances[id]! {
                instances[id] = other
                dirtyInstances.insert(id)
            }
        }
        return actions
    }

    /// Moves one occurrence along; returns hook actions.
    private mutating func progress(_ current: LcmOpOcc, instance: VNFInstance, now: SchedulerTime) -> [NFVAction] {
        var operation = current
        switch operation.state {
        case .starting:
            enter(.processing, &operation, now: now)
            operation.deadline = now.adding(
                seconds: operation.operation == .terminate ? operation.deadline.seconds - operation.startTime.seconds : configuration.operationTimeoutSeconds)
            operations[operation.id] = operation
            return []
        case .processing, .rollingBack:
            let converged = isConverged(instance, for: operation)
            if converged {
                enter(operation.state == .processing ? .completed : .rolledBack, &operation, now: now)
                operations[operation.id] = operation
                return endEvent(operation.operation).map { hooks(instance.id, $0) } ?? []
            }
            if operation.operation != .terminate, let stuck = instance.vnfcs.values.sorted(by: { $0.id < $1.id }).first(where: {
                $0.taskID == nil && ($0.startFailures ?? 0) >= configuration.maximumStartFailures
            }) {
                operation.error = "VNFC \(stuck.id) ended \(stuck.startFailures ?? 0) times in a row before it ran (last: "
                    + "\(stuck.lastStartFailure ?? "unknown")); fix what it runs (command, arguments, ports) and retry, "
                    + "or roll back"
                if operation.state == .processing {
                    enter(.failedTemp, &operation, now: now)
                    if operation.operation == .changeVnfpkg && configuration.rollBackFailedUpdates {
                        beginRollback(&operation, now: now)
                    }
                } else {
                    enter(.failed, &operation, now: now)
                }
                operations[operation.id] = operation
                return []
            }
            guard now >= operation.deadline else { return [] }
            if operation.operation == .terminate {
                // Graceful time is up (or the terminate is forceful): forget the VNFCs; their kills were sent.
                var forgotten = instance
                forgotten.vnfcs = [:]
                instances[instance.id] = forgotten
                dirtyInstances.insert(instance.id)
                enter(.completed, &operation, now: now)
                operation.parameters["forceful"] = "\(instance.vnfcs.count) VNFCs had not ended"
                operations[operation.id] = operation
                return hooks(instance.id, .terminateEnd)
            }
            let missing = instance.vnfcs.values.filter { !$0.isRunning }.map { vnfc in
                "\(vnfc.id)" + (shortfalls["\(instance.id)/\(vnfc.id)"].map { ": \($0)" } ?? "")
            }.sorted()
            operation.error = "not converged within \(configuration.operationTimeoutSeconds) s; not running: \(missing.joined(separator: "; "))"
            if operation.state == .processing && operation.retries < configuration.automaticRetries {
                operation.retries += 1
                operation.deadline = now.adding(seconds: configuration.operationTimeoutSeconds)
            } else {
                enter(operation.state == .processing ? .failedTemp : .failed, &operation, now: now)
                if operation.operation == .changeVnfpkg && operation.state == .failedTemp && configuration.rollBackFailedUpdates {
                    beginRollback(&operation, now: now)
                }
            }
            operations[operation.id] = operation
            return []
        case .completed, .failedTemp, .rolledBack, .failed:
            return []
        }
    }

    private func isConverged(_ instance: VNFInstance, for operation: LcmOpOcc) -> Bool {
        let desired = instance.desiredCounts
        for vdu in instance.vnfd.vdus {
            let count = desired[vdu.id] ?? 0
            let vnfcs = instance.vnfcs.values.filter { $0.vdu == vdu.id }
            if vnfcs.count != count || vnfcs.contains(where: { !$0.isRunning }) { return false }
        }
        if operation.operation == .changeVnfpkg,
            instance.vnfcs.values.contains(where: { $0.replaces != nil || $0.vnfdVersion != instance.vnfd.version })
        {
            return false
        }
        if operation.operation == .heal && operation.state == .processing {
            for (key, value) in operation.parameters where key.hasPrefix("vnfc.") {
                let id = String(key.dropFirst(5))
                if let vnfc = instance.vnfcs[id], vnfc.incarnation <= Int(value) ?? 0 { return false }
            }
        }
        return true
    }

    /// VNFCs without a task on instances whose occurrence processes (or that have none: auto-heal).
    var pendingVNFCs: [PendingVNFC] {
        instances.keys.sorted().flatMap { id -> [PendingVNFC] in
            let instance = instances[id]!
            if let active = activeOperation(of: id), active.state != .processing && active.state != .rollingBack { return [] }
            let desired = instance.desiredCounts
            return instance.vnfcs.values.filter {
                $0.taskID == nil && $0.index < desired[$0.vdu] ?? 0 && ($0.startFailures ?? 0) < configuration.maximumStartFailures
            }
                .sorted { $0.id < $1.id }.map { PendingVNFC(instanceID: id, vnfc: $0) }
        }
    }

    // MARK: helpers

    private mutating func takeNumber() -> UInt64 {
        defer { nextNumber += 1 }
        return nextNumber
    }

    private func instantiated(_ id: String) throws(NFVError) -> VNFInstance {
        guard let instance = instances[id] else { throw .unknownInstance(id) }
        if let active = activeOperation(of: id) { throw .conflict(instanceID: id, operationID: active.id) }
        guard instance.instantiationState == .instantiated else { throw .wrongState(instanceID: id, "it is not instantiated") }
        return instance
    }

    private func failedTemp(_ id: String) throws(NFVError) -> LcmOpOcc {
        guard let operation = operations[id] else { throw .unknownOperation(id) }
        guard operation.state == .failedTemp else {
            throw .wrongState(instanceID: operation.vnfInstanceID, "operation \(id) is \(operation.state.rawValue), not FAILED_TEMP")
        }
        return operation
    }

    private func rollbackPoint(_ instance: VNFInstance) -> RollbackPoint {
        RollbackPoint(
            instantiationState: instance.instantiationState, operationalState: instance.operationalState,
            levelID: instance.levelID, scaleLevels: instance.scaleLevels)
    }

    private mutating func begin(
        _ type: LcmOperationType, on instanceID: String, point: RollbackPoint, parameters: [String: String],
        now: SchedulerTime, automatic: Bool = false, timeout: Double? = nil
    ) -> String {
        let id = "op-\(takeNumber())"
        operations[id] = LcmOpOcc(
            id: id, vnfInstanceID: instanceID, operation: type, state: .starting, startTime: now, stateEnteredTime: now,
            deadline: now.adding(seconds: timeout ?? configuration.operationTimeoutSeconds), isAutomaticInvocation: automatic,
            parameters: parameters, rollbackPoint: point, error: nil, retries: 0, terminationType: nil)
        dirtyOperations.insert(id)
        return id
    }

    private mutating func enter(_ state: LcmOperationState, _ operation: inout LcmOpOcc, now: SchedulerTime) {
        operation.state = state
        operation.stateEnteredTime = now
        dirtyOperations.insert(operation.id)
    }

    private func locate(_ taskID: TaskID) -> (String, String)? {
        guard taskID.value.hasPrefix(VNFTaskTemplate.taskPrefix) else { return nil }
        for (id, instance) in instances {
            if let vnfc = instance.vnfcs.values.first(where: { $0.taskID == taskID }) { return (id, vnfc.id) }
        }
        return nil
    }

    private func hooks(_ instanceID: String, _ event: LifecycleEvent) -> [NFVAction] {
        guard let instance = instances[instanceID] else { return [] }
        return instance.vnfd.lifecycleHooks.filter { $0.event == event }.map {
            .runHook(instanceID: instanceID, event: event, command: $0.command)
        }
    }

    private func endEvent(_ type: LcmOperationType) -> LifecycleEvent? {
        switch type {
        case .instantiate: .instantiateEnd
        case .scale, .scaleToLevel: .scaleEnd
        case .heal: .healEnd
        case .terminate: .terminateEnd
        case .operate, .changeVnfpkg: nil
        }
    }

    private mutating func flush() -> [NFVAction] {
        var intents: [NFVIntent] = dirtyInstances.sorted().map { id in
            instances[id].map { NFVIntent.putInstance($0) } ?? .deleteInstance(id)
        }
        intents += dirtyOperations.sorted().compactMap { operations[$0].map(NFVIntent.putOperation) }
        dirtyInstances = []
        dirtyOperations = []
        guard !intents.isEmpty else { return [] }
        intents.append(.setNextNumber(nextNumber))
        return [.persist(makeBatch(intents))]
    }

    private mutating func makeBatch(_ intents: [NFVIntent]) -> NFVBatch {
        defer { nextBatchID += 1 }
        return NFVBatch(id: nextBatchID, intents: intents)
    }
}
