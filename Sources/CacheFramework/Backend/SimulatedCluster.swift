// A simulated resource manager for tests: configured agents, offers made from their free resources, refuse filters,
// suppression, launches that consume resources, status updates on command, reconciliation answers, and a manual
// clock. `SimulatedCluster` is a pure value (deterministic tests drive it directly); `SimulatedBackend` wraps it as a
// `SchedulerBackend`.

/// One simulated agent.
public struct SimulatedAgent: Hashable, Sendable {
    /// Its id.
    public var id: AgentID
    /// Its hostname.
    public var hostname: String
    /// Its attributes (zone, rack).
    public var attributes: [Attribute]
    /// Its total resources.
    public var total: ResourceQuantities

    /// Creates an agent.
    public init(id: AgentID, hostname: String, attributes: [Attribute] = [], total: ResourceQuantities) {
        self.id = id
        self.hostname = hostname
        self.attributes = attributes
        self.total = total
    }
}

/// A task the simulated manager knows.
public struct SimulatedTask: Hashable, Sendable {
    /// The launched task.
    public var info: TaskInfo
    /// Its current state.
    public var state: TaskState
}

/// The simulated resource manager as a value.
public struct SimulatedCluster: Sendable {
    /// The current simulated time.
    public private(set) var now: SchedulerTime
    /// The agents by id.
    public private(set) var agents: [AgentID: SimulatedAgent] = [:]
    /// Tasks it knows, by id (terminal ones stay, as in Mesos' completed tasks).
    public private(set) var tasks: [TaskID: SimulatedTask] = [:]
    /// Every LAUNCH it received, in order.
    public private(set) var launched: [TaskInfo] = []
    /// Acknowledged update uuids.
    public private(set) var acknowledged: [String] = []
    /// Offers made and not yet answered.
    public private(set) var outstanding: [OfferID: Offer] = [:]
    /// Whether offers are suppressed.
    public private(set) var suppressed = false
    private var refusedUntil: [AgentID: SchedulerTime] = [:]
    private var offerCounter = 0
    private var uuidCounter = 0
    private var agentOrder: [AgentID] = []
    /// Agents partitioned from the master, with the states their tasks had when they became unreachable.
    private var partitioned: [AgentID: [TaskID: TaskState]] = [:]

    /// Creates a simulated manager at time `now`.
    public init(agents: [SimulatedAgent], now: SchedulerTime = SchedulerTime(seconds: 0)) {
        self.now = now
        for agent in agents { addAgent(agent) }
    }

    /// Adds an agent.
    public mutating func addAgent(_ agent: SimulatedAgent) {
        if agents[agent.id] == nil { agentOrder.append(agent.id) }
        agents[agent.id] = agent
    }

    /// Moves the clock forward.
    public mutating func advance(by seconds: Double) { now = now.adding(seconds: seconds) }

    /// Free resources of an agent: its total minus its non-terminal tasks.
    public func free(on agentID: AgentID) -> ResourceQuantities {
        guard let agent = agents[agentID] else { return ResourceQuantities() }
        var free = agent.total
        for task in tasks.values where task.info.agentID == agentID && !task.state.isTerminal {
            let used = ResourceQuantities(task.info.resources)
            free.cpus -= used.cpus
            free.memMB -= used.memMB
            free.diskMB -= used.diskMB
            free.ports = free.ports.subtracting(used.ports)
        }
        return free
    }

    /// Makes one offer per agent that has no outstanding offer, is not refused at `now`, and has free resources.
    public mutating func makeOffers() -> [Offer] {
        guard !suppressed else { return [] }
        let offered = Set(outstanding.values.map(\.agentID))
        var offers: [Offer] = []
        for id in agentOrder where !offered.contains(id) && partitioned[id] == nil {
            if let until = refusedUntil[id], now < until { continue }
            let free = free(on: id)
            guard free.cpus > 0 || free.memMB > 0 else { continue }
            offerCounter += 1
            let agent = agents[id]!
            let offer = Offer(
                id: OfferID("sim-offer-\(offerCounter)"), agentID: id, hostname: agent.hostname,
                resources: free.resources, attributes: agent.attributes
            )
            outstanding[offer.id] = offer
            offers.append(offer)
        }
        return offers
    }

    /// Voids every outstanding offer, as a master does when the framework fails over or disconnects.
    public mutating func voidOutstandingOffers() { outstanding = [:] }

    /// Takes an outstanding offer back; returns the RESCIND event, or `nil` if the offer is not outstanding.
    public mutating func rescind(_ offerID: OfferID) -> BackendEvent? {
        outstanding.removeValue(forKey: offerID) == nil ? nil : .rescind(offerID)
    }

    /// Moves a task to `state`; returns the UPDATE (with a uuid to acknowledge).
    public mutating func setState(_ taskID: TaskID, _ state: TaskState, message: String? = nil) -> BackendEvent? {
        guard var task = tasks[taskID] else { return nil }
        task.state = state
        tasks[taskID] = task
        return .update(status(task, uuid: nextUUID(), message: message))
    }

    /// Loses an agent: every non-terminal task on it becomes TASK_LOST; returns the updates.
    public mutating func loseAgent(_ agentID: AgentID) -> [BackendEvent] {
        agentOrder.removeAll { $0 == agentID }
        agents[agentID] = nil
        outstanding = outstanding.filter { $0.value.agentID != agentID }
        return tasks.values.filter { $0.info.agentID == agentID && !$0.state.isTerminal }
            .sorted { $0.info.taskID < $1.info.taskID }
            .compactMap { setState($0.info.taskID, .lost, message: "agent \(agentID) removed") }
    }

    /// Partitions an agent from the master (Mesos marks it unreachable): its tasks keep running but become
    /// TASK_UNREACHABLE (SOURCE_MASTER, REASON_SLAVE_REMOVED, no uuid: not acknowledged), its outstanding offers are
    /// rescinded and it offers nothing until `reconnectAgent`. Returns the events, rescinds first.
    public mutating func partitionAgent(_ agentID: AgentID) -> [BackendEvent] {
        guard agents[agentID] != nil, partitioned[agentID] == nil else { return [] }
        var events: [BackendEvent] = outstanding.values.filter { $0.agentID == agentID }.map(\.id).sorted().map { id in
            outstanding[id] = nil
            return .rescind(id)
        }
        var states: [TaskID: TaskState] = [:]
        for task in tasksOn(agentID) {
            states[task.info.taskID] = task.state
            tasks[task.info.taskID]?.state = .unreachable
            events.append(.update(status(tasks[task.info.taskID]!, uuid: nil, reason: "REASON_SLAVE_REMOVED", message: "health check timed out")))
        }
        partitioned[agentID] = states
        return events
    }

    /// The partitioned agent reregisters: its tasks are re-reported in the state they run in (SOURCE_MASTER,
    /// REASON_SLAVE_REREGISTERED, no uuid) unless they were killed meanwhile, and it offers again.
    public mutating func reconnectAgent(_ agentID: AgentID) -> [BackendEvent] {
        guard let states = partitioned.removeValue(forKey: agentID) else { return [] }
        return states.keys.sorted().compactMap { id in
            guard tasks[id]?.state == .unreachable, let state = states[id] else { return nil }
            tasks[id]?.state = state
            return .update(status(tasks[id]!, uuid: nil, reason: "REASON_SLAVE_REREGISTERED", message: "Unreachable agent re-reregistered"))
        }
    }

    /// An operator marks the agent gone (MARK_AGENT_GONE): its tasks become TASK_GONE_BY_OPERATOR (SOURCE_MASTER,
    /// REASON_SLAVE_REMOVED_BY_OPERATOR, no uuid) and it never offers again.
    public mutating func markAgentGone(_ agentID: AgentID) -> [BackendEvent] {
        guard agents[agentID] != nil else { return [] }
        partitioned[agentID] = nil
        let running = tasksOn(agentID)
        agentOrder.removeAll { $0 == agentID }
        agents[agentID] = nil
        var events: [BackendEvent] = outstanding.values.filter { $0.agentID == agentID }.map(\.id).sorted().map { id in
            outstanding[id] = nil
            return .rescind(id)
        }
        for task in running {
            tasks[task.info.taskID]?.state = .goneByOperator
            events.append(.update(status(
                tasks[task.info.taskID]!, uuid: nil, reason: "REASON_SLAVE_REMOVED_BY_OPERATOR", message: "Agent has been marked gone")))
        }
        return events
    }

    /// The non-terminal tasks on an agent, by id.
    private func tasksOn(_ agentID: AgentID) -> [SimulatedTask] {
        tasks.values.filter { $0.info.agentID == agentID && !$0.state.isTerminal }.sorted { $0.info.taskID < $1.info.taskID }
    }

    /// Carries out a scheduler call; returns the events it causes. Non-backend actions are ignored.
    public mutating func apply(_ action: SchedulerAction) -> [BackendEvent] {
        switch action {
        case .accept(let offerIDs, let operations, let filters):
            let valid = offerIDs.allSatisfy { outstanding[$0] != nil }
            let agent = offerIDs.first.flatMap { outstanding[$0]?.agentID }
            for id in offerIDs { outstanding[id] = nil }
            if let agent { refusedUntil[agent] = now.adding(seconds: filters.refuseSeconds) }
            var events: [BackendEvent] = []
            for case .launch(let infos) in operations {
                for info in infos {
                    launched.append(info)
                    tasks[info.taskID] = SimulatedTask(info: info, state: valid ? .staging : .dropped)
                    events.append(.update(status(tasks[info.taskID]!, uuid: nextUUID(), message: valid ? nil : "offer gone")))
                }
            }
            return events
        case .decline(let offerIDs, let filters):
            for id in offerIDs {
                if let offer = outstanding.removeValue(forKey: id) {
                    refusedUntil[offer.agentID] = now.adding(seconds: filters.refuseSeconds)
                }
            }
            return []
        case .acknowledge(_, _, let uuid):
            acknowledged.append(uuid)
            return []
        case .kill(let taskID, _):
            guard let task = tasks[taskID], !task.state.isTerminal else { return [] }
            // The master cannot reach the task: it answers with a reconciliation (master.cpp `kill`).
            if task.state == .unreachable {
                return [.update(status(task, uuid: nil, reason: TaskStatus.reconciliationReason, message: "Reconciliation: Task is unreachable"))]
            }
            return setState(taskID, .killed).map { [$0] } ?? []
        case .reconcile(let list):
            if list.isEmpty {
                // Unreachable tasks are not among the master's tasks: implicit reconciliation leaves them out.
                return tasks.values.filter { !$0.state.isTerminal && $0.state != .unreachable }.sorted { $0.info.taskID < $1.info.taskID }.map {
                    .update(status($0, uuid: nil, reason: TaskStatus.reconciliationReason))
                }
            }
            return list.map { entry in
                if let task = tasks[entry.taskID] {
                    return .update(status(task, uuid: nil, reason: TaskStatus.reconciliationReason))
                }
                return .update(
                    TaskStatus(
                        taskID: entry.taskID, state: .unknown, reason: TaskStatus.reconciliationReason,
                        agentID: entry.agentID, timestamp: now.seconds
                    )
                )
            }
        case .revive:
            suppressed = false
            refusedUntil = [:]
            return []
        case .suppress:
            suppressed = true
            return []
        case .persist, .queryReplicationOffsets, .promote, .replicate, .queryClusterNodeID, .pushTopology, .migrateSlots:
            return []
        }
    }

    private mutating func nextUUID() -> String {
        uuidCounter += 1
        return "uuid-\(uuidCounter)"
    }

    private func status(_ task: SimulatedTask, uuid: String?, reason: String? = nil, message: String? = nil) -> TaskStatus {
        TaskStatus(
            taskID: task.info.taskID, state: task.state, reason: reason, message: message, agentID: task.info.agentID,
            uuid: uuid, timestamp: now.seconds
        )
    }
}
