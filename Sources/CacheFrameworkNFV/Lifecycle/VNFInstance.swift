// The NFV lifecycle's durable records: VNF instances with their VNFCs (one task per VDU instance), lifecycle
// operation occurrences (SOL003 `VnfLcmOpOcc`) and the intents and batches through which `NFVStateMachine` records
// them before acting, so a restarted framework resumes or rolls back an operation instead of losing it.

public import CacheFramework

/// SOL003 `instantiationState`.
public enum InstantiationState: String, Hashable, Codable, Sendable {
    case notInstantiated = "NOT_INSTANTIATED"
    case instantiated = "INSTANTIATED"
}

/// SOL003 `operationalState` (`operate` changes it).
public enum OperationalState: String, Hashable, Codable, Sendable {
    case started = "STARTED"
    case stopped = "STOPPED"
}

/// One VNFC: a running (or to-be-run) instance of a VDU.
public struct VNFCRecord: Hashable, Codable, Sendable {
    /// `<vdu>.<index>`, unique in the instance.
    public var id: String
    /// The VDU.
    public var vdu: String
    /// Its index among the VDU's VNFCs.
    public var index: Int
    /// The task running it (nil: not launched, or its task ended and a replacement is due).
    public var taskID: TaskID?
    /// The agent of the task, or of the last task (a heal prefers the same agent and ports).
    public var agentID: AgentID?
    /// That agent's hostname.
    public var hostname: String?
    /// That agent's failure domain.
    public var failureDomain: String?
    /// Ports by VDU port name.
    public var ports: [String: UInt64]
    /// The last reported state of the task (nil while launching).
    public var state: TaskState?
    /// When the task ended, if it did (a heal waits a while for the same ports before moving).
    public var endedAt: SchedulerTime?
    /// How many tasks this VNFC has had.
    public var incarnation: Int
    /// The descriptor version its task runs (set at launch; nil for records written before versions were kept).
    public var vnfdVersion: String? = nil
    /// A rolling update's new VNFC: the id of the VNFC it replaces (it takes that id once the old task ended).
    public var replaces: String? = nil
    /// A rolling update's new VNFC: when what forwarded to the VNFC it replaces was pointed at it.
    public var repointedAt: SchedulerTime? = nil
    /// Tasks of this VNFC in a row that ended before they ran (nil once one ran): past the state machine's
    /// `maximumStartFailures` it is not launched again until its operation is retried.
    public var startFailures: Int? = nil
    /// How the last of those tasks ended (state and the agent's message), for the operation's error.
    public var lastStartFailure: String? = nil

    /// Whether the VNFC's task is running.
    public var isRunning: Bool { taskID != nil && state == .running }
    /// `host:port` of the named port.
    public func endpoint(_ port: String) -> String? {
        guard let hostname, let number = ports[port] else { return nil }
        return "\(hostname):\(number)"
    }
}

/// A VNF instance (SOL003 `VnfInstance`).
public struct VNFInstance: Hashable, Codable, Sendable {
    /// The instance id.
    public var id: String
    /// A name given at creation.
    public var name: String
    /// The descriptor it was created from.
    public var vnfd: VNFDescriptor
    /// The flavour it is instantiated to.
    public var flavourID: String
    /// The instantiation level (scale to level changes it).
    public var levelID: String
    /// The scale level of each aspect.
    public var scaleLevels: [String: Int]
    /// Endpoints each external virtual link is bound to (`host:port`).
    public var extLinks: [String: [String]]
    /// Instantiated or not.
    public var instantiationState: InstantiationState
    /// Started or stopped.
    public var operationalState: OperationalState
    /// The VNFCs by id.
    public var vnfcs: [String: VNFCRecord]
    /// Which of the instance's traffic links run over the secure channel (nil: all plaintext).
    public var linkSecurity: VNFLinkSecurity? = nil

    /// The flavour.
    public var flavour: DeploymentFlavour { vnfd.flavour(flavourID)! }

    /// How many VNFCs of each VDU the instance should run now.
    public var desiredCounts: [String: Int] {
        guard instantiationState == .instantiated, operationalState == .started, let level = flavour.level(levelID) else {
            return Dictionary(uniqueKeysWithValues: vnfd.vdus.map { ($0.id, 0) })
        }
        return vnfd.vnfcCounts(flavour: flavour, level: level, scaleLevels: scaleLevels)
    }

    /// Endpoints of the instance's inbound connection points on `link` (running VNFCs only).
    public func endpoints(onLink link: String) -> [String] {
        var result: [String] = []
        for point in vnfd.connectionPoints where point.virtualLink == link && point.direction == .inbound {
            for vnfc in vnfcs.values.sorted(by: { $0.id < $1.id }) where vnfc.vdu == point.vdu && vnfc.taskID != nil {
                if let port = point.port, let endpoint = vnfc.endpoint(port) { result.append(endpoint) }
            }
        }
        return result
    }
}

extension VNFInstance {
    /// Where internal link `link` leads now, for the processes that follow its file: the inbound endpoints of the
    /// VNFCs with a task, a rolling update's new VNFC in place of the one it replaces once traffic was pointed at it
    /// (`repointedAt`), and not before.
    public func internalLinkEndpoints(_ link: String) -> [String] {
        var result: [String] = []
        let sorted = vnfcs.values.sorted { $0.id < $1.id }
        for point in vnfd.connectionPoints where point.virtualLink == link && point.direction == .inbound {
            guard let port = point.port else { continue }
            for vnfc in sorted where vnfc.vdu == point.vdu && vnfc.taskID != nil && vnfc.replaces == nil {
                let successor = sorted.first { $0.replaces == vnfc.id && $0.repointedAt != nil && $0.taskID != nil }
                if let endpoint = (successor ?? vnfc).endpoint(port) { result.append(endpoint) }
            }
        }
        return result
    }
}

/// SOL003 `LcmOperationType`.
public enum LcmOperationType: String, Hashable, Codable, Sendable {
    case instantiate = "INSTANTIATE"
    case scale = "SCALE"
    case scaleToLevel = "SCALE_TO_LEVEL"
    case heal = "HEAL"
    case operate = "OPERATE"
    case terminate = "TERMINATE"
    /// SOL003 "change current VNF package": a rolling update to a new descriptor version.
    case changeVnfpkg = "CHANGE_VNFPKG"
}

/// SOL003 `LcmOperationStateType`.
public enum LcmOperationState: String, Hashable, Codable, Sendable {
    case starting = "STARTING"
    case processing = "PROCESSING"
    case completed = "COMPLETED"
    case failedTemp = "FAILED_TEMP"
    case rollingBack = "ROLLING_BACK"
    case rolledBack = "ROLLED_BACK"
    case failed = "FAILED"

    /// Whether the occurrence is over.
    public var isFinal: Bool { self == .completed || self == .rolledBack || self == .failed }
}

/// What an instance looked like before an operation, so a rollback can restore it.
public struct RollbackPoint: Hashable, Codable, Sendable {
    /// The instantiation state before.
    public var instantiationState: InstantiationState
    /// The operational state before.
    public var operationalState: OperationalState
    /// The level before.
    public var levelID: String
    /// The scale levels before.
    public var scaleLevels: [String: Int]
    /// The descriptor before (a rolling update only).
    public var vnfd: VNFDescriptor? = nil
}

/// How a terminate stops the VNFCs.
public enum TerminationType: String, Hashable, Codable, Sendable {
    /// Kill, wait up to the graceful timeout for the tasks to end, then forget them.
    case graceful = "GRACEFUL"
    /// Kill and forget at once.
    case forceful = "FORCEFUL"
}

/// A lifecycle operation occurrence (SOL003 `VnfLcmOpOcc`).
public struct LcmOpOcc: Hashable, Codable, Sendable {
    /// The occurrence id.
    public var id: String
    /// The instance it is about.
    public var vnfInstanceID: String
    /// The operation.
    public var operation: LcmOperationType
    /// Its state.
    public var state: LcmOperationState
    /// When it started.
    public var startTime: SchedulerTime
    /// When it entered its state.
    public var stateEnteredTime: SchedulerTime
    /// When PROCESSING gives up (FAILED_TEMP).
    public var deadline: SchedulerTime
    /// Whether the framework started it (auto-heal) rather than a user.
    public var isAutomaticInvocation: Bool
    /// The operation's parameters, for queries (`aspect=fw-scale`, `steps=1`, …).
    public var parameters: [String: String]
    /// The instance before the operation.
    public var rollbackPoint: RollbackPoint
    /// Why it failed, if it did.
    public var error: String?
    /// How many times it was retried.
    public var retries: Int
    /// Terminate only: how.
    public var terminationType: TerminationType?
}

/// One durable change of NFV state.
public enum NFVIntent: Hashable, Codable, Sendable {
    /// Create or replace an instance.
    case putInstance(VNFInstance)
    /// Forget an instance.
    case deleteInstance(String)
    /// Create or replace an operation occurrence.
    case putOperation(LcmOpOcc)
    /// The next number for instance, occurrence and task ids.
    case setNextNumber(UInt64)
}

/// Intents applied atomically.
public struct NFVBatch: Hashable, Codable, Sendable {
    /// Increases with every batch.
    public var id: UInt64
    /// The changes in order.
    public var intents: [NFVIntent]
    /// Creates a batch.
    public init(id: UInt64, intents: [NFVIntent]) {
        self.id = id
        self.intents = intents
    }
}

/// Everything the NFV store holds.
public struct NFVSnapshot: Hashable, Codable, Sendable {
    /// Instances by id.
    public var instances: [String: VNFInstance]
    /// Operation occurrences by id.
    public var operations: [String: LcmOpOcc]
    /// The next id number.
    public var nextNumber: UInt64

    /// Creates a snapshot (empty by default).
    public init(instances: [String: VNFInstance] = [:], operations: [String: LcmOpOcc] = [:], nextNumber: UInt64 = 1) {
        self.instances = instances
        self.operations = operations
        self.nextNumber = nextNumber
    }

    /// Applies a batch.
    public mutating func apply(_ batch: NFVBatch) {
        for intent in batch.intents {
            switch intent {
            case .putInstance(let instance): instances[instance.id] = instance
            case .deleteInstance(let id): instances[id] = nil
            case .putOperation(let operation): operations[operation.id] = operation
            case .setNextNumber(let number): nextNumber = max(nextNumber, number)
            }
        }
    }
}

/// Durable storage of NFV state.
///
/// ## Implementing NFVStore
/// `apply` returns once the batch is durable and applies it all or nothing; `load` returns the result of every
/// batch applied.
public protocol NFVStore: Sendable {
    /// The state as of the last applied batch.
    func load() async throws -> NFVSnapshot
    /// Durably applies a batch.
    func apply(_ batch: NFVBatch) async throws
}

/// An `NFVStore` in memory, for tests (survives a state machine "restart" within one process).
public actor InMemoryNFVStore: NFVStore {
    private var snapshot: NFVSnapshot
    /// Creates a store.
    public init(_ snapshot: NFVSnapshot = NFVSnapshot()) { self.snapshot = snapshot }
    public func load() async throws -> NFVSnapshot { snapshot }
    public func apply(_ batch: NFVBatch) async throws { snapshot.apply(batch) }
}

/// How a VNF instance's traffic links are secured; set by a network service deployment before instantiation and
/// handed to each VNFC through its environment (`VNFTaskTemplate.Environment`).
///
/// A secured link carries the secure channel from one VNF's process to the next one's: each end presents the identity
/// the framework issued to its VNFC (node id = task id, role vnf) and accepts only peers whose node id starts with one
/// of the expected prefixes (`nodeIDPrefix(of:)` of the VNF instance at the other end), so a healed or scaled peer VNFC
/// is accepted and a revoked one is not.
public struct VNFLinkSecurity: Hashable, Codable, Sendable {
    /// Node id prefixes accepted on the instance's inbound connection points; nil: inbound traffic is plaintext.
    public var ingressPeers: [String]?
    /// Node id prefixes the instance's outbound links must reach; nil: outbound traffic is plaintext.
    public var egressPeers: [String]?

    /// Creates a setting.
    public init(ingressPeers: [String]? = nil, egressPeers: [String]? = nil) {
        self.ingressPeers = ingressPeers
        self.egressPeers = egressPeers
    }

    /// The node id prefix shared by every VNFC task of VNF instance `instanceID`.
    public static func nodeIDPrefix(of instanceID: String) -> String { "\(VNFTaskTemplate.taskPrefix)\(instanceID)." }
}
