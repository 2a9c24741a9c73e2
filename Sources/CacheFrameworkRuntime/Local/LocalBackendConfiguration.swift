// Configuration of the local backend: how this machine is carved into agents, where task sandboxes live, how
// executables are found, and the isolation mode; plus the journal through which launched processes survive a
// framework restart.

public import CacheFramework

/// One local agent: a slice of this machine offered as if it were a separate machine.
public struct LocalAgentSpec: Hashable, Codable, Sendable {
    /// The agent's id.
    public var id: AgentID
    /// The address tasks on it listen on (loopback in plain-process mode).
    public var hostname: String
    /// CPU shares it offers (may exceed the machine's: local agents can overcommit).
    public var cpus: Double
    /// Memory it offers, in MB.
    public var memMB: Double
    /// Disk it offers, in MB.
    public var diskMB: Double
    /// The ports it offers.
    public var ports: ValueRange
    /// Its attributes (rack, zone), which placement uses as failure domains.
    public var attributes: [Attribute]

    /// Creates an agent.
    public init(
        id: AgentID, hostname: String = "127.0.0.1", cpus: Double, memMB: Double, diskMB: Double = 10_240,
        ports: ValueRange, attributes: [Attribute] = []
    ) {
        self.id = id
        self.hostname = hostname
        self.cpus = cpus
        self.memMB = memMB
        self.diskMB = diskMB
        self.ports = ports
        self.attributes = attributes
    }

    /// The agent's total resources.
    public var total: ResourceQuantities {
        ResourceQuantities(cpus: cpus, memMB: memMB, diskMB: diskMB, ports: RangeSet([ports]))
    }

    /// `count` agents splitting `cpus`, `memMB` and the port range `firstPort…` (`portsPerAgent` each) evenly;
    /// agent `i` is `local-i` in rack `r<i>`.
    public static func split(
        count: Int, cpus: Double, memMB: Double, firstPort: UInt64 = 31_000, portsPerAgent: UInt64 = 1_000
    ) -> [LocalAgentSpec] {
        let count = max(1, count)
        return (0..<count).map { index in
            let begin = firstPort + UInt64(index) * portsPerAgent
            return LocalAgentSpec(
                id: AgentID("local-\(index)"), cpus: cpus / Double(count), memMB: (memMB / Double(count)).rounded(.down),
                ports: ValueRange(begin: begin, end: begin + portsPerAgent - 1),
                attributes: [.text(FailureDomainAttribute.rack, "r\(index)")]
            )
        }
    }

    /// One agent with what this machine has: all online CPUs and physical memory.
    public static func wholeMachine(firstPort: UInt64 = 31_000, ports: UInt64 = 1_000) -> [LocalAgentSpec] {
        let machine = LocalProcess.machineResources()
        return split(count: 1, cpus: machine.cpus, memMB: machine.memMB, firstPort: firstPort, portsPerAgent: ports)
    }
}

/// How tasks are isolated from each other.
public enum LocalIsolation: String, Hashable, Codable, Sendable, CaseIterable {
    /// Plain child processes on loopback ports (no root needed).
    case process
    /// Each task in its own network namespace with its own IP on a bridge, under cgroup memory/CPU limits from its
    /// resources (root only; see `NamespaceIsolation`). Offers carry hostname `0.0.0.0` (members bind every address
    /// of their namespace) and status updates carry the task's IP (`TaskStatus.containerIP`).
    case networkNamespace = "netns"
}

/// Settings of a `LocalBackend`.
public struct LocalBackendConfiguration: Sendable {
    /// The agents this machine is carved into.
    public var agents: [LocalAgentSpec]
    /// Each task runs in `sandboxDirectory/<task id>` (its working directory, stdout and stderr).
    public var sandboxDirectory: String
    /// Directories searched first for a task's executable (then `PATH`).
    public var executableSearchPaths: [String]
    /// The isolation mode.
    public var isolation: LocalIsolation
    /// The bridge and address range of `.networkNamespace` isolation.
    public var network: NamespaceNetwork
    /// How often children are checked for exit.
    public var pollInterval: Duration
    /// How often agents with free resources are offered again (Mesos' allocation interval).
    public var offerInterval: Duration
    /// How long a killed task has between SIGTERM and SIGKILL.
    public var killGracePeriod: Duration
    /// How long a started task has to pass its readiness check before it is failed.
    public var readinessTimeout: Duration

    /// Creates a configuration.
    public init(
        agents: [LocalAgentSpec],
        sandboxDirectory: String,
        executableSearchPaths: [String] = [],
        isolation: LocalIsolation = .process,
        network: NamespaceNetwork = NamespaceNetwork(),
        pollInterval: Duration = .milliseconds(25),
        offerInterval: Duration = .seconds(1),
        killGracePeriod: Duration = .seconds(3),
        readinessTimeout: Duration = .seconds(20)
    ) {
        self.agents = agents
        self.sandboxDirectory = sandboxDirectory
        self.executableSearchPaths = executableSearchPaths
        self.isolation = isolation
        self.network = network
        self.pollInterval = pollInterval
        self.offerInterval = offerInterval
        self.killGracePeriod = killGracePeriod
        self.readinessTimeout = readinessTimeout
    }
}

/// A launched process as the journal records it.
public struct LocalTaskEntry: Hashable, Sendable {
    /// The task.
    public var info: TaskInfo
    /// Its process id (also its process group id).
    public var pid: Int32
    /// Its start time in clock ticks since boot, to tell it from a later process reusing the pid.
    public var startTicks: UInt64

    /// Creates an entry.
    public init(info: TaskInfo, pid: Int32, startTicks: UInt64) {
        self.info = info
        self.pid = pid
        self.startTicks = startTicks
    }
}

/// Durable record of the processes the local backend started, so a restarted framework re-adopts them.
///
/// ## Implementing LocalTaskJournal
/// `recordLaunch` returns once the entry is durable; `loadLaunches` returns every entry recorded and not yet removed
/// by `recordExit`.
public protocol LocalTaskJournal: Sendable {
    /// Records a started process.
    func recordLaunch(_ entry: LocalTaskEntry) async throws
    /// Forgets a process that ended.
    func recordExit(_ taskID: TaskID) async throws
    /// Every recorded process.
    func loadLaunches() async throws -> [LocalTaskEntry]
    /// Records several started processes at once (atomically where the journal can).
    func recordLaunches(_ entries: [LocalTaskEntry]) async throws
}

extension LocalTaskJournal {
    public func recordLaunches(_ entries: [LocalTaskEntry]) async throws {
        for entry in entries { try await recordLaunch(entry) }
    }
}

/// A `LocalTaskJournal` in memory (survives a backend restart within one process, for tests).
public actor InMemoryLocalTaskJournal: LocalTaskJournal {
    private var entries: [TaskID: LocalTaskEntry] = [:]
    /// Creates an empty journal.
    public init() {}
    public func recordLaunch(_ entry: LocalTaskEntry) async throws { entries[entry.info.taskID] = entry }
    public func recordExit(_ taskID: TaskID) async throws { entries[taskID] = nil }
    public func loadLaunches() async throws -> [LocalTaskEntry] { entries.values.sorted { $0.info.taskID < $1.info.taskID } }
}
