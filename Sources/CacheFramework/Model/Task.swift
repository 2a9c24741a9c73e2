// Tasks in the shape of mesos.proto: `TaskInfo` (what is launched), `TaskState`/`TaskStatus` (what comes back),
// and `OfferOperation` (what an ACCEPT carries).

/// The command a task runs (`CommandInfo`).
public struct CommandInfo: Hashable, Codable, Sendable {
    /// The executable (or shell command line if `shell` is true).
    public var value: String
    /// Arguments when `shell` is false.
    public var arguments: [String]
    /// Whether `value` runs through `/bin/sh -c`.
    public var shell: Bool
    /// Environment variables.
    public var environment: [String: String]

    /// Creates a command.
    public init(value: String, arguments: [String] = [], shell: Bool = false, environment: [String: String] = [:]) {
        self.value = value
        self.arguments = arguments
        self.shell = shell
        self.environment = environment
    }
}

/// A task to launch (`TaskInfo`).
public struct TaskInfo: Hashable, Codable, Sendable {
    /// A human-readable name.
    public var name: String
    /// The scheduler-chosen identifier.
    public var taskID: TaskID
    /// The agent to run on.
    public var agentID: AgentID
    /// The resources the task uses (including its assigned ports).
    public var resources: [Resource]
    /// What to run.
    public var command: CommandInfo
    /// Free-form labels (cluster, shard, role); the Mesos backend maps them to `Labels`.
    public var labels: [String: String]

    enum CodingKeys: String, CodingKey {
        case name
        case taskID = "task_id"
        case agentID = "agent_id"
        case resources
        case command
        case labels
    }

    /// Creates a task description.
    public init(
        name: String,
        taskID: TaskID,
        agentID: AgentID,
        resources: [Resource],
        command: CommandInfo,
        labels: [String: String] = [:]
    ) {
        self.name = name
        self.taskID = taskID
        self.agentID = agentID
        self.resources = resources
        self.command = command
        self.labels = labels
    }
}

/// The state of a task (`TaskState`).
public enum TaskState: String, Hashable, Codable, Sendable, CaseIterable {
    case staging = "TASK_STAGING"
    case starting = "TASK_STARTING"
    case running = "TASK_RUNNING"
    case killing = "TASK_KILLING"
    case finished = "TASK_FINISHED"
    case failed = "TASK_FAILED"
    case killed = "TASK_KILLED"
    case error = "TASK_ERROR"
    case lost = "TASK_LOST"
    case dropped = "TASK_DROPPED"
    case unreachable = "TASK_UNREACHABLE"
    case gone = "TASK_GONE"
    case goneByOperator = "TASK_GONE_BY_OPERATOR"
    case unknown = "TASK_UNKNOWN"

    /// Whether the task will never run again in this incarnation (Mesos' terminal states).
    public var isTerminal: Bool {
        switch self {
        case .finished, .failed, .killed, .error, .lost, .dropped, .gone, .goneByOperator, .unknown: true
        case .staging, .starting, .running, .killing, .unreachable: false
        }
    }

    /// Whether the scheduler should treat the task as not serving: terminal, or unreachable (partition-aware
    /// frameworks replace unreachable tasks; the task is killed if it comes back).
    public var needsReplacement: Bool { isTerminal || self == .unreachable }
}

/// A status update or reconciliation answer (`TaskStatus`).
public struct TaskStatus: Hashable, Codable, Sendable {
    /// The task the status is about.
    public var taskID: TaskID
    /// Its new state.
    public var state: TaskState
    /// Why (`REASON_RECONCILIATION` for reconciliation answers, …).
    public var reason: String?
    /// A human-readable message.
    public var message: String?
    /// The agent the task runs on.
    public var agentID: AgentID?
    /// Present when the update must be acknowledged; reconciliation answers carry none.
    public var uuid: String?
    /// When the update was generated, in seconds.
    public var timestamp: Double?
    /// The task's own IP address when it has one (IP-per-task isolation; Mesos' `container_status.network_infos`):
    /// the address the task is reached at, instead of its agent's hostname.
    public var containerIP: String?

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id"
        case state
        case reason
        case message
        case agentID = "agent_id"
        case uuid
        case timestamp
        case containerIP = "container_ip"
    }

    /// Creates a status.
    public init(
        taskID: TaskID,
        state: TaskState,
        reason: String? = nil,
        message: String? = nil,
        agentID: AgentID? = nil,
        uuid: String? = nil,
        timestamp: Double? = nil,
        containerIP: String? = nil
    ) {
        self.containerIP = containerIP
        self.taskID = taskID
        self.state = state
        self.reason = reason
        self.message = message
        self.agentID = agentID
        self.uuid = uuid
        self.timestamp = timestamp
    }

    /// The reason Mesos gives to answers of a reconcile call.
    public static let reconciliationReason = "REASON_RECONCILIATION"
}

/// An operation of an ACCEPT call (`Offer.Operation`); only LAUNCH is used so far.
///
/// Encodes as the proto's JSON: `{"type": "LAUNCH", "launch": {"task_infos": [...]}}`.
public enum OfferOperation: Hashable, Codable, Sendable {
    /// Launch tasks on the accepted offers' agent.
    case launch([TaskInfo])

    enum CodingKeys: String, CodingKey { case type, launch }
    struct Launch: Codable { var task_infos: [TaskInfo] }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        guard type == "LAUNCH" else {
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: container, debugDescription: "unsupported offer operation \(type); only LAUNCH is")
        }
        self = .launch(try container.decode(Launch.self, forKey: .launch).task_infos)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .launch(let tasks):
            try container.encode("LAUNCH", forKey: .type)
            try container.encode(Launch(task_infos: tasks), forKey: .launch)
        }
    }
}
