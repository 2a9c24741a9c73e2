// SAVE, BGSAVE and the save rules (redis rdb.c rdbSave / rdbSaveBackground / serverCron's save-params check).
//
// A background save takes a point-in-time KeyspaceSnapshot (stripe copy-on-write, see CacheStore's
// Snapshot/KeyspaceSnapshot.swift) and writes it on its own thread, so no event loop waits for the disk and a
// command waits at most for one stripe to be serialized. Only one save runs at a time; `BGSAVE SCHEDULE` queues
// one after the running save. The state below is what INFO persistence reports.
import CacheStore
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One `save` rule: snapshot when at least `changes` writes happened and `seconds` passed since the last save.
public struct SaveRule: Hashable, Sendable {
    public var seconds: Int
    public var changes: Int

    /// Parses redis's `save` value: pairs of integers ("3600 1 300 100"); the empty string means no rules.
    public static func parse(_ text: String) throws(ConfigurationError) -> [SaveRule] {
        let words = text.split(separator: " ").map(String.init)
        guard words.count % 2 == 0 else { throw ConfigurationError("Invalid save parameters: expected pairs of <seconds> <changes>") }
        var rules: [SaveRule] = []
        for index in stride(from: 0, to: words.count, by: 2) {
            guard let seconds = Int(words[index]), let changes = Int(words[index + 1]), seconds >= 0, changes >= 0 else {
                throw ConfigurationError("Invalid save parameters: '\(words[index]) \(words[index + 1])' are not two non-negative integers")
            }
            rules.append(SaveRule(seconds: seconds, changes: changes))
        }
        return rules
    }

    /// Whether any rule asks for a save now (serverCron's check). After a failed save, retry only after 5 s.
    public static func isSaveDue(
        _ rules: [SaveRule], changes: Int, secondsSinceLastSave: Int64, lastSaveFailed: Bool, secondsSinceLastAttempt: Int64
    ) -> Bool {
        if lastSaveFailed && secondsSinceLastAttempt < 5 { return false }
        return rules.contains { changes >= $0.changes && secondsSinceLastSave >= Int64($0.seconds) && changes > 0 }
    }
}

/// The node's snapshot state: whether a save runs, how the last one went, and the queued BGSAVE SCHEDULE.
public final class SnapshotPersistence: Sendable {
    /// What INFO persistence reports.
    public struct Status: Sendable {
        public var saveInProgress = false
        public var backgroundSaveInProgress = false
        public var backgroundSaveStartedAt: Int64 = 0
        public var lastBackgroundSaveOK = true
        public var lastBackgroundSaveSeconds = -1
        public var lastAttemptAt: Int64 = 0
        public var saves = 0
        public var scheduled = false
        /// ``NodeState/changesApplied`` when the save in progress started (a successful save covers those writes).
        public var changesAtStart = 0
        public var loading = false
        public var lastError: String? = nil
        public var lastLoadKeysLoaded = 0
        public var lastLoadKeysExpired = 0
    }

    /// Why a save did not start.
    public enum StartRefusal: Error, Sendable {
        case alreadyInProgress
    }

    private let status = Mutex(Status())

    public init() {}

    /// A copy of the current status. Never blocks on a save (safe while holding stripe locks).
    public var current: Status { status.withLock { $0 } }

    /// Loads the snapshot file named by the configuration into the (empty) keyspace at start-up.
    /// - Returns: what was loaded, or `nil` when there is no file yet.
    /// - Throws: when the file is unreadable or damaged; the node must then not start.
    public func loadAtStartup(node: NodeState) throws(PersistenceError) -> SnapshotFile.Outcome? {
        let configuration = node.configuration
        let path = SnapshotFile.path(directory: configuration.directory, filename: configuration.databaseFilename)
        status.withLock { $0.loading = true }
        defer { status.withLock { $0.loading = false } }
        guard let outcome = try SnapshotFile.load(path: path, into: node.keyspace, now: node.clock.nowMilliseconds()) else {
            return nil
        }
        try Self.loadFunctions(outcome.functionLibraries, into: node, from: path)
        status.withLock {
            $0.lastLoadKeysLoaded = outcome.records
            $0.lastLoadKeysExpired = outcome.skipped
        }
        return outcome
    }

    /// Starts a point-in-time snapshot that records the replication id and offset its data matches (so a replica
    /// restarted from it resumes by partial resync), and the FUNCTION libraries.
    static func beginSnapshot(node: NodeState, createdAt: Int64) -> KeyspaceSnapshot {
        node.replication.withStreamApplyPaused {
            node.keyspace.beginSnapshot(createdAt: createdAt, headerWhileFrozen: {
                (node.replication.persistedPosition(), node.functions.librarySources())
            })
        }
    }

    /// Loads a snapshot's FUNCTION libraries (replacing any loaded), without FUNCTION LOAD's time limit.
    static func loadFunctions(_ libraries: [[UInt8]], into node: NodeState, from path: String) throws(PersistenceError) {
        guard !libraries.isEmpty else { return }
        do throws(CommandError) {
            try node.functions.replaceAll(with: libraries)
        } catch {
            throw PersistenceError(
                "The snapshot file \(path) holds a function library that does not load (\(error.message)). Move the file away to start empty, or replace it with a good copy, then start again.")
        }
    }

    /// Marks BGSAVE SCHEDULE: a background save starts as soon as the running one ends.
    func schedule() { status.withLock { $0.scheduled = true } }

    fileprivate func begin(background: Bool, node: NodeState) throws(StartRefusal) -> Int64 {
        let now = node.clock.nowMilliseconds()
        try status.withLock { (status: inout Status) throws(StartRefusal) in
            guard !status.saveInProgress else { throw .alreadyInProgress }
            status.saveInProgress = true
            status.backgroundSaveInProgress = background
            status.backgroundSaveStartedAt = now
            status.lastAttemptAt = now
            status.scheduled = false
            status.changesAtStart = node.changesApplied
        }
        return now
    }

    fileprivate func end(_ result: Result<SnapshotFile.Outcome, PersistenceError>, background: Bool, startedAt: Int64, node: NodeState) -> Bool {
        let now = node.clock.nowMilliseconds()
        let runScheduled = status.withLock { status in
            status.saveInProgress = false
            status.backgroundSaveInProgress = false
            switch result {
            case .success:
                node.changesSaved.store(status.changesAtStart, ordering: .relaxed)
                node.lastSave.store(now / 1000, ordering: .relaxed)
                status.saves += 1
                status.lastError = nil
                if background { status.lastBackgroundSaveOK = true }
            case .failure(let error):
                status.lastError = error.message
                if background { status.lastBackgroundSaveOK = false }
            }
            if background { status.lastBackgroundSaveSeconds = Int((now - startedAt) / 1000) }
            return status.scheduled
        }
        return runScheduled
    }

    /// SAVE: writes a snapshot now on the calling thread. The node keeps serving meanwhile (only the stripe being
    /// serialized is locked at any moment).
    func save(node: NodeState) throws(PersistenceError) -> SnapshotFile.Outcome {
        let startedAt: Int64
        do {
            startedAt = try begin(background: false, node: node)
        } catch {
            throw PersistenceError("Background save already in progress")
        }
        let configuration = node.configuration
        let snapshot = Self.beginSnapshot(node: node, createdAt: startedAt)
        let result = Result { () throws(PersistenceError) -> SnapshotFile.Outcome in
            try SnapshotFile.write(snapshot, directory: configuration.directory, filename: configuration.databaseFilename)
        }
        if end(result, background: false, startedAt: startedAt, node: node) { try? startBackgroundSave(node: node) }
        return try result.get()
    }

    /// BGSAVE: takes a point-in-time snapshot now and writes it on a background thread.
    /// - Parameter onFinish: called on that thread with the outcome (tests and logs).
    func startBackgroundSave(
        node: NodeState, onFinish: @escaping @Sendable (Result<SnapshotFile.Outcome, PersistenceError>) -> Void = { _ in }
    ) throws(StartRefusal) {
        let startedAt = try begin(background: true, node: node)
        let configuration = node.configuration
        let snapshot = Self.beginSnapshot(node: node, createdAt: startedAt)
        Thread.detachNewThread { [self] in
            let result = Result { () throws(PersistenceError) -> SnapshotFile.Outcome in
                try SnapshotFile.write(snapshot, directory: configuration.directory, filename: configuration.databaseFilename)
            }
            let runScheduled = self.end(result, background: true, startedAt: startedAt, node: node)
            onFinish(result)
            if runScheduled { try? self.startBackgroundSave(node: node, onFinish: onFinish) }
        }
    }

    /// Starts a background save if a save rule or BGSAVE SCHEDULE asks for one. Returns whether one started.
    @discardableResult
    func startSaveIfDue(node: NodeState, onFinish: @escaping @Sendable (Result<SnapshotFile.Outcome, PersistenceError>) -> Void = { _ in }) -> Bool {
        let state = current
        guard !state.saveInProgress else { return false }
        let now = node.clock.nowMilliseconds()
        var due = state.scheduled
        if !due, let rules = try? SaveRule.parse(node.configuration.save), !rules.isEmpty {
            due = SaveRule.isSaveDue(
                rules, changes: node.changesSinceSave,
                secondsSinceLastSave: now / 1000 - node.lastSave.load(ordering: .relaxed),
                lastSaveFailed: !state.lastBackgroundSaveOK, secondsSinceLastAttempt: (now - state.lastAttemptAt) / 1000)
        }
        guard due else { return false }
        do {
            try startBackgroundSave(node: node, onFinish: onFinish)
            return true
        } catch {
            return false
        }
    }
}

/// Whether a shutdown saves a final snapshot (redis SHUTDOWN's NOSAVE / SAVE modifiers).
public enum ShutdownSave: Sendable, Hashable {
    /// Save when save rules are configured (`--save` not empty): SHUTDOWN without a modifier, and SIGTERM.
    case whenRulesConfigured
    /// Always save (SHUTDOWN SAVE).
    case always
    /// Never save (SHUTDOWN NOSAVE).
    case never
}

extension SnapshotPersistence {
    /// The final save before a shutdown (redis prepareForShutdown): waits for a running background save, then
    /// writes a snapshot on the calling thread when `mode` asks for one.
    /// - Returns: the save's outcome, or `nil` when none was due.
    /// - Throws: when the save failed; the caller decides whether to stay up (SHUTDOWN without FORCE does).
    public func saveForShutdown(_ mode: ShutdownSave, node: NodeState) throws(PersistenceError) -> SnapshotFile.Outcome? {
        let rulesConfigured = ((try? SaveRule.parse(node.configuration.save)) ?? []).isEmpty == false
        switch mode {
        case .never: return nil
        case .whenRulesConfigured where !rulesConfigured: return nil
        default: break
        }
        // A background save in progress finishes first (redis kills its child instead; ours is a thread that
        // cannot be killed, and it ends within one pass over the keyspace).
        while current.saveInProgress { usleep(1_000) }
        return try save(node: node)
    }
}

extension SnapshotPersistence {
    /// Marks a background save as running without starting one (tests of the refusal and SCHEDULE paths).
    func beginForTesting(node: NodeState) throws(StartRefusal) -> Int64 {
        try begin(background: true, node: node)
    }

    /// Ends a save begun by ``beginForTesting(node:)`` as a failure; returns whether one was scheduled.
    func endForTesting(startedAt: Int64, node: NodeState) -> Bool {
        end(.failure(PersistenceError("test")), background: true, startedAt: startedAt, node: node)
    }
}
