// Everything the command families share: the keyspace, configuration, clock, counters, connected clients, the
// pub/sub hub and the registry of blocked clients. One instance per running node.
public import CacheStore
import Foundation
public import RESPServer
public import Synchronization

/// The shared state of a running node.
public final class NodeState: Sendable {
    /// All keys.
    public let keyspace: Keyspace
    /// The command table.
    public let commands: CommandTable
    /// Where time comes from.
    public let clock: any NodeClock
    /// INFO counters.
    public let stats: NodeStats
    /// Pub/sub channels and patterns.
    public let pubsub: PubSubHub
    /// Keyspace notifications (`notify-keyspace-events`), published on ``pubsub``.
    public let keyspaceEvents: KeyspaceNotifier
    /// Client-side caching (CLIENT TRACKING).
    let tracking = ClientTracking()
    /// EVAL's script cache and Lua engine.
    let scripts = ScriptEngine()
    /// FUNCTION's libraries.
    let functions = FunctionEngine()
    /// Whether a script or function has run past busy-reply-threshold (other clients are refused -BUSY).
    let busyScript = BusyScript()
    /// ACL users and the ACL log.
    let acl: AccessControl
    /// Cluster mode state (`cluster-enabled yes`), `nil` otherwise: the dispatcher's one check.
    public let cluster: ClusterState?
    /// `tracking-table-max-keys` (0: no limit), and how many enforcements in a row ended still over it.
    let trackingTableMaxKeys = Atomic<Int>(1_000_000)
    private let trackingLimitShortfalls = Atomic<Int>(0)
    /// CLIENT PAUSE: what is paused and the commands waiting for its end.
    let clientPause = ClientPause()
    /// Commands that ran slowly (SLOWLOG).
    let slowLog = SlowLog()
    /// Clients waiting in BLPOP and friends.
    public let blocking = BlockingRegistry()
    /// Replication: ids, backlog, replicas, the link to a primary.
    public let replication: ReplicationState
    /// A random 40-hex-digit id of this run (INFO `run_id`).
    public let runID: String
    /// When the node started, unix ms.
    public let startedAt: Int64
    /// The port actually bound (set once listening).
    public let boundPort = Atomic<Int>(0)
    /// Event loop threads serving clients (set at start: `--threads`, or one per usable CPU).
    public let eventLoopThreads = Atomic<Int>(0)
    /// The process's heap use before any key was stored, counted against `maxmemory` like redis's baseline.
    public let baselineMemory = Atomic<Int>(0)
    /// DEBUG PAUSE-CRON: the housekeeping cycle does nothing while set.
    public let housekeepingPaused = Atomic<Bool>(false)
    /// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may call the commands marked `noScript` (a test hook, as in redis).
    public let scriptsMayCallAnyCommand = Atomic<Bool>(false)
    /// Whether the active expiry cycle runs (DEBUG SET-ACTIVE-EXPIRE; lazy expiry on access always does).
    public let activeExpiryEnabled = Atomic<Bool>(true)
    /// Unix seconds of the last successful save (LASTSAVE).
    public let lastSave = Atomic<Int64>(0)
    /// ``changesApplied`` when the last successful save started: the writes that save covered.
    let changesSaved = Atomic<Int>(0)
    /// Writes applied since start. Each event loop counts its own clients' writes in its stats block (so writers on
    /// different cores never contend for one counter), and this sums them.
    public var changesApplied: Int { stats.total { $0.changesApplied.load(ordering: .relaxed) } }
    /// Writes since the last successful save (redis's `dirty`): what the save rules count, and INFO's
    /// `rdb_changes_since_last_save`.
    public var changesSinceSave: Int { changesApplied - changesSaved.load(ordering: .relaxed) }
    /// SAVE/BGSAVE state and the save rules' bookkeeping (Persistence/SnapshotPersistence.swift).
    public let persistence = SnapshotPersistence()
    /// The append-only file (`appendonly yes`).
    public let appendOnly = AppendOnlyLog()

    /// The `maxclients` setting, read on every accept.
    public let maxClients = Atomic<Int>(10000)
    /// Connections refused because of `maxclients` (INFO `rejected_connections`).
    public let rejectedConnections = Atomic<Int>(0)
    /// The input limits every client connection reads (`proto-max-bulk-len`, `client-query-buffer-limit`), kept in
    /// step with the configuration.
    public let inputLimits = RESPInputLimits()
    /// Clients closed for passing `client-query-buffer-limit` (INFO `client_query_buffer_limit_disconnections`).
    public let queryBufferLimitDisconnections = Atomic<Int>(0)
    /// Normal and pub/sub clients closed for passing `client-output-buffer-limit` (with replicas: INFO
    /// `client_output_buffer_limit_disconnections`).
    public let outputBufferLimitDisconnections = Atomic<Int>(0)
    /// Clients in monitor mode (MONITOR).
    let monitors = MonitorFeed()
    private let outputBufferLimitsStorage = Mutex(ClientOutputBufferLimits())
    /// The current `client-output-buffer-limit`, without copying the whole configuration.
    public var outputBufferLimits: ClientOutputBufferLimits { outputBufferLimitsStorage.withLock { $0 } }

    /// Commands per second over the last sampling period (INFO `instantaneous_ops_per_sec`).
    public let instantaneousOpsPerSecond = Atomic<Int>(0)
    /// Error replies by their code (INFO errorstats `errorstat_<CODE>:count=N`); only error paths touch it.
    private let errorReplyCounts = Mutex<[String: Int]>([:])
    private let peakMemory = Atomic<Int>(0)
    private let shutdownHandler = Mutex<(@Sendable () -> Void)?>(nil)

    private let configurationStorage: Mutex<NodeConfiguration>
    private let clientsStorage = Mutex<[Int: ClientSession]>([:])

    /// Stripes of the node's keyspace. A write to a stripe a running snapshot has not captured yet serializes that
    /// stripe's keys first, so the stripe size bounds the pause one write can see under BGSAVE: with 1M keys, 64
    /// stripes gave p99.9 12–14 ms under back-to-back saves, 256 stripes 6.7 ms, 512 5.9 ms, against redis-server's
    /// 5.6 ms (`benchmarks/persistence-bench.sh`), for 1.4 more bytes per key at 256 (68.1 against 66.7 B/key) and
    /// 256 lock/unlock pairs for each whole-keyspace command (EXEC, FLUSHALL, INFO keyspace), about 6 µs.
    public static let keyspaceStripes = 256

    /// Creates the state for `configuration`.
    public init(configuration: NodeConfiguration, clock: any NodeClock = SystemNodeClock(), commands: CommandTable = .standard) {
        self.clock = clock
        self.commands = commands
        self.acl = AccessControl(commands: commands, requirePass: configuration.requirePass)
        self.stats = NodeStats(commandCount: commands.commands.count)
        self.replication = ReplicationState(configuration: configuration)
        let pubsub = PubSubHub()
        self.pubsub = pubsub
        self.keyspaceEvents = KeyspaceNotifier(hub: pubsub)
        self.keyspace = Keyspace(
            databases: configuration.databases, stripeCount: Self.keyspaceStripes, seed: UInt64.random(in: 0 ... .max),
            observer: NodeKeyspaceObserver(replication: replication, notifier: keyspaceEvents, tracking: tracking),
            slotStriped: configuration.clusterEnabled)
        self.cluster = configuration.clusterEnabled ? ClusterState(configuration: configuration) : nil
        self.configurationStorage = Mutex(configuration)
        self.runID = (0..<40).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
        self.startedAt = clock.nowMilliseconds()
        self.lastSave.store(startedAt / 1000, ordering: .relaxed)
        apply(configuration)
        tracking.attach(keyspace: keyspace, clientWithID: { [unowned self] id in self.client(id: id) })
    }

    /// The current configuration.
    public var configuration: NodeConfiguration { configurationStorage.withLock { $0 } }

    /// Counts one error reply under its code (the first word of its message, as redis's errorstats).
    func recordErrorReply(code: String) {
        errorReplyCounts.withLock { $0[code, default: 0] += 1 }
    }

    /// INFO errorstats: the codes seen since start or CONFIG RESETSTAT, by name.
    var errorReplyCountsByCode: [(String, Int)] {
        errorReplyCounts.withLock { $0.sorted { $0.key < $1.key } }
    }

    /// CONFIG RESETSTAT.
    func resetErrorReplyCounts() {
        errorReplyCounts.withLock { $0 = [:] }
    }

    /// Loads the users of `aclfile`, or of the configuration's `user` directives, before the node serves (redis
    /// refuses to start when either has an error).
    public func loadUsersAtStartup() throws(ConfigurationError) {
        let configuration = self.configuration
        do throws(CommandError) {
            if let path = configuration.aclFile {
                // A missing file is created by the first ACL SAVE; until then the default user is as configured.
                guard FileManager.default.fileExists(atPath: path) else { return }
                try acl.load(lines: AccessControl.readFile(path), source: path)
            } else if !configuration.users.isEmpty {
                try acl.load(lines: configuration.users.map { ["user"] + $0 }, source: configuration.configFile ?? "the command line")
            }
        } catch {
            throw ConfigurationError("Error loading ACL users: \(error.message)")
        }
        // requirepass still sets the default user's password when no rule for it was given.
        if configuration.aclFile == nil && !configuration.users.contains(where: { $0.first == "default" }) {
            acl.setDefaultPassword(configuration.requirePass)
        }
    }

    /// Changes the configuration and applies what takes effect at run time.
    public func updateConfiguration(_ change: (inout NodeConfiguration) throws(ConfigurationError) -> Void) throws(ConfigurationError) {
        let (previous, updated) = try configurationStorage.withLock {
            (configuration: inout NodeConfiguration) throws(ConfigurationError) -> (NodeConfiguration, NodeConfiguration) in
            let previous = configuration
            var copy = configuration
            try change(&copy)
            configuration = copy
            return (previous, copy)
        }
        apply(updated)
        // requirepass is the default user's password (redis's compatibility rule); ACL SETUSER default changes it too.
        if previous.requirePass != updated.requirePass { acl.setDefaultPassword(updated.requirePass) }
    }

    private func apply(_ configuration: NodeConfiguration) {
        keyspace.maxMemory = configuration.maxMemory
        maxClients.store(configuration.maxClients, ordering: .relaxed)
        slowLog.configure(threshold: configuration.slowlogLogSlowerThan, maximumLength: configuration.slowlogMaxLength)
        acl.setLogLength(configuration.aclLogMaxLength)
        trackingTableMaxKeys.store(configuration.trackingTableMaxKeys, ordering: .relaxed)
        outputBufferLimitsStorage.withLock { $0 = configuration.clientOutputBufferLimits }
        inputLimits.update(RESPCommandDecoder.Limits(
            maximumBulkLength: configuration.protoMaxBulkLength,
            maximumQueryBufferLength: configuration.clientQueryBufferLimit))
        keyspace.evictionPolicy = configuration.maxMemoryPolicy
        keyspace.lazyFreeTriggers = configuration.lazyFreeTriggers
        scripts.setBusyThreshold(milliseconds: configuration.busyReplyThreshold)
        functions.setBusyThreshold(milliseconds: configuration.busyReplyThreshold)
        keyspace.evictionSamples = configuration.maxMemorySamples
        keyspace.lfuLogFactor = configuration.lfuLogFactor
        keyspace.lfuDecayTime = configuration.lfuDecayTime
        keyspaceEvents.classes = configuration.notifyKeyspaceEvents
        keyspace.reportsAddedKeys = configuration.notifyKeyspaceEvents.contains(.newKey)
        replication.apply(configuration)
        appendOnly.apply(configuration, node: self)
    }

    /// Waits while a script or function runs on another event loop (it holds its engine until it ends), for the
    /// SCRIPT and FUNCTION subcommands that use the engines; gives up with -BUSY once it turned busy.
    func waitForIdleScriptEngines() throws(CommandError) {
        while scripts.isRunning.load(ordering: .acquiring) || functions.isRunning.load(ordering: .acquiring) {
            if busyScript.isBusy { throw busyScript.refusal }
            usleep(1000)
        }
    }

    /// Keeps CLIENT TRACKING's table within `tracking-table-max-keys` (redis trackingLimitUsedSlots): drops tracked
    /// keys, their readers told as if the keys changed, with an effort of 100 keys that grows each time it fell
    /// short. Called by the housekeeping cycle, after commands of tracking clients and when the limit is set; the
    /// caller holds no stripe lock.
    func enforceTrackingLimit() {
        let limit = trackingTableMaxKeys.load(ordering: .relaxed)
        guard limit > 0, keyspace.trackedKeyCount > limit else { return }
        let shortfalls = trackingLimitShortfalls.load(ordering: .relaxed)
        keyspace.dropTrackedKeys(over: limit, effort: 100 * (shortfalls + 1))
        trackingLimitShortfalls.store(keyspace.trackedKeyCount > limit ? shortfalls + 1 : 0, ordering: .relaxed)
    }

    /// Records a heap reading and returns the peak so far.
    func recordPeakMemory(_ bytes: Int) -> Int {
        var peak = peakMemory.load(ordering: .relaxed)
        while bytes > peak {
            let (exchanged, original) = peakMemory.compareExchange(expected: peak, desired: bytes, ordering: .relaxed)
            if exchanged { return bytes }
            peak = original
        }
        return peak
    }

    /// Sets what SHUTDOWN does (the server installs a graceful stop).
    public func onShutdownRequest(_ handler: @escaping @Sendable () -> Void) {
        shutdownHandler.withLock { $0 = handler }
    }

    /// Asks the server to stop (SHUTDOWN).
    public func requestShutdown() {
        let handler = shutdownHandler.withLock { $0 }
        handler?()
    }

    // MARK: clients

    func register(_ session: ClientSession) {
        clientsStorage.withLock { $0[session.connection.id] = session }
    }

    func unregister(_ session: ClientSession) {
        _ = clientsStorage.withLock { $0.removeValue(forKey: session.connection.id) }
    }

    /// How many clients are connected.
    public var connectedClientCount: Int { clientsStorage.withLock { $0.count } }

    /// The connected clients, by id.
    public var clients: [ClientSession] {
        clientsStorage.withLock { Array($0.values) }.sorted { $0.connection.id < $1.connection.id }
    }

    /// The client with `id`, if connected.
    public func client(id: Int) -> ClientSession? {
        clientsStorage.withLock { $0[id] }
    }

    /// Shows a command that ran to the clients in monitor mode (call only while ``MonitorFeed/isActive``).
    func feedMonitors(_ arguments: CommandArguments, spec: CommandSpec, session: ClientSession, fromScript: Bool = false) {
        monitors.feed(
            arguments, commandName: spec.name, database: session.database, client: fromScript ? nil : session,
            microseconds: clock.nowMicroseconds())
    }
}
