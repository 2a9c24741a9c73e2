// The mesos.v1 messages (include/mesos/v1/mesos.proto, Mesos 1.11) the scheduler API carries, as Codable structs
// whose JSON is the proto's JSON mapping: snake_case field names, enums as their names, `bytes` as base64 text,
// optional fields left out when unset. The identifiers (`OfferID`, `AgentID`, `TaskID`, `FrameworkID`) and a few
// values (`Attribute`, `RangeSet`, `ScalarValue`, `SetValue`, `TaskState`, `Filters`) are CacheFramework's model
// types, which already encode exactly as the proto does.

public import CacheFramework

/// The `mesos.v1` package: wire types of the Mesos v1 HTTP APIs.
public enum Mesos {}

extension Mesos {
    /// `ExecutorID`.
    public struct ExecutorID: Hashable, Codable, Sendable {
        /// The identifier text.
        public var value: String
        /// Creates an id.
        public init(_ value: String) { self.value = value }
    }

    /// `OperationID`: the scheduler-chosen id of an offer operation whose status it wants to hear about.
    public struct OperationID: Hashable, Codable, Sendable {
        /// The identifier text.
        public var value: String
        /// Creates an id.
        public init(_ value: String) { self.value = value }
    }

    /// `UUID`: raw bytes (base64 in JSON), used by `OperationStatus.uuid`.
    public struct UUIDValue: Hashable, Codable, Sendable {
        /// The base64 text of the bytes.
        public var value: String
        /// Creates a uuid from its base64 text.
        public init(_ value: String) { self.value = value }
    }

    /// `TimeInfo`.
    public struct TimeInfo: Hashable, Codable, Sendable {
        /// Nanoseconds since the epoch.
        public var nanoseconds: Int64
        /// Creates a time.
        public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    }

    /// `Label`.
    public struct Label: Hashable, Codable, Sendable {
        /// The key.
        public var key: String
        /// The value (optional in the proto).
        public var value: String?
        /// Creates a label.
        public init(key: String, value: String?) {
            self.key = key
            self.value = value
        }
    }

    /// `Labels`: `{"labels": [{"key": …, "value": …}]}`.
    public struct Labels: Hashable, Codable, Sendable {
        /// The labels, in order.
        public var labels: [Label]
        /// Creates labels.
        public init(_ labels: [Label]) { self.labels = labels }
        /// Labels from a dictionary, sorted by key (a stable wire form).
        public init(_ dictionary: [String: String]) {
            labels = dictionary.keys.sorted().map { Label(key: $0, value: dictionary[$0]) }
        }
        /// The labels as a dictionary (a later duplicate key wins).
        public var dictionary: [String: String] {
            var result: [String: String] = [:]
            for label in labels { result[label.key] = label.value ?? "" }
            return result
        }
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            labels = try container.decodeIfPresent([Label].self, forKey: .labels) ?? []
        }
    }

    /// `FrameworkInfo`: what a framework registers as.
    public struct FrameworkInfo: Hashable, Codable, Sendable {
        /// The Unix user tasks run as (empty: the master's default / the agent's user).
        public var user: String
        /// The framework's name.
        public var name: String
        /// The id the master assigned at first subscription; set it to resubscribe as the same framework.
        public var id: FrameworkID?
        /// Seconds the master keeps the framework's tasks running while it is disconnected (proto default 0: they
        /// are killed at once — never leave it 0 in production).
        public var failoverTimeout: Double?
        /// Whether agents checkpoint the framework's tasks so they survive an agent restart.
        public var checkpoint: Bool?
        /// The roles it subscribes to (requires the MULTI_ROLE capability).
        public var roles: [String]?
        /// The scheduler's hostname.
        public var hostname: String?
        /// The principal it authenticates as.
        public var principal: String?
        /// Capabilities, e.g. `MULTI_ROLE`, `PARTITION_AWARE`, `TASK_KILLING_STATE`, `RESERVATION_REFINEMENT`.
        public var capabilities: [Capability]?
        /// Free-form labels.
        public var labels: Labels?

        /// `FrameworkInfo.Capability`.
        public struct Capability: Hashable, Codable, Sendable {
            /// The capability type's name (`Capability.Type`).
            public var type: String
            /// Creates a capability.
            public init(_ type: String) { self.type = type }
            /// Can subscribe to several roles (`roles` instead of the deprecated `role`).
            public static let multiRole = Capability("MULTI_ROLE")
            /// Gets TASK_UNREACHABLE / TASK_GONE / TASK_DROPPED … instead of TASK_LOST.
            public static let partitionAware = Capability("PARTITION_AWARE")
            /// Gets TASK_KILLING while a task is being killed.
            public static let taskKillingState = Capability("TASK_KILLING_STATE")
            /// Understands `reservations` stacks (refined reservations).
            public static let reservationRefinement = Capability("RESERVATION_REFINEMENT")
        }

        enum CodingKeys: String, CodingKey {
            case user, name, id
            case failoverTimeout = "failover_timeout"
            case checkpoint, roles, hostname, principal, capabilities, labels
        }

        /// Creates a framework info.
        public init(
            user: String = "", name: String, id: FrameworkID? = nil, failoverTimeout: Double? = nil,
            checkpoint: Bool? = nil, roles: [String]? = nil, hostname: String? = nil, principal: String? = nil,
            capabilities: [Capability]? = nil, labels: Labels? = nil
        ) {
            self.user = user
            self.name = name
            self.id = id
            self.failoverTimeout = failoverTimeout
            self.checkpoint = checkpoint
            self.roles = roles
            self.hostname = hostname
            self.principal = principal
            self.capabilities = capabilities
            self.labels = labels
        }

        /// Whether the framework declares `capability`.
        public func has(_ capability: Capability) -> Bool { capabilities?.contains(capability) ?? false }
    }

    /// `MasterInfo` (the fields a scheduler uses).
    public struct MasterInfo: Hashable, Codable, Sendable {
        /// The master's id.
        public var id: String
        /// IPv4 address in network order packed into an integer.
        public var ip: UInt32
        /// The port.
        public var port: UInt32
        /// The hostname.
        public var hostname: String?
        /// Creates a master info.
        public init(id: String, ip: UInt32, port: UInt32, hostname: String?) {
            self.id = id
            self.ip = ip
            self.port = port
            self.hostname = hostname
        }
    }

    /// `Resource.AllocationInfo`: the role an offered resource is allocated to (MULTI_ROLE frameworks must copy it
    /// into the resources they launch with).
    public struct AllocationInfo: Hashable, Codable, Sendable {
        /// The role.
        public var role: String?
        /// Creates an allocation info.
        public init(role: String?) { self.role = role }
    }

    /// `Resource.ReservationInfo`: one level of a reservation stack.
    public struct ReservationInfo: Hashable, Codable, Sendable {
        /// `STATIC` or `DYNAMIC`.
        public var type: String?
        /// The role reserved for.
        public var role: String?
        /// The principal that reserved.
        public var principal: String?
        /// Labels identifying the reservation.
        public var labels: Labels?
        /// Creates a reservation level.
        public init(type: String? = "DYNAMIC", role: String?, principal: String? = nil, labels: Labels? = nil) {
            self.type = type
            self.role = role
            self.principal = principal
            self.labels = labels
        }
    }

    /// `Resource.DiskInfo`: makes a disk resource a persistent volume.
    public struct DiskInfo: Hashable, Codable, Sendable {
        /// `Resource.DiskInfo.Persistence`.
        public struct Persistence: Hashable, Codable, Sendable {
            /// The volume id, unique per role and agent.
            public var id: String
            /// The principal that created it.
            public var principal: String?
            /// Creates a persistence.
            public init(id: String, principal: String? = nil) {
                self.id = id
                self.principal = principal
            }
        }
        /// `Volume`: where the volume is mounted in the task's sandbox.
        public struct Volume: Hashable, Codable, Sendable {
            /// `RW` or `RO`.
            public var mode: String
            /// Path relative to the sandbox.
            public var containerPath: String
            enum CodingKeys: String, CodingKey {
                case mode
                case containerPath = "container_path"
            }
            /// Creates a volume.
            public init(mode: String = "RW", containerPath: String) {
                self.mode = mode
                self.containerPath = containerPath
            }
        }
        /// Set for persistent volumes.
        public var persistence: Persistence?
        /// The mount.
        public var volume: Volume?
        /// Creates a disk info.
        public init(persistence: Persistence?, volume: Volume?) {
            self.persistence = persistence
            self.volume = volume
        }
    }

    /// `Resource`, with the reservation and volume fields CacheFramework's flat `Resource` leaves out.
    public struct Resource: Hashable, Codable, Sendable {
        /// `cpus`, `mem`, `disk`, `ports`, …
        public var name: String
        /// Which value field is set.
        public var type: ResourceValueType
        /// SCALAR value.
        public var scalar: ScalarValue?
        /// RANGES value (`{"range": [{"begin", "end"}]}`).
        public var ranges: RangeSet?
        /// SET value.
        public var set: SetValue?
        /// Deprecated pre-reservation-refinement role (`*`: unreserved).
        public var role: String?
        /// The role the resource is allocated to (in offers; copy it into launches).
        public var allocationInfo: AllocationInfo?
        /// The reservation stack (empty/absent: unreserved).
        public var reservations: [ReservationInfo]?
        /// Persistent volume info of a `disk` resource.
        public var disk: DiskInfo?

        enum CodingKeys: String, CodingKey {
            case name, type, scalar, ranges, set, role
            case allocationInfo = "allocation_info"
            case reservations, disk
        }

        /// Creates a resource.
        public init(
            name: String, type: ResourceValueType, scalar: ScalarValue? = nil, ranges: RangeSet? = nil,
            set: SetValue? = nil, role: String? = nil, allocationInfo: AllocationInfo? = nil,
            reservations: [ReservationInfo]? = nil, disk: DiskInfo? = nil
        ) {
            self.name = name
            self.type = type
            self.scalar = scalar
            self.ranges = ranges
            self.set = set
            self.role = role
            self.allocationInfo = allocationInfo
            self.reservations = reservations
            self.disk = disk
        }

        /// The wire form of a CacheFramework resource, allocated to `allocationRole` if given.
        public init(_ resource: CacheFramework.Resource, allocationRole: String?) {
            self.init(
                name: resource.name, type: resource.type, scalar: resource.scalar, ranges: resource.ranges,
                set: resource.set, allocationInfo: allocationRole.map { AllocationInfo(role: $0) })
        }

        /// The flat CacheFramework form (reservation and volume details dropped; the reserved role kept).
        public var model: CacheFramework.Resource {
            var resource = CacheFramework.Resource.scalar(name, 0, role: reservations?.last?.role ?? role)
            resource.type = type
            resource.scalar = scalar
            resource.ranges = ranges
            resource.set = set
            return resource
        }
    }

    /// `Offer`.
    public struct Offer: Hashable, Codable, Sendable {
        /// The offer's id.
        public var id: OfferID
        /// The framework it is for.
        public var frameworkID: FrameworkID
        /// The agent offering.
        public var agentID: AgentID
        /// The agent's hostname.
        public var hostname: String
        /// The offered resources.
        public var resources: [Resource]
        /// The agent's attributes.
        public var attributes: [Attribute]?
        /// Executors of this framework already running on the agent.
        public var executorIDs: [ExecutorID]?
        /// The role the offer is allocated to (MULTI_ROLE).
        public var allocationInfo: AllocationInfo?

        enum CodingKeys: String, CodingKey {
            case id
            case frameworkID = "framework_id"
            case agentID = "agent_id"
            case hostname, resources, attributes
            case executorIDs = "executor_ids"
            case allocationInfo = "allocation_info"
        }

        /// Creates an offer.
        public init(
            id: OfferID, frameworkID: FrameworkID, agentID: AgentID, hostname: String, resources: [Resource],
            attributes: [Attribute]? = nil, executorIDs: [ExecutorID]? = nil, allocationInfo: AllocationInfo? = nil
        ) {
            self.id = id
            self.frameworkID = frameworkID
            self.agentID = agentID
            self.hostname = hostname
            self.resources = resources
            self.attributes = attributes
            self.executorIDs = executorIDs
            self.allocationInfo = allocationInfo
        }

        /// The CacheFramework form.
        public var model: CacheFramework.Offer {
            CacheFramework.Offer(
                id: id, frameworkID: frameworkID, agentID: agentID, hostname: hostname,
                resources: resources.map(\.model), attributes: attributes ?? [])
        }
    }

    /// `Environment`.
    public struct Environment: Hashable, Codable, Sendable {
        /// `Environment.Variable` (a plain VALUE variable).
        public struct Variable: Hashable, Codable, Sendable {
            /// The name.
            public var name: String
            /// `VALUE` (or `SECRET`, unused here).
            public var type: String?
            /// The value.
            public var value: String?
            /// Creates a variable.
            public init(name: String, value: String) {
                self.name = name
                self.type = "VALUE"
                self.value = value
            }
        }
        /// The variables.
        public var variables: [Variable]
        /// Creates an environment.
        public init(variables: [Variable]) { self.variables = variables }
    }

    /// `CommandInfo`.
    public struct CommandInfo: Hashable, Codable, Sendable {
        /// The executable, or the shell command line when `shell` is true.
        public var value: String?
        /// argv (including argv[0]) when `shell` is false.
        public var arguments: [String]?
        /// Whether `value` runs under `/bin/sh -c` (proto default true).
        public var shell: Bool?
        /// Environment variables.
        public var environment: Environment?
        /// The user to run as.
        public var user: String?

        /// Creates a command.
        public init(
            value: String?, arguments: [String]? = nil, shell: Bool? = nil, environment: Environment? = nil,
            user: String? = nil
        ) {
            self.value = value
            self.arguments = arguments
            self.shell = shell
            self.environment = environment
            self.user = user
        }
    }

    /// `ExecutorInfo` (for LAUNCH_GROUP's default executor).
    public struct ExecutorInfo: Hashable, Codable, Sendable {
        /// `DEFAULT` or `CUSTOM`.
        public var type: String?
        /// The executor's id.
        public var executorID: ExecutorID
        /// The framework.
        public var frameworkID: FrameworkID?
        /// The executor's own resources.
        public var resources: [Resource]
        /// The command of a CUSTOM executor.
        public var command: CommandInfo?
        enum CodingKeys: String, CodingKey {
            case type
            case executorID = "executor_id"
            case frameworkID = "framework_id"
            case resources, command
        }
        /// Creates an executor info.
        public init(
            type: String? = "DEFAULT", executorID: ExecutorID, frameworkID: FrameworkID?, resources: [Resource],
            command: CommandInfo? = nil
        ) {
            self.type = type
            self.executorID = executorID
            self.frameworkID = frameworkID
            self.resources = resources
            self.command = command
        }
    }

    /// `TaskInfo`.
    public struct TaskInfo: Hashable, Codable, Sendable {
        /// A human-readable name.
        public var name: String
        /// The scheduler-chosen id.
        public var taskID: TaskID
        /// The agent to run on.
        public var agentID: AgentID
        /// The resources it uses.
        public var resources: [Resource]
        /// The command (tasks without a custom executor).
        public var command: CommandInfo?
        /// Labels.
        public var labels: Labels?

        enum CodingKeys: String, CodingKey {
            case name
            case taskID = "task_id"
            case agentID = "agent_id"
            case resources, command, labels
        }

        /// Creates a task info.
        public init(
            name: String, taskID: TaskID, agentID: AgentID, resources: [Resource], command: CommandInfo?,
            labels: Labels? = nil
        ) {
            self.name = name
            self.taskID = taskID
            self.agentID = agentID
            self.resources = resources
            self.command = command
            self.labels = labels
        }

        /// The wire form of a CacheFramework task: a non-shell command whose argv[0] is the executable, resources
        /// allocated to `allocationRole`, labels sorted by key.
        public init(_ info: CacheFramework.TaskInfo, allocationRole: String?) {
            let environment = info.command.environment.isEmpty
                ? nil
                : Environment(variables: info.command.environment.keys.sorted().map {
                    Environment.Variable(name: $0, value: info.command.environment[$0]!)
                })
            let command = info.command.shell
                ? CommandInfo(value: info.command.value, shell: true, environment: environment)
                : CommandInfo(
                    value: info.command.value, arguments: [info.command.value] + info.command.arguments, shell: false,
                    environment: environment)
            self.init(
                name: info.name, taskID: info.taskID, agentID: info.agentID,
                resources: info.resources.map { Resource($0, allocationRole: allocationRole) }, command: command,
                labels: info.labels.isEmpty ? nil : Labels(info.labels))
        }

        /// The CacheFramework form (argv[0] dropped from the arguments of a non-shell command).
        public var model: CacheFramework.TaskInfo {
            let shell = command?.shell ?? true
            var environment: [String: String] = [:]
            for variable in command?.environment?.variables ?? [] { environment[variable.name] = variable.value ?? "" }
            return CacheFramework.TaskInfo(
                name: name, taskID: taskID, agentID: agentID, resources: resources.map(\.model),
                command: CacheFramework.CommandInfo(
                    value: command?.value ?? "", arguments: shell ? [] : Array((command?.arguments ?? []).dropFirst()),
                    shell: shell, environment: environment),
                labels: labels?.dictionary ?? [:])
        }
    }

    /// `TaskGroupInfo`.
    public struct TaskGroupInfo: Hashable, Codable, Sendable {
        /// The tasks launched together.
        public var tasks: [TaskInfo]
        /// Creates a group.
        public init(tasks: [TaskInfo]) { self.tasks = tasks }
    }

    /// `TaskStatus`.
    public struct TaskStatus: Hashable, Codable, Sendable {
        /// The task.
        public var taskID: TaskID
        /// Its state.
        public var state: TaskState
        /// A human-readable message.
        public var message: String?
        /// `SOURCE_MASTER`, `SOURCE_AGENT` or `SOURCE_EXECUTOR`.
        public var source: String?
        /// `REASON_…`.
        public var reason: String?
        /// Executor data (base64).
        public var data: String?
        /// The agent.
        public var agentID: AgentID?
        /// The executor.
        public var executorID: ExecutorID?
        /// Seconds since the epoch.
        public var timestamp: Double?
        /// Base64 bytes; present when the update must be acknowledged.
        public var uuid: String?
        /// Health check result.
        public var healthy: Bool?
        /// When the task became unreachable (TASK_UNREACHABLE).
        public var unreachableTime: TimeInfo?

        enum CodingKeys: String, CodingKey {
            case taskID = "task_id"
            case state, message, source, reason, data
            case agentID = "agent_id"
            case executorID = "executor_id"
            case timestamp, uuid, healthy
            case unreachableTime = "unreachable_time"
        }

        /// Creates a status.
        public init(
            taskID: TaskID, state: TaskState, message: String? = nil, source: String? = nil, reason: String? = nil,
            agentID: AgentID? = nil, executorID: ExecutorID? = nil, timestamp: Double? = nil, uuid: String? = nil
        ) {
            self.taskID = taskID
            self.state = state
            self.message = message
            self.source = source
            self.reason = reason
            self.agentID = agentID
            self.executorID = executorID
            self.timestamp = timestamp
            self.uuid = uuid
        }

        /// The CacheFramework form (the uuid stays the base64 text; it is echoed back unchanged in ACKNOWLEDGE).
        public var model: CacheFramework.TaskStatus {
            CacheFramework.TaskStatus(
                taskID: taskID, state: state, reason: reason, message: message, agentID: agentID, uuid: uuid,
                timestamp: timestamp)
        }
    }

    /// `OperationStatus`: feedback on an offer operation that carried an `id`.
    public struct OperationStatus: Hashable, Codable, Sendable {
        /// The operation's id.
        public var operationID: OperationID?
        /// `OPERATION_PENDING`, `OPERATION_FINISHED`, `OPERATION_FAILED`, `OPERATION_ERROR`, `OPERATION_DROPPED`, …
        public var state: String
        /// A message.
        public var message: String?
        /// Present when the update must be acknowledged (ACKNOWLEDGE_OPERATION_STATUS).
        public var uuid: UUIDValue?
        /// The agent.
        public var agentID: AgentID?
        /// The resources after the operation (e.g. the reserved form).
        public var convertedResources: [Resource]?

        enum CodingKeys: String, CodingKey {
            case operationID = "operation_id"
            case state, message, uuid
            case agentID = "agent_id"
            case convertedResources = "converted_resources"
        }

        /// Creates a status.
        public init(
            operationID: OperationID?, state: String, message: String? = nil, uuid: UUIDValue? = nil,
            agentID: AgentID? = nil, convertedResources: [Resource]? = nil
        ) {
            self.operationID = operationID
            self.state = state
            self.message = message
            self.uuid = uuid
            self.agentID = agentID
            self.convertedResources = convertedResources
        }
    }

    /// `Offer.Operation`: what an ACCEPT does with the offered resources.
    public struct Operation: Hashable, Codable, Sendable {
        /// `Offer.Operation.Type`.
        public enum OperationType: String, Hashable, Codable, Sendable {
            case unknown = "UNKNOWN"
            case launch = "LAUNCH"
            case launchGroup = "LAUNCH_GROUP"
            case reserve = "RESERVE"
            case unreserve = "UNRESERVE"
            case create = "CREATE"
            case destroy = "DESTROY"
            case growVolume = "GROW_VOLUME"
            case shrinkVolume = "SHRINK_VOLUME"
            case createDisk = "CREATE_DISK"
            case destroyDisk = "DESTROY_DISK"

            public init(from decoder: any Decoder) throws {
                self = OperationType(rawValue: try decoder.singleValueContainer().decode(String.self)) ?? .unknown
            }
        }
        /// `Offer.Operation.Launch`.
        public struct Launch: Hashable, Codable, Sendable {
            /// The tasks.
            public var taskInfos: [TaskInfo]
            enum CodingKeys: String, CodingKey { case taskInfos = "task_infos" }
            /// Creates a launch.
            public init(taskInfos: [TaskInfo]) { self.taskInfos = taskInfos }
        }
        /// `Offer.Operation.LaunchGroup`.
        public struct LaunchGroup: Hashable, Codable, Sendable {
            /// The default executor running the group.
            public var executor: ExecutorInfo
            /// The tasks.
            public var taskGroup: TaskGroupInfo
            enum CodingKeys: String, CodingKey {
                case executor
                case taskGroup = "task_group"
            }
            /// Creates a launch group.
            public init(executor: ExecutorInfo, taskGroup: TaskGroupInfo) {
                self.executor = executor
                self.taskGroup = taskGroup
            }
        }
        /// `Offer.Operation.Reserve` / `Unreserve`.
        public struct Reserve: Hashable, Codable, Sendable {
            /// The resources with their new reservation stack.
            public var resources: [Resource]
            /// Creates a reserve.
            public init(resources: [Resource]) { self.resources = resources }
        }
        /// `Offer.Operation.Create` / `Destroy`.
        public struct Create: Hashable, Codable, Sendable {
            /// Reserved disk resources with `disk.persistence` set.
            public var volumes: [Resource]
            /// Creates a create.
            public init(volumes: [Resource]) { self.volumes = volumes }
        }

        /// The operation type.
        public var type: OperationType
        /// Set to get UPDATE_OPERATION_STATUS feedback.
        public var id: OperationID?
        /// LAUNCH.
        public var launch: Launch?
        /// LAUNCH_GROUP.
        public var launchGroup: LaunchGroup?
        /// RESERVE.
        public var reserve: Reserve?
        /// UNRESERVE.
        public var unreserve: Reserve?
        /// CREATE.
        public var create: Create?
        /// DESTROY.
        public var destroy: Create?

        enum CodingKeys: String, CodingKey {
            case type, id, launch
            case launchGroup = "launch_group"
            case reserve, unreserve, create, destroy
        }

        /// Creates an operation of `type`; set the matching field.
        public init(type: OperationType, id: OperationID? = nil) {
            self.type = type
            self.id = id
        }

        /// LAUNCH `tasks`.
        public static func launch(_ tasks: [TaskInfo]) -> Operation {
            var operation = Operation(type: .launch)
            operation.launch = Launch(taskInfos: tasks)
            return operation
        }

        /// RESERVE `resources` (each carrying its new reservation stack).
        public static func reserve(_ resources: [Resource], id: OperationID? = nil) -> Operation {
            var operation = Operation(type: .reserve, id: id)
            operation.reserve = Reserve(resources: resources)
            return operation
        }

        /// CREATE persistent `volumes`.
        public static func create(_ volumes: [Resource], id: OperationID? = nil) -> Operation {
            var operation = Operation(type: .create, id: id)
            operation.create = Create(volumes: volumes)
            return operation
        }
    }
}
