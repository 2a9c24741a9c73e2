// The durable `NFVStore`: tables of its own in the framework's SQLite file (`state.sqlite`, next to the scheduler's
// tables, which it does not touch). Each `NFVBatch` is one transaction. Tables are created if absent, so the
// scheduler's migrations stay as they are.
//
//   nfv_meta(key PRIMARY KEY, value)                 next id number
//   nfv_instances(id PRIMARY KEY, record JSON)
//   nfv_operations(id PRIMARY KEY, instance_id, record JSON)

public import CacheFrameworkNFV
import Foundation
import GRDB

/// Why the NFV store failed.
public struct NFVStoreError: Error, CustomStringConvertible, Sendable {
    /// What failed.
    public var message: String
    public var description: String { message }
}

/// An `NFVStore` in a SQLite database file.
public final class SQLiteNFVStore: NFVStore {
    private let queue: DatabaseQueue

    /// Opens (creating if needed) `state.sqlite` in `directory`.
    public convenience init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try self.init(path: (directory as NSString).appendingPathComponent("state.sqlite"))
    }

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        configuration.busyMode = .timeout(5)
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try queue.writeWithoutTransaction { db in _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
            try queue.write { db in
                try db.execute(
                    sql: """
                        CREATE TABLE IF NOT EXISTS nfv_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                        CREATE TABLE IF NOT EXISTS nfv_instances (id TEXT PRIMARY KEY NOT NULL, record TEXT NOT NULL);
                        CREATE TABLE IF NOT EXISTS nfv_operations (
                            id TEXT PRIMARY KEY NOT NULL, instance_id TEXT NOT NULL, record TEXT NOT NULL);
                        """)
            }
        } catch {
            throw NFVStoreError(message: "cannot open the NFV tables in \(path): \(error)")
        }
    }

    public func load() async throws -> NFVSnapshot {
        try await queue.read { db in
            let decoder = JSONDecoder()
            var snapshot = NFVSnapshot()
            if let next = try String.fetchOne(db, sql: "SELECT value FROM nfv_meta WHERE key = 'next_number'").flatMap(UInt64.init) {
                snapshot.nextNumber = next
            }
            for json in try String.fetchAll(db, sql: "SELECT record FROM nfv_instances") {
                let instance = try decoder.decode(VNFInstance.self, from: Data(json.utf8))
                snapshot.instances[instance.id] = instance
            }
            for json in try String.fetchAll(db, sql: "SELECT record FROM nfv_operations") {
                let operation = try decoder.decode(LcmOpOcc.self, from: Data(json.utf8))
                snapshot.operations[operation.id] = operation
            }
            return snapshot
        }
    }

    public func apply(_ batch: NFVBatch) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try await queue.write { db in
            for intent in batch.intents {
                switch intent {
                case .putInstance(let instance):
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO nfv_instances (id, record) VALUES (?, ?)",
                        arguments: [instance.id, String(decoding: try encoder.encode(instance), as: UTF8.self)])
                case .deleteInstance(let id):
                    try db.execute(sql: "DELETE FROM nfv_instances WHERE id = ?", arguments: [id])
                case .putOperation(let operation):
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO nfv_operations (id, instance_id, record) VALUES (?, ?, ?)",
                        arguments: [operation.id, operation.vnfInstanceID, String(decoding: try encoder.encode(operation), as: UTF8.self)])
                case .setNextNumber(let number):
                    try db.execute(
                        sql: """
                            INSERT INTO nfv_meta (key, value) VALUES ('next_number', ?)
                            ON CONFLICT(key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))
                            """,
                        arguments: ["\(number)"])
                }
            }
        }
    }
}
