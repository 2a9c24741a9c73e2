// The durable `StateStore`: one SQLite database (through GRDB) in the framework's data directory. Each
// `PersistBatch` is one transaction, so a batch is applied all or nothing and is durable when `apply` returns
// (journal mode WAL with `synchronous = FULL`). The same database holds the local backend's process journal
// (`LocalTaskJournal`): which task runs as which pid, so a restarted framework re-adopts its running children.
//
// Schema (migration "v1"):
//   meta(key PRIMARY KEY, value)            framework id, next task number
//   clusters(name PRIMARY KEY, spec JSON)
//   tasks(task_id PRIMARY KEY, cluster, record JSON)
//   local_tasks(task_id PRIMARY KEY, agent_id, pid, start_ticks, info JSON)
// Migration "v2":
//   layouts(name PRIMARY KEY, layout JSON)  cluster-mode topology state (slots, epoch, heals)
//   volume_homes(slot PRIMARY KEY, agent_id)  the agent holding each persistent member slot's volume

public import CacheFramework
import Foundation
import GRDB

/// Why the state store failed, and what to do about it.
public struct StateStoreError: Error, CustomStringConvertible, Sendable {
    /// What failed.
    public var message: String
    public var description: String { message }
}

/// A `StateStore` in a SQLite database file.
public final class SQLiteStateStore: StateStore, LocalTaskJournal {
    /// The database file.
    public let path: String
    private let queue: DatabaseQueue

    /// Opens (creating if needed) `state.sqlite` in `directory`, creating the directory too.
    public convenience init(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StateStoreError(message: "cannot create the data directory \(directory): \(error.localizedDescription)")
        }
        try self.init(path: (directory as NSString).appendingPathComponent("state.sqlite"))
    }

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        configuration.busyMode = .timeout(5)
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try queue.writeWithoutTransaction { db in _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
            try Self.migrator.migrate(queue)
        } catch {
            throw StateStoreError(message: "cannot open the state database \(path): \(error)")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                    CREATE TABLE clusters (name TEXT PRIMARY KEY NOT NULL, spec TEXT NOT NULL);
                    CREATE TABLE tasks (task_id TEXT PRIMARY KEY NOT NULL, cluster TEXT NOT NULL, record TEXT NOT NULL);
                    CREATE TABLE local_tasks (
                        task_id TEXT PRIMARY KEY NOT NULL, agent_id TEXT NOT NULL, pid INTEGER NOT NULL,
                        start_ticks INTEGER NOT NULL, info TEXT NOT NULL);
                    """)
        }
        migrator.registerMigration("v2") { db in
            try db.execute(sql: "CREATE TABLE layouts (name TEXT PRIMARY KEY NOT NULL, layout TEXT NOT NULL)")
        }
        migrator.registerMigration("v3-volume-homes") { db in
            try db.execute(sql: "CREATE TABLE volume_homes (slot TEXT PRIMARY KEY NOT NULL, agent_id TEXT NOT NULL)")
        }
        return migrator
    }

    // MARK: StateStore

    public func load() async throws -> SchedulerSnapshot {
        try await queue.read { db in
            var snapshot = SchedulerSnapshot()
            let decoder = JSONDecoder()
            if let id = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'framework_id'") {
                snapshot.frameworkID = FrameworkID(id)
            }
            if let next = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'next_task_number'"),
                let number = UInt64(next)
            {
                snapshot.nextTaskNumber = number
            }
            for json in try String.fetchAll(db, sql: "SELECT spec FROM clusters") {
                let spec = try decoder.decode(ClusterSpec.self, from: Data(json.utf8))
                snapshot.clusters[spec.name] = spec
            }
            for json in try String.fetchAll(db, sql: "SELECT record FROM tasks") {
                let record = try decoder.decode(TaskRecord.self, from: Data(json.utf8))
                snapshot.tasks[record.taskID] = record
            }
            for row in try Row.fetchAll(db, sql: "SELECT slot, agent_id FROM volume_homes") {
                let text: String = row["slot"]
                if let slot = MemberSlot(description: text) { snapshot.volumeHomes[slot] = AgentID(row["agent_id"] as String) }
            }
            for json in try String.fetchAll(db, sql: "SELECT layout FROM layouts") {
                let layout = try decoder.decode(ClusterLayout.self, from: Data(json.utf8))
                snapshot.layouts[layout.cluster] = layout
            }
            return snapshot
        }
    }

    public func apply(_ batch: PersistBatch) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encode outside the transaction: the write closure only runs SQL.
        var statements: [(String, StatementArguments)] = []
        for intent in batch.intents {
            switch intent {
            case .setFrameworkID(let id):
                statements.append(("INSERT OR REPLACE INTO meta (key, value) VALUES ('framework_id', ?)", [id.value]))
            case .putCluster(let spec):
                let json = String(decoding: try encoder.encode(spec), as: UTF8.self)
                statements.append(("INSERT OR REPLACE INTO clusters (name, spec) VALUES (?, ?)", [spec.name, json]))
            case .deleteCluster(let name):
                statements.append(("DELETE FROM clusters WHERE name = ?", [name]))
                statements.append(("DELETE FROM layouts WHERE name = ?", [name]))
            case .putTask(let record):
                let json = String(decoding: try encoder.encode(record), as: UTF8.self)
                statements.append((
                    "INSERT OR REPLACE INTO tasks (task_id, cluster, record) VALUES (?, ?, ?)",
                    [record.taskID.value, record.slot.cluster, json]
                ))
            case .deleteTask(let id):
                statements.append(("DELETE FROM tasks WHERE task_id = ?", [id.value]))
            case .setNextTaskNumber(let number):
                // Never lower it: task ids must not be reused.
                statements.append((
                    """
                    INSERT INTO meta (key, value) VALUES ('next_task_number', ?)
                    ON CONFLICT(key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))
                    """,
                    [String(number)]
                ))
            case .putLayout(let layout):
                let json = String(decoding: try encoder.encode(layout), as: UTF8.self)
                statements.append(("INSERT OR REPLACE INTO layouts (name, layout) VALUES (?, ?)", [layout.cluster, json]))
            case .putVolumeHome(let slot, let agentID):
                statements.append(("INSERT OR REPLACE INTO volume_homes (slot, agent_id) VALUES (?, ?)", [slot.description, agentID.value]))
            case .deleteVolumeHome(let slot):
                statements.append(("DELETE FROM volume_homes WHERE slot = ?", [slot.description]))
            }
        }
        let prepared = statements
        try await queue.write { db in
            for (sql, arguments) in prepared { try db.execute(sql: sql, arguments: arguments) }
        }
    }

    // MARK: LocalTaskJournal

    public func recordLaunch(_ entry: LocalTaskEntry) async throws { try await recordLaunches([entry]) }

    public func recordLaunches(_ entries: [LocalTaskEntry]) async throws {
        let encoder = JSONEncoder()
        let rows: [StatementArguments] = try entries.map { entry in
            let json = String(decoding: try encoder.encode(entry.info), as: UTF8.self)
            return [entry.info.taskID.value, entry.info.agentID.value, entry.pid, entry.startTicks, json]
        }
        try await queue.write { db in
            for arguments in rows {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO local_tasks (task_id, agent_id, pid, start_ticks, info) VALUES (?, ?, ?, ?, ?)",
                    arguments: arguments)
            }
        }
    }

    public func recordExit(_ taskID: TaskID) async throws {
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM local_tasks WHERE task_id = ?", arguments: [taskID.value])
        }
    }

    public func loadLaunches() async throws -> [LocalTaskEntry] {
        try await queue.read { db in
            let decoder = JSONDecoder()
            return try Row.fetchAll(db, sql: "SELECT pid, start_ticks, info FROM local_tasks ORDER BY task_id").map { row in
                let info = try decoder.decode(TaskInfo.self, from: Data((row["info"] as String).utf8))
                return LocalTaskEntry(info: info, pid: row["pid"], startTicks: row["start_ticks"])
            }
        }
    }
}
