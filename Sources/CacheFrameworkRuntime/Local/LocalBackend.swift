// The embedded local backend: a `SchedulerBackend` that carves this machine into agents, offers their free
// resources, launches accepted tasks as child processes (one process group each, in a sandbox directory), reports
// their status (STARTING at spawn, RUNNING once the readiness check passes, FINISHED/FAILED/KILLED with the exit
// reason), kills them on request and restarts nothing on its own: healing is the scheduler's decision.
//
// Restart safety. Every launched process is written to a `LocalTaskJournal` (pid + start time; one transaction per
// accept, written right after the accept's processes are spawned and before their STARTING updates). On `start()` the
// backend re-adopts journalled processes that still run as the same process, and reports the others FAILED.
// Reconciliation answers from that table; a task the backend never heard of is answered TASK_LOST, so a launch
// intent recorded just before a crash is replaced once instead of duplicated. Children are deliberately not tied to
// the framework's life (no PDEATHSIG): after a crash they keep serving until the restarted framework adopts them;
// on graceful shutdown `shutdown(killTasks: true)` stops them (Mesos' failover_timeout 0).
//
// Isolation: plain processes on loopback ports by default; with `LocalIsolation.networkNamespace` each task gets its
// own network namespace, IP and cgroup limits (`NamespaceIsolation`), set up before the spawn and removed after the
// exit; an adopted task's address is read back from its namespace.
//
// Not yet: redelivery of unacknowledged updates (the driver acknowledges synchronously).

public import CacheFramework
import Foundation
public import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A task as the local backend sees it.
public struct LocalTaskView: Hashable, Codable, Sendable {
    /// The task.
    public var taskID: TaskID
    /// Its agent.
    public var agentID: AgentID
    /// Its state.
    public var state: TaskState
    /// Its process id, once spawned.
    public var pid: Int32?
    /// Whether it was adopted after a framework restart.
    public var adopted: Bool
    /// Its ports.
    public var ports: [UInt64]
    /// The last status message.
    public var message: String?
    /// Its own IP address under namespace isolation.
    public var address: String?

    /// Creates a view (for backends other than the local one).
    public init(
        taskID: TaskID, agentID: AgentID, state: TaskState, pid: Int32?, adopted: Bool, ports: [UInt64], message: String?,
        address: String? = nil
    ) {
        self.address = address
        self.taskID = taskID
        self.agentID = agentID
        self.state = state
        self.pid = pid
        self.adopted = adopted
        self.ports = ports
        self.message = message
    }
}

/// An agent with its total and free resources.
public struct LocalAgentView: Hashable, Codable, Sendable {
    /// The agent.
    public var spec: LocalAgentSpec
    /// Its free resources.
    public var free: ResourceQuantities
    /// How many non-terminal tasks run on it.
    public var taskCount: Int

    /// Creates a view (for backends other than the local one).
    public init(spec: LocalAgentSpec, free: ResourceQuantities, taskCount: Int) {
        self.spec = spec
        self.free = free
        self.taskCount = taskCount
    }
}

/// The local process backend.
public actor LocalBackend: SchedulerBackend {
    struct LocalTask {
        var info: TaskInfo
        var state: TaskState
        var pid: pid_t?
        var startTicks: UInt64?
        var adopted = false
        var killRequested = false
        var killDeadline: ContinuousClock.Instant?
        var message: String?
        /// The task's own IP under namespace isolation.
        var address: String?
    }

    /// The label under which the task's own address (namespace isolation) reaches a readiness check.
    public static let addressLabel = "network.ip"

    /// Checks whether a started task serves (cache members: answers PING).
    public typealias ReadinessCheck = @Sendable (TaskInfo) async -> Bool

    public nonisolated let events: AsyncStream<BackendEvent>
    private let continuation: AsyncStream<BackendEvent>.Continuation
    private let readinessJobs: AsyncStream<TaskID>
    private let readinessContinuation: AsyncStream<TaskID>.Continuation
    /// The settings.
    public nonisolated let configuration: LocalBackendConfiguration
    private let journal: any LocalTaskJournal
    private let frameworkID: FrameworkID
    private let readiness: ReadinessCheck
    private let logger: Logger
    private let clock = ContinuousClock()

    private var tasks: [TaskID: LocalTask] = [:]
    private var outstanding: [OfferID: Offer] = [:]
    private var refusedUntil: [AgentID: ContinuousClock.Instant] = [:]
    private var suppressed = false
    private var blockedPorts: [UInt64: ContinuousClock.Instant] = [:]
    private var offerCounter = 0
    private var updateCounter = 0
    private var lastOfferRound: ContinuousClock.Instant?
    private var started = false
    private var isolation: NamespaceIsolation?
    private var addresses: TaskAddressPool

    /// Creates a backend; `start()` adopts journalled processes and subscribes, `run()` watches the children.
    public init(
        configuration: LocalBackendConfiguration,
        journal: any LocalTaskJournal,
        frameworkID: FrameworkID,
        logger: Logger = Logger(label: "cache-framework.local-backend"),
        readiness: @escaping ReadinessCheck
    ) {
        self.configuration = configuration
        self.journal = journal
        self.frameworkID = frameworkID
        self.logger = logger
        self.readiness = readiness
        (events, continuation) = AsyncStream.makeStream(of: BackendEvent.self)
        (readinessJobs, readinessContinuation) = AsyncStream.makeStream(of: TaskID.self)
        addresses = TaskAddressPool(network: configuration.network)
    }

    // MARK: life cycle

    /// Re-adopts the journalled processes that still run, then emits SUBSCRIBED and a first round of offers. With
    /// namespace isolation it first prepares the bridge (throwing `IsolationError` when it cannot).
    public func start() async throws {
        guard !started else { return }
        if configuration.isolation == .networkNamespace {
            let isolation = try NamespaceIsolation(network: configuration.network)
            try isolation.prepareHost()
            if isolation.cgroupMode == .none {
                logger.warning("no usable cgroup hierarchy: tasks run without memory/cpu limits")
            }
            self.isolation = isolation
        }
        started = true
        for entry in try await journal.loadLaunches() {
            var task = LocalTask(info: entry.info, state: .running, pid: entry.pid, startTicks: entry.startTicks, adopted: true)
            if let exit = LocalProcess.probe(entry.pid, startTicks: entry.startTicks) {
                task.state = .failed
                task.message = "exited while the framework was down (\(exit))"
                isolation?.tearDown(entry.info.taskID)
                try await journal.recordExit(entry.info.taskID)
            } else {
                task.message = "adopted after a framework restart (pid \(entry.pid))"
                if let isolation, let address = isolation.address(of: entry.info.taskID) {
                    task.address = address
                    addresses.claim(address)
                }
                logger.info("adopted task", metadata: ["task": "\(entry.info.taskID)", "pid": "\(entry.pid)"])
            }
            tasks[entry.info.taskID] = task
        }
        if let isolation {
            // Namespaces of tasks that ended while no framework watched them (or were never journalled).
            let live = Set(tasks.values.filter { !$0.state.isTerminal }.map { isolation.namespace(of: $0.info.taskID) })
            for namespace in isolation.existingNamespaces() where !live.contains(namespace) {
                _ = try? isolation.run(["netns", "del", namespace])
            }
        }
        continuation.yield(.subscribed(frameworkID))
        sendOffers()
    }

    /// Watches children (exits, kill deadlines, readiness) and re-offers resources until cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.watch() }
            for await taskID in readinessJobs {
                group.addTask { await self.waitUntilReady(taskID) }
            }
        }
    }

    private func watch() async {
        while !Task.isCancelled {
            await poll()
            do { try await Task.sleep(for: configuration.pollInterval) } catch { break }
        }
    }

    /// Stops: kills every task (SIGTERM, then SIGKILL after the grace period) if `killTasks`, else leaves them running
    /// for a restarted framework to adopt. Ends the event stream.
    public func shutdown(killTasks: Bool) async {
        if killTasks {
            let running = tasks.filter { !$0.value.state.isTerminal && $0.value.pid != nil }
            for (_, task) in running { LocalProcess.signalGroup(task.pid!, SIGTERM) }
            let deadline = clock.now.advanced(by: configuration.killGracePeriod)
            var remaining = Set(running.keys)
            while !remaining.isEmpty {
                for id in remaining where exitOf(tasks[id]!) != nil {
                    remaining.remove(id)
                    isolation?.tearDown(id)
                    try? await journal.recordExit(id)
                }
                if clock.now >= deadline {
                    for id in remaining {
                        LocalProcess.signalGroup(tasks[id]!.pid!, SIGKILL)
                        if let pid = tasks[id]?.pid, tasks[id]?.adopted == false { _ = waitpid(pid, nil, 0) }
                        isolation?.tearDown(id)
                        try? await journal.recordExit(id)
                    }
                    break
                }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        continuation.finish()
    }

    // MARK: introspection

    /// The agents with their free resources.
    public func agents() -> [LocalAgentView] {
        configuration.agents.map { spec in
            LocalAgentView(
                spec: spec, free: free(on: spec.id),
                taskCount: tasks.values.filter { $0.info.agentID == spec.id && !$0.state.isTerminal }.count
            )
        }
    }

    /// Every task the backend knows (terminal ones too), by id.
    public func taskViews() -> [LocalTaskView] {
        tasks.values.sorted { $0.info.taskID < $1.info.taskID }.map {
            LocalTaskView(
                taskID: $0.info.taskID, agentID: $0.info.agentID, state: $0.state, pid: $0.pid, adopted: $0.adopted,
                ports: ResourceQuantities($0.info.resources).ports.ranges.flatMap { Array($0.begin...$0.end) },
                message: $0.message, address: $0.address
            )
        }
    }

    /// The offers made and not yet answered.
    public func outstandingOffers() -> [Offer] { outstanding.values.sorted { $0.id < $1.id } }

    /// What every agent could offer right now, ignoring refuse filters and suppression (for admission checks).
    public func capacityOffers() -> [Offer] {
        configuration.agents.map { spec in
            Offer(
                id: OfferID("capacity-\(spec.id)"), agentID: spec.id, hostname: offeredHostname(spec),
                resources: free(on: spec.id).resources, attributes: spec.attributes
            )
        }
    }

    // MARK: SchedulerBackend

    public func accept(offerIDs: [OfferID], operations: [OfferOperation], filters: Filters) async throws {
        let offers = offerIDs.compactMap { outstanding[$0] }
        let valid = !offers.isEmpty && offers.count == offerIDs.count && Set(offers.map(\.agentID)).count == 1
        for id in offerIDs { outstanding[id] = nil }
        if let agent = offers.first?.agentID {
            refusedUntil[agent] = clock.now.advanced(by: .milliseconds(Int64(filters.refuseSeconds * 1000)))
        }
        var spawned: [LocalTaskEntry] = []
        for case .launch(let infos) in operations {
            for info in infos {
                if valid {
                    if let entry = spawn(info) { spawned.append(entry) }
                } else {
                    tasks[info.taskID] = LocalTask(info: info, state: .dropped, message: "offer gone")
                    emit(info, .dropped, reason: "REASON_INVALID_OFFERS", message: "the offer was rescinded or already used")
                }
            }
        }
        guard !spawned.isEmpty else { return }
        // One journal transaction per accept (one fsync, not one per task).
        do {
            try await journal.recordLaunches(spawned)
        } catch {
            // Processes we cannot journal would be orphaned by a crash: do not keep them.
            for entry in spawned {
                LocalProcess.signalGroup(entry.pid, SIGKILL)
                tasks[entry.info.taskID]?.killRequested = true
                tasks[entry.info.taskID]?.message = "cannot journal the launch: \(error)"
            }
            logger.error("cannot journal launches; killed them", metadata: ["error": "\(error)"])
            return
        }
        // A process that already ended while the journal was written has been reported FAILED by `poll`.
        for entry in spawned where tasks[entry.info.taskID]?.state == .starting {
            emit(entry.info, .starting, message: "pid \(entry.pid)")
            readinessContinuation.yield(entry.info.taskID)
        }
    }

    public func decline(offerIDs: [OfferID], filters: Filters) async throws {
        for id in offerIDs {
            if let offer = outstanding.removeValue(forKey: id) {
                refusedUntil[offer.agentID] = clock.now.advanced(by: .milliseconds(Int64(filters.refuseSeconds * 1000)))
            }
        }
    }

    public func acknowledge(agentID: AgentID, taskID: TaskID, uuid: String) async throws {}

    public func kill(taskID: TaskID, agentID: AgentID?) async throws {
        guard var task = tasks[taskID], !task.state.isTerminal else { return }
        task.killRequested = true
        if let pid = task.pid {
            LocalProcess.signalGroup(pid, SIGTERM)
            task.killDeadline = clock.now.advanced(by: configuration.killGracePeriod)
            tasks[taskID] = task
        } else {
            task.state = .killed
            tasks[taskID] = task
            emit(task.info, .killed, reason: "REASON_TASK_KILLED_DURING_LAUNCH", message: "killed before it started")
        }
    }

    public func reconcile(_ list: [ReconcileTask]) async throws {
        if list.isEmpty {
            for task in tasks.values.sorted(by: { $0.info.taskID < $1.info.taskID }) where !task.state.isTerminal {
                continuation.yield(.update(status(task.info, task.state, reason: TaskStatus.reconciliationReason, uuid: nil)))
            }
            return
        }
        for entry in list {
            if let task = tasks[entry.taskID] {
                continuation.yield(
                    .update(status(task.info, task.state, reason: TaskStatus.reconciliationReason, message: task.message, uuid: nil)))
            } else {
                // A framework that died between spawning a task and journalling it left the process running with no
                // record: stop it before answering LOST, so the replacement does not run beside an orphan.
                for orphan in LocalProcess.processes(taggedWith: "\(frameworkID.value) \(entry.taskID.value)") {
                    LocalProcess.signalGroup(orphan, SIGKILL)
                    logger.notice("killed an unjournalled process of a lost task", metadata: ["task": "\(entry.taskID)", "pid": "\(orphan)"])
                }
                continuation.yield(
                    .update(
                        TaskStatus(
                            taskID: entry.taskID, state: .lost, reason: TaskStatus.reconciliationReason,
                            message: "the local backend has no record of this task (never launched)",
                            agentID: entry.agentID, timestamp: Date().timeIntervalSince1970
                        )))
            }
        }
    }

    public func revive() async throws {
        suppressed = false
        refusedUntil = [:]
        sendOffers()
    }

    public func suppress() async throws { suppressed = true }

    // MARK: launching

    /// Starts one task's process; reports FAILED and returns nil if it cannot start.
    private func spawn(_ info: TaskInfo) -> LocalTaskEntry? {
        let ports = ResourceQuantities(info.resources).ports
        // A namespaced task has ports of its own: only loopback tasks compete with the host's.
        let busy = isolation != nil ? [] : ports.ranges.flatMap { Array($0.begin...$0.end) }.filter { !LocalProcess.isPortFree($0) }
        if !busy.isEmpty {
            // Something outside the framework holds the port: keep it out of offers for a while.
            for port in busy { blockedPorts[port] = clock.now.advanced(by: .seconds(60)) }
            fail(info, reason: "REASON_CONTAINER_LAUNCH_FAILED", message: "port \(busy.map(String.init).joined(separator: ",")) is in use on 127.0.0.1")
            return nil
        }
        guard let executable = LocalProcess.resolve(info.command.value, searchPaths: configuration.executableSearchPaths) else {
            fail(info, reason: "REASON_COMMAND_EXECUTOR_FAILED",
                 message: "executable '\(info.command.value)' not found in \(configuration.executableSearchPaths + ["PATH"])")
            return nil
        }
        let sandbox = configuration.sandboxDirectory + "/" + info.taskID.value
        do {
            try FileManager.default.createDirectory(atPath: sandbox, withIntermediateDirectories: true)
        } catch {
            fail(info, reason: "REASON_CONTAINER_LAUNCH_FAILED", message: "cannot create sandbox \(sandbox): \(error)")
            return nil
        }
        var address: String?
        var prefix: [String] = []
        var cgroupProcFiles: [String] = []
        if let isolation {
            guard let allocated = addresses.allocate() else {
                fail(info, reason: "REASON_CONTAINER_LAUNCH_FAILED", message: "no free address left in \(configuration.network.gateway)/16")
                return nil
            }
            let used = ResourceQuantities(info.resources)
            let limits = used.memMB > 0 ? TaskLimits(memoryBytes: UInt64(used.memMB * 1_048_576), cpus: max(0.01, used.cpus)) : nil
            do {
                cgroupProcFiles = try isolation.setUp(info.taskID, address: allocated, limits: limits)
            } catch {
                addresses.release(allocated)
                fail(info, reason: "REASON_CONTAINER_LAUNCH_FAILED", message: error.message)
                return nil
            }
            address = allocated
            prefix = isolation.launchPrefix(for: info.taskID)
        }
        let pid: pid_t
        do {
            pid = try LocalProcess.spawn(
                executable: executable, arguments: info.command.arguments,
                environment: info.command.environment.merging(
                    [LocalProcess.taskTagVariable: "\(frameworkID.value) \(info.taskID.value)"]) { _, tag in tag },
                directory: sandbox, prefix: prefix, cgroupProcFiles: cgroupProcFiles)
        } catch {
            releaseIsolation(info.taskID, address: address)
            fail(info, reason: "REASON_COMMAND_EXECUTOR_FAILED", message: error.message)
            return nil
        }
        let ticks = LocalProcess.startTicks(pid) ?? 0
        tasks[info.taskID] = LocalTask(info: info, state: .starting, pid: pid, startTicks: ticks, address: address)
        logger.debug("launched", metadata: ["task": "\(info.taskID)", "pid": "\(pid)"])
        return LocalTaskEntry(info: info, pid: pid, startTicks: ticks)
    }

    /// Removes a task's namespace and cgroups and frees its address (no-op without namespace isolation).
    private func releaseIsolation(_ taskID: TaskID, address: String?) {
        guard let isolation else { return }
        isolation.tearDown(taskID)
        if let address { addresses.release(address) }
    }

    private func fail(_ info: TaskInfo, reason: String, message: String) {
        tasks[info.taskID] = LocalTask(info: info, state: .failed, message: message)
        emit(info, .failed, reason: reason, message: message)
    }

    private func waitUntilReady(_ taskID: TaskID) async {
        let deadline = clock.now.advanced(by: configuration.readinessTimeout)
        while clock.now < deadline {
            guard let task = tasks[taskID], task.state == .starting else { return }
            var info = task.info
            if let address = task.address { info.labels[Self.addressLabel] = address }
            if await readiness(info) {
                markRunning(taskID)
                return
            }
            do { try await Task.sleep(for: .milliseconds(20)) } catch { return }
        }
        if let task = tasks[taskID], task.state == .starting, let pid = task.pid {
            tasks[taskID]?.message = "did not pass its readiness check within \(configuration.readinessTimeout)"
            LocalProcess.signalGroup(pid, SIGKILL)
        }
    }

    private func markRunning(_ taskID: TaskID) {
        guard var task = tasks[taskID], task.state == .starting else { return }
        task.state = .running
        task.message = "serving"
        tasks[taskID] = task
        emit(task.info, .running, message: "pid \(task.pid ?? 0) serving")
    }

    // MARK: watching

    private func exitOf(_ task: LocalTask) -> ProcessExit? {
        guard let pid = task.pid else { return nil }
        return task.adopted ? LocalProcess.probe(pid, startTicks: task.startTicks) : LocalProcess.reap(pid)
    }

    private func poll() async {
        let now = clock.now
        var ended: [TaskID] = []
        for (id, task) in tasks where !task.state.isTerminal && task.pid != nil {
            if let exit = exitOf(task) {
                var task = task
                // Stragglers of the group (none for cache-node/redis-server) go too.
                LocalProcess.signalGroup(task.pid!, SIGKILL)
                let state: TaskState = task.killRequested ? .killed : (exit == .exited(0) ? .finished : .failed)
                let message = [task.message.flatMap { task.state == .starting ? $0 : nil }, exit.description]
                    .compactMap { $0 }.joined(separator: "; ")
                task.state = state
                task.message = message
                tasks[id] = task
                ended.append(id)
                releaseIsolation(id, address: task.address)
                emit(task.info, state, reason: state == .failed ? "REASON_COMMAND_EXECUTOR_FAILED" : nil, message: message)
            } else if let deadline = task.killDeadline, deadline <= now {
                LocalProcess.signalGroup(task.pid!, SIGKILL)
                tasks[id]?.killDeadline = nil
            }
        }
        blockedPorts = blockedPorts.filter { $0.value > now }
        if lastOfferRound.map({ now - $0 >= configuration.offerInterval }) ?? true { sendOffers() }
        for id in ended { try? await journal.recordExit(id) }
    }

    private func sendOffers() {
        lastOfferRound = clock.now
        guard started, !suppressed else { return }
        let offered = Set(outstanding.values.map(\.agentID))
        var offers: [Offer] = []
        for spec in configuration.agents where !offered.contains(spec.id) {
            if let until = refusedUntil[spec.id], clock.now < until { continue }
            let free = free(on: spec.id)
            guard free.cpus > 0 || free.memMB > 0 else { continue }
            offerCounter += 1
            let offer = Offer(
                id: OfferID("\(frameworkID)-O\(offerCounter)"), frameworkID: frameworkID, agentID: spec.id,
                hostname: offeredHostname(spec), resources: free.resources, attributes: spec.attributes)
            outstanding[offer.id] = offer
            offers.append(offer)
        }
        if !offers.isEmpty { continuation.yield(.offers(offers)) }
    }

    /// The hostname offers carry: the agent's, or `0.0.0.0` under namespace isolation, where each task binds every
    /// address of its own namespace and its status reports the IP it is reached at.
    private func offeredHostname(_ spec: LocalAgentSpec) -> String {
        configuration.isolation == .networkNamespace ? "0.0.0.0" : spec.hostname
    }

    private func free(on agentID: AgentID) -> ResourceQuantities {
        guard let spec = configuration.agents.first(where: { $0.id == agentID }) else { return ResourceQuantities() }
        var free = spec.total
        for task in tasks.values where task.info.agentID == agentID && !task.state.isTerminal {
            let used = ResourceQuantities(task.info.resources)
            free.cpus -= used.cpus
            free.memMB -= used.memMB
            free.diskMB -= used.diskMB
            free.ports = free.ports.subtracting(used.ports)
        }
        if !blockedPorts.isEmpty { free.ports = free.ports.subtracting(RangeSet.of(Array(blockedPorts.keys))) }
        free.cpus = max(0, (free.cpus * 1000).rounded() / 1000)
        free.memMB = max(0, free.memMB)
        free.diskMB = max(0, free.diskMB)
        return free
    }

    private func emit(_ info: TaskInfo, _ state: TaskState, reason: String? = nil, message: String? = nil) {
        continuation.yield(.update(status(info, state, reason: reason, message: message, uuid: nextUUID())))
    }

    private func status(
        _ info: TaskInfo, _ state: TaskState, reason: String? = nil, message: String? = nil, uuid: String?
    ) -> TaskStatus {
        TaskStatus(
            taskID: info.taskID, state: state, reason: reason, message: message, agentID: info.agentID, uuid: uuid,
            timestamp: Date().timeIntervalSince1970, containerIP: tasks[info.taskID]?.address)
    }

    private func nextUUID() -> String {
        updateCounter += 1
        return "\(frameworkID)-U\(updateCounter)"
    }
}
