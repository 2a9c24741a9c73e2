// The v1 scheduler API's two messages (include/mesos/v1/scheduler/scheduler.proto, Mesos 1.11): `Call`, which a
// scheduler POSTs to /api/v1/scheduler, and `Event`, which the master streams back on the SUBSCRIBE connection.
// Both are flat structs like the proto: a `type` plus one optional field per type, so the JSON is the proto's JSON
// mapping. Wire traps kept visible here: OFFERS is `"offers": {"offers": [...]}`; ERROR is `"error": {"message"}`;
// `uuid` of a task status is base64 text echoed back verbatim in ACKNOWLEDGE.

public import CacheFramework

extension Mesos {
    /// A scheduler call (`scheduler.Call`).
    public struct Call: Hashable, Codable, Sendable {
        /// `Call.Type`.
        public enum CallType: String, Hashable, Codable, Sendable {
            case unknown = "UNKNOWN"
            case subscribe = "SUBSCRIBE"
            case teardown = "TEARDOWN"
            case accept = "ACCEPT"
            case decline = "DECLINE"
            case acceptInverseOffers = "ACCEPT_INVERSE_OFFERS"
            case declineInverseOffers = "DECLINE_INVERSE_OFFERS"
            case revive = "REVIVE"
            case kill = "KILL"
            case shutdown = "SHUTDOWN"
            case acknowledge = "ACKNOWLEDGE"
            case acknowledgeOperationStatus = "ACKNOWLEDGE_OPERATION_STATUS"
            case reconcile = "RECONCILE"
            case reconcileOperations = "RECONCILE_OPERATIONS"
            case message = "MESSAGE"
            case request = "REQUEST"
            case suppress = "SUPPRESS"
            case updateFramework = "UPDATE_FRAMEWORK"

            public init(from decoder: any Decoder) throws {
                self = CallType(rawValue: try decoder.singleValueContainer().decode(String.self)) ?? .unknown
            }
        }

        /// `Call.Subscribe`.
        public struct Subscribe: Hashable, Codable, Sendable {
            /// The framework; `framework_info.id` set means resubscription as that framework.
            public var frameworkInfo: FrameworkInfo
            /// Roles to subscribe to in the suppressed state.
            public var suppressedRoles: [String]?
            enum CodingKeys: String, CodingKey {
                case frameworkInfo = "framework_info"
                case suppressedRoles = "suppressed_roles"
            }
            /// Creates a subscribe.
            public init(frameworkInfo: FrameworkInfo, suppressedRoles: [String]? = nil) {
                self.frameworkInfo = frameworkInfo
                self.suppressedRoles = suppressedRoles
            }
        }
        /// `Call.Accept`.
        public struct Accept: Hashable, Codable, Sendable {
            /// Offers of one agent.
            public var offerIDs: [OfferID]
            /// What to do with them.
            public var operations: [Operation]
            /// How long to not re-offer what is left over.
            public var filters: Filters?
            enum CodingKeys: String, CodingKey {
                case offerIDs = "offer_ids"
                case operations, filters
            }
            /// Creates an accept.
            public init(offerIDs: [OfferID], operations: [Operation], filters: Filters?) {
                self.offerIDs = offerIDs
                self.operations = operations
                self.filters = filters
            }
        }
        /// `Call.Decline`.
        public struct Decline: Hashable, Codable, Sendable {
            /// The offers.
            public var offerIDs: [OfferID]
            /// `refuse_seconds`.
            public var filters: Filters?
            enum CodingKeys: String, CodingKey {
                case offerIDs = "offer_ids"
                case filters
            }
            /// Creates a decline.
            public init(offerIDs: [OfferID], filters: Filters?) {
                self.offerIDs = offerIDs
                self.filters = filters
            }
        }
        /// `Call.Revive` / `Call.Suppress`.
        public struct Roles: Hashable, Codable, Sendable {
            /// The roles (absent: all the framework's roles).
            public var roles: [String]?
            /// Creates the message.
            public init(roles: [String]?) { self.roles = roles }
        }
        /// `Call.Kill`.
        public struct Kill: Hashable, Codable, Sendable {
            /// The task.
            public var taskID: TaskID
            /// Its agent, if known.
            public var agentID: AgentID?
            enum CodingKeys: String, CodingKey {
                case taskID = "task_id"
                case agentID = "agent_id"
            }
            /// Creates a kill.
            public init(taskID: TaskID, agentID: AgentID?) {
                self.taskID = taskID
                self.agentID = agentID
            }
        }
        /// `Call.Shutdown`: stop a custom executor.
        public struct Shutdown: Hashable, Codable, Sendable {
            /// The executor.
            public var executorID: ExecutorID
            /// Its agent.
            public var agentID: AgentID
            enum CodingKeys: String, CodingKey {
                case executorID = "executor_id"
                case agentID = "agent_id"
            }
            /// Creates a shutdown.
            public init(executorID: ExecutorID, agentID: AgentID) {
                self.executorID = executorID
                self.agentID = agentID
            }
        }
        /// `Call.Acknowledge`.
        public struct Acknowledge: Hashable, Codable, Sendable {
            /// The agent of the update.
            public var agentID: AgentID
            /// The task.
            public var taskID: TaskID
            /// The update's `uuid`, base64 as received.
            public var uuid: String
            enum CodingKeys: String, CodingKey {
                case agentID = "agent_id"
                case taskID = "task_id"
                case uuid
            }
            /// Creates an acknowledgement.
            public init(agentID: AgentID, taskID: TaskID, uuid: String) {
                self.agentID = agentID
                self.taskID = taskID
                self.uuid = uuid
            }
        }
        /// `Call.AcknowledgeOperationStatus`.
        public struct AcknowledgeOperationStatus: Hashable, Codable, Sendable {
            /// The agent.
            public var agentID: AgentID?
            /// The status's uuid bytes (base64).
            public var uuid: String
            /// The operation.
            public var operationID: OperationID
            enum CodingKeys: String, CodingKey {
                case agentID = "agent_id"
                case uuid
                case operationID = "operation_id"
            }
            /// Creates an acknowledgement.
            public init(agentID: AgentID?, uuid: String, operationID: OperationID) {
                self.agentID = agentID
                self.uuid = uuid
                self.operationID = operationID
            }
        }
        /// `Call.Reconcile`.
        public struct Reconcile: Hashable, Codable, Sendable {
            /// `Call.Reconcile.Task`.
            public struct Task: Hashable, Codable, Sendable {
                /// The task.
                public var taskID: TaskID
                /// Its agent, if known.
                public var agentID: AgentID?
                enum CodingKeys: String, CodingKey {
                    case taskID = "task_id"
                    case agentID = "agent_id"
                }
                /// Creates an entry.
                public init(taskID: TaskID, agentID: AgentID?) {
                    self.taskID = taskID
                    self.agentID = agentID
                }
            }
            /// The tasks (empty: implicit reconciliation of every task).
            public var tasks: [Task]
            /// Creates a reconcile.
            public init(tasks: [Task]) { self.tasks = tasks }
            public init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                tasks = try container.decodeIfPresent([Task].self, forKey: .tasks) ?? []
            }
        }
        /// `Call.Message`.
        public struct Message: Hashable, Codable, Sendable {
            /// The agent.
            public var agentID: AgentID
            /// The executor.
            public var executorID: ExecutorID
            /// Base64 bytes.
            public var data: String
            enum CodingKeys: String, CodingKey {
                case agentID = "agent_id"
                case executorID = "executor_id"
                case data
            }
            /// Creates a message.
            public init(agentID: AgentID, executorID: ExecutorID, data: String) {
                self.agentID = agentID
                self.executorID = executorID
                self.data = data
            }
        }

        /// The framework (required on every call except a first SUBSCRIBE).
        public var frameworkID: FrameworkID?
        /// The call type.
        public var type: CallType
        /// SUBSCRIBE.
        public var subscribe: Subscribe?
        /// ACCEPT.
        public var accept: Accept?
        /// DECLINE.
        public var decline: Decline?
        /// REVIVE.
        public var revive: Roles?
        /// KILL.
        public var kill: Kill?
        /// SHUTDOWN.
        public var shutdown: Shutdown?
        /// ACKNOWLEDGE.
        public var acknowledge: Acknowledge?
        /// ACKNOWLEDGE_OPERATION_STATUS.
        public var acknowledgeOperationStatus: AcknowledgeOperationStatus?
        /// RECONCILE.
        public var reconcile: Reconcile?
        /// MESSAGE.
        public var message: Message?
        /// SUPPRESS.
        public var suppress: Roles?

        enum CodingKeys: String, CodingKey {
            case frameworkID = "framework_id"
            case type, subscribe, accept, decline, revive, kill, shutdown, acknowledge
            case acknowledgeOperationStatus = "acknowledge_operation_status"
            case reconcile, message, suppress
        }

        /// Creates a call of `type`; set the matching field.
        public init(frameworkID: FrameworkID?, type: CallType) {
            self.frameworkID = frameworkID
            self.type = type
        }

        /// Checks what the master checks before acting (`validation::scheduler::call::validate`): the field of the
        /// call's type is set, and every call but SUBSCRIBE names a framework. Returns the reason it is invalid.
        public func validationError() -> String? {
            if type != .subscribe && frameworkID == nil { return "Expecting 'framework_id' to be present" }
            let missing: String? =
                switch type {
                case .subscribe: subscribe == nil ? "subscribe" : nil
                case .accept: accept == nil ? "accept" : nil
                case .decline: decline == nil ? "decline" : nil
                case .kill: kill == nil ? "kill" : nil
                case .shutdown: shutdown == nil ? "shutdown" : nil
                case .acknowledge: acknowledge == nil ? "acknowledge" : nil
                case .acknowledgeOperationStatus: acknowledgeOperationStatus == nil ? "acknowledge_operation_status" : nil
                case .reconcile: reconcile == nil ? "reconcile" : nil
                case .message: message == nil ? "message" : nil
                case .unknown: "type"
                default: nil
                }
            if let missing { return "Expecting '\(missing)' to be present" }
            if type == .subscribe, let id = subscribe?.frameworkInfo.id, let frameworkID, id != frameworkID {
                return "'framework_id' differs from 'subscribe.framework_info.id'"
            }
            return nil
        }
    }

    /// A master event (`scheduler.Event`).
    public struct Event: Hashable, Codable, Sendable {
        /// `Event.Type`.
        public enum EventType: String, Hashable, Codable, Sendable {
            case unknown = "UNKNOWN"
            case subscribed = "SUBSCRIBED"
            case offers = "OFFERS"
            case inverseOffers = "INVERSE_OFFERS"
            case rescind = "RESCIND"
            case rescindInverseOffer = "RESCIND_INVERSE_OFFER"
            case update = "UPDATE"
            case updateOperationStatus = "UPDATE_OPERATION_STATUS"
            case message = "MESSAGE"
            case failure = "FAILURE"
            case error = "ERROR"
            case heartbeat = "HEARTBEAT"

            public init(from decoder: any Decoder) throws {
                self = EventType(rawValue: try decoder.singleValueContainer().decode(String.self)) ?? .unknown
            }
        }
        /// `Event.Subscribed`.
        public struct Subscribed: Hashable, Codable, Sendable {
            /// The framework's id (new, or the one it resubscribed with).
            public var frameworkID: FrameworkID
            /// How often the master sends HEARTBEAT.
            public var heartbeatIntervalSeconds: Double?
            /// The leading master.
            public var masterInfo: MasterInfo?
            enum CodingKeys: String, CodingKey {
                case frameworkID = "framework_id"
                case heartbeatIntervalSeconds = "heartbeat_interval_seconds"
                case masterInfo = "master_info"
            }
            /// Creates the message.
            public init(frameworkID: FrameworkID, heartbeatIntervalSeconds: Double?, masterInfo: MasterInfo? = nil) {
                self.frameworkID = frameworkID
                self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
                self.masterInfo = masterInfo
            }
        }
        /// `Event.Offers`: note the nesting, `"offers": {"offers": [...]}`.
        public struct Offers: Hashable, Codable, Sendable {
            /// The offers.
            public var offers: [Offer]
            /// Creates the message.
            public init(offers: [Offer]) { self.offers = offers }
            public init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                offers = try container.decodeIfPresent([Offer].self, forKey: .offers) ?? []
            }
        }
        /// `Event.Rescind`.
        public struct Rescind: Hashable, Codable, Sendable {
            /// The offer no longer valid.
            public var offerID: OfferID
            enum CodingKeys: String, CodingKey { case offerID = "offer_id" }
            /// Creates the message.
            public init(offerID: OfferID) { self.offerID = offerID }
        }
        /// `Event.Update`.
        public struct Update: Hashable, Codable, Sendable {
            /// The status.
            public var status: TaskStatus
            /// Creates the message.
            public init(status: TaskStatus) { self.status = status }
        }
        /// `Event.UpdateOperationStatus`.
        public struct UpdateOperationStatus: Hashable, Codable, Sendable {
            /// The status.
            public var status: OperationStatus
            /// Creates the message.
            public init(status: OperationStatus) { self.status = status }
        }
        /// `Event.Message`.
        public struct Message: Hashable, Codable, Sendable {
            /// The agent.
            public var agentID: AgentID
            /// The executor.
            public var executorID: ExecutorID
            /// Base64 bytes.
            public var data: String
            enum CodingKeys: String, CodingKey {
                case agentID = "agent_id"
                case executorID = "executor_id"
                case data
            }
            /// Creates the message.
            public init(agentID: AgentID, executorID: ExecutorID, data: String) {
                self.agentID = agentID
                self.executorID = executorID
                self.data = data
            }
        }
        /// `Event.Failure`: an agent was removed or an executor ended.
        public struct Failure: Hashable, Codable, Sendable {
            /// The agent.
            public var agentID: AgentID?
            /// The executor (set when an executor ended).
            public var executorID: ExecutorID?
            /// The executor's wait status.
            public var status: Int32?
            enum CodingKeys: String, CodingKey {
                case agentID = "agent_id"
                case executorID = "executor_id"
                case status
            }
            /// Creates the message.
            public init(agentID: AgentID?, executorID: ExecutorID? = nil, status: Int32? = nil) {
                self.agentID = agentID
                self.executorID = executorID
                self.status = status
            }
        }
        /// `Event.Error`.
        public struct Error: Hashable, Codable, Sendable {
            /// What went wrong.
            public var message: String
            /// Creates the message.
            public init(message: String) { self.message = message }
        }

        /// The event type.
        public var type: EventType
        /// SUBSCRIBED.
        public var subscribed: Subscribed?
        /// OFFERS.
        public var offers: Offers?
        /// RESCIND.
        public var rescind: Rescind?
        /// UPDATE.
        public var update: Update?
        /// UPDATE_OPERATION_STATUS.
        public var updateOperationStatus: UpdateOperationStatus?
        /// MESSAGE.
        public var message: Message?
        /// FAILURE.
        public var failure: Failure?
        /// ERROR.
        public var error: Error?

        enum CodingKeys: String, CodingKey {
            case type, subscribed, offers, rescind, update
            case updateOperationStatus = "update_operation_status"
            case message, failure, error
        }

        /// Creates an event of `type`; set the matching field.
        public init(type: EventType) { self.type = type }

        /// SUBSCRIBED.
        public static func subscribed(_ id: FrameworkID, heartbeatIntervalSeconds: Double) -> Event {
            var event = Event(type: .subscribed)
            event.subscribed = Subscribed(frameworkID: id, heartbeatIntervalSeconds: heartbeatIntervalSeconds)
            return event
        }
        /// OFFERS.
        public static func offers(_ offers: [Offer]) -> Event {
            var event = Event(type: .offers)
            event.offers = Offers(offers: offers)
            return event
        }
        /// RESCIND.
        public static func rescind(_ id: OfferID) -> Event {
            var event = Event(type: .rescind)
            event.rescind = Rescind(offerID: id)
            return event
        }
        /// UPDATE.
        public static func update(_ status: TaskStatus) -> Event {
            var event = Event(type: .update)
            event.update = Update(status: status)
            return event
        }
        /// UPDATE_OPERATION_STATUS.
        public static func updateOperationStatus(_ status: OperationStatus) -> Event {
            var event = Event(type: .updateOperationStatus)
            event.updateOperationStatus = UpdateOperationStatus(status: status)
            return event
        }
        /// FAILURE: an agent was removed (the v1 form of `LostSlaveMessage`).
        public static func failure(agentID: AgentID) -> Event {
            var event = Event(type: .failure)
            event.failure = Failure(agentID: agentID)
            return event
        }
        /// ERROR.
        public static func error(_ message: String) -> Event {
            var event = Event(type: .error)
            event.error = Error(message: message)
            return event
        }
        /// HEARTBEAT.
        public static let heartbeat = Event(type: .heartbeat)
    }
}
