// Tests of the persistence family through the real decoder, dispatcher and reply writer: DUMP/RESTORE with
// redis's options and errors, SAVE/BGSAVE/LASTSAVE against a scratch directory and a second node loading the
// file, the save rules with a manual clock, DEBUG DIGEST / DIGEST-VALUE / RELOAD, CONFIG and INFO persistence.
@testable import CacheNode
import CacheNodeTestSupport
import CacheStore
import Foundation
import Testing

enum PersistenceTestError: Error {
    case unexpected
}

struct PersistenceCommandsTests {
    /// A fresh scratch directory, removed by the caller.
    private func scratchDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "persistence-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func node(directory: String, save: String = "") -> TestNode {
        var configuration = NodeConfiguration()
        configuration.directory = directory
        configuration.save = save
        return TestNode(configuration: configuration)
    }

    /// Writes one key of every type, some with TTLs.
    private func populate(_ client: TestClient) throws {
        try client.send("SET", "string", "hello")
        try client.send("SET", "number", "12345")
        try client.send("SET", "long", String(repeating: "x", count: 500))
        try client.send("RPUSH", "list", "a", "b", "c")
        try client.send("HSET", "hash", "f1", "v1", "f2", "v2")
        try client.send("SADD", "set", "m1", "m2", "m3")
        try client.send("ZADD", "zset", "1", "one", "2.5", "two", "-inf", "low")
        try client.send("SET", "volatile", "soon", "PX", "60000")
        try client.send("EXPIRE", "hash", "3600")
        try client.send("SELECT", "5")
        try client.send("SET", "in-db-5", "x")
        try client.send("SELECT", "0")
    }

    private func info(_ client: TestClient, _ field: String) throws -> String? {
        let text = try client.send("INFO", "persistence").text ?? ""
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix(field + ":") {
            return String(line.dropFirst(field.count + 1))
        }
        return nil
    }

    private func waitForBackgroundSave(_ client: TestClient) throws {
        let deadline = Date().addingTimeInterval(20)
        while try info(client, "rdb_bgsave_in_progress") != "0" {
            guard Date() < deadline else { throw PersistenceTestError.unexpected }
            Thread.sleep(forTimeInterval: 0.005)
        }
    }

    // MARK: DUMP / RESTORE

    /// DEBUG SET-ACTIVE-EXPIRE 0 stops the housekeeping cycle from reclaiming expired keys (redis's test suite relies on
    /// it); lazy expiry on access still applies, and 1 turns the cycle back on.
    @Test func debugSetActiveExpireTurnsTheCycleOffAndOn() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("DEBUG", "SET-ACTIVE-EXPIRE", "0") == .simple("OK"))
        for index in 0..<20 { try client.send("SET", "k\(index)", "v", "PX", "10") }
        node.advance(milliseconds: 50)
        for _ in 0..<5 { HousekeepingService<ContinuousClock>.expiryCycle(node: node.state, now: node.state.clock.nowMilliseconds()) }
        #expect(try client.send("DBSIZE") == .integer(20))
        #expect(try client.send("GET", "k0") == .null)
        #expect(try client.send("DBSIZE") == .integer(19))
        #expect(try client.send("DEBUG", "SET-ACTIVE-EXPIRE", "1") == .simple("OK"))
        for _ in 0..<5 { HousekeepingService<ContinuousClock>.expiryCycle(node: node.state, now: node.state.clock.nowMilliseconds()) }
        #expect(try client.send("DBSIZE") == .integer(0))
        #expect(try client.send("DEBUG", "SET-ACTIVE-EXPIRE").isError)
    }

    /// DEBUG PAUSE-CRON 1 stops the whole housekeeping cycle, 0 resumes it.
    @Test func debugPauseCronStopsTheHousekeepingCycle() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("DEBUG", "PAUSE-CRON", "1") == .simple("OK"))
        for index in 0..<20 { try client.send("SET", "k\(index)", "v", "PX", "10") }
        node.advance(milliseconds: 50)
        for _ in 0..<5 { HousekeepingService<ContinuousClock>.cycle(node: node.state, now: node.state.clock.nowMilliseconds()) }
        #expect(try client.send("DBSIZE") == .integer(20))
        #expect(try client.send("DEBUG", "PAUSE-CRON", "0") == .simple("OK"))
        for _ in 0..<5 { HousekeepingService<ContinuousClock>.cycle(node: node.state, now: node.state.clock.nowMilliseconds()) }
        #expect(try client.send("DBSIZE") == .integer(0))
    }

    @Test func dumpAndRestoreRoundTripEveryType() throws {
        let node = TestNode()
        let client = try node.connect()
        try populate(client)
        for key in ["string", "number", "long", "list", "hash", "set", "zset"] {
            guard case .bulk(let payload) = try client.send("DUMP", key) else {
                Issue.record("DUMP \(key) did not return a bulk string")
                continue
            }
            let before = try client.send("DEBUG", "DIGEST-VALUE", key)
            try client.send(arguments: [Array("RESTORE".utf8), Array("copy-\(key)".utf8), Array("0".utf8), payload])
            let copy = try client.send("DEBUG", "DIGEST-VALUE", "copy-\(key)")
            #expect(copy.strings == before.strings || key == "hash", "\(key)")
            #expect(try client.send("TYPE", "copy-\(key)").text == client.send("TYPE", key).text)
        }
        #expect(try client.send("LRANGE", "copy-list", "0", "-1").strings == ["a", "b", "c"])
        #expect(try client.send("ZRANGE", "copy-zset", "0", "-1", "WITHSCORES").strings == ["low", "-inf", "one", "1", "two", "2.5"])
        #expect(try client.send("GET", "copy-number").text == "12345")
        #expect(try client.send("DUMP", "missing") == .null)
    }

    @Test func restoreFollowsRedisOptionsAndErrors() throws {
        let node = TestNode()
        let client = try node.connect()
        try client.send("SET", "source", "value")
        guard case .bulk(let payload) = try client.send("DUMP", "source") else { throw PersistenceTestError.unexpected }
        func restore(_ arguments: String...) throws -> RESPValue {
            var all: [[UInt8]] = [Array("RESTORE".utf8), Array(arguments[0].utf8), Array(arguments[1].utf8), payload]
            all += arguments.dropFirst(2).map { Array($0.utf8) }
            return try client.send(arguments: all)
        }
        #expect(try restore("source", "0").text == "BUSYKEY Target key name already exists.")
        #expect(try restore("source", "0", "REPLACE") == .simple("OK"))
        #expect(try restore("ttl", "5000") == .simple("OK"))
        #expect(try client.send("PTTL", "ttl") == .integer(5000))
        let absolute = node.state.clock.nowMilliseconds() + 7000
        #expect(try restore("abs", String(absolute), "ABSTTL") == .simple("OK"))
        #expect(try client.send("PTTL", "abs") == .integer(7000))
        #expect(try restore("past", "1", "ABSTTL") == .simple("OK"))
        #expect(try client.send("EXISTS", "past") == .integer(0))
        #expect(try restore("neg", "-1").text == "ERR Invalid TTL value, must be >= 0")
        #expect(try restore("idle", "0", "IDLETIME", "100") == .simple("OK"))
        #expect(try client.send("OBJECT", "IDLETIME", "idle") == .integer(100))
        #expect(try restore("bad", "0", "IDLETIME", "-1").text == "ERR Invalid IDLETIME value, must be >= 0")
        #expect(try restore("bad", "0", "FREQ", "300").text == "ERR Invalid FREQ value, must be >= 0 and <= 255")
        #expect(try restore("bad", "0", "BOGUS").text == "ERR syntax error")
        var damaged = payload
        damaged[0] ^= 0xFF
        let reply = try client.send(arguments: [Array("RESTORE".utf8), Array("x".utf8), Array("0".utf8), damaged])
        #expect(reply.text == "ERR DUMP payload version or checksum are wrong")
        let garbage = try client.send("RESTORE", "x", "0", "not a payload")
        #expect(garbage.text == "ERR DUMP payload version or checksum are wrong")
        #expect(try client.send("EXISTS", "x") == .integer(0))
    }

    // MARK: SAVE / BGSAVE / LASTSAVE and loading

    @Test func saveWritesAFileAnotherNodeLoads() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = node(directory: directory)
        let client = try first.connect()
        try populate(client)
        #expect(try info(client, "rdb_changes_since_last_save") != "0")
        first.advance(milliseconds: 5000)
        #expect(try client.send("SAVE") == .simple("OK"))
        #expect(try client.send("LASTSAVE") == .integer(Int(first.state.clock.nowMilliseconds() / 1000)))
        #expect(try info(client, "rdb_changes_since_last_save") == "0")
        #expect(try info(client, "rdb_saves") == "1")
        #expect(FileManager.default.fileExists(atPath: directory + "/dump.cnsnap"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["dump.cnsnap"])
        let digest = try client.send("DEBUG", "DIGEST")
        #expect(digest.text != String(repeating: "0", count: 40))

        let second = node(directory: directory)
        second.advance(milliseconds: 5000)
        let loaded = try second.state.persistence.loadAtStartup(node: second.state)
        #expect(loaded?.records == 9)
        let other = try second.connect()
        #expect(try other.send("DEBUG", "DIGEST") == digest)
        // Absolute expiry times survive: five seconds passed since the keys were written.
        #expect(try other.send("PTTL", "volatile") == .integer(55000))
        #expect(try other.send("TTL", "hash") == .integer(3595))
        #expect(try info(other, "rdb_last_load_keys_loaded") == "9")

        // Loaded a minute later, the volatile key has expired and is not loaded.
        let third = node(directory: directory)
        third.advance(milliseconds: 5000 + 60_000)
        #expect(try third.state.persistence.loadAtStartup(node: third.state)?.records == 8)
    }

    @Test func aDamagedFileIsRefusedWithAMessageNamingIt() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = node(directory: directory)
        let client = try first.connect()
        try populate(client)
        try client.send("SAVE")
        let path = directory + "/dump.cnsnap"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let second = node(directory: directory)
        do {
            _ = try second.state.persistence.loadAtStartup(node: second.state)
            Issue.record("a damaged file loaded")
        } catch {
            #expect(error.message.contains(path))
            #expect(error.message.contains("damaged"))
            #expect(error.message.contains("move the file away"))
        }
        try Data(bytes.prefix(bytes.count - 3)).write(to: URL(fileURLWithPath: path))
        let truncated = node(directory: directory)
        #expect(throws: PersistenceError.self) { try truncated.state.persistence.loadAtStartup(node: truncated.state) }
        let empty = node(directory: directory + "/nothing-here")
        #expect(try empty.state.persistence.loadAtStartup(node: empty.state) == nil)
    }

    @Test func bgsaveWritesInTheBackgroundAndRefusesAConcurrentOne() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let testNode = node(directory: directory)
        let client = try testNode.connect()
        try populate(client)
        #expect(try client.send("BGSAVE") == .simple("Background saving started"))
        try waitForBackgroundSave(client)
        #expect(try info(client, "rdb_last_bgsave_status") == "ok")
        #expect(try info(client, "rdb_saves") == "1")
        #expect(FileManager.default.fileExists(atPath: directory + "/dump.cnsnap"))

        // With a save marked as running, BGSAVE and SAVE are refused and SCHEDULE queues one.
        let persistence = testNode.state.persistence
        let startedAt = try persistence.beginForTesting(node: testNode.state)
        #expect(try client.send("BGSAVE").text == "ERR Background save already in progress")
        #expect(try client.send("SAVE").text == "ERR Background save already in progress")
        #expect(try client.send("BGSAVE", "SCHEDULE") == .simple("Background saving scheduled"))
        #expect(try client.send("BGSAVE", "NOW").text == "ERR syntax error")
        #expect(persistence.endForTesting(startedAt: startedAt, node: testNode.state) == true)
        #expect(testNode.state.persistence.startSaveIfDue(node: testNode.state))
        try waitForBackgroundSave(client)
        #expect(try info(client, "rdb_saves") == "2")
    }

    @Test func aFailedBackgroundSaveIsReported() throws {
        let directory = try scratchDirectory()
        let testNode = node(directory: directory)
        let client = try testNode.connect()
        try client.send("SET", "k", "v")
        try FileManager.default.removeItem(atPath: directory)
        #expect(try client.send("BGSAVE") == .simple("Background saving started"))
        try waitForBackgroundSave(client)
        #expect(try info(client, "rdb_last_bgsave_status") == "err")
        #expect(try client.send("SAVE").text?.hasPrefix("ERR Failed opening the temp snapshot file") == true)
        #expect(try info(client, "rdb_changes_since_last_save") == "1")
    }

    @Test func changesSinceSaveCountWritesOnEveryEventLoopAndServedBlockedClients() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let testNode = node(directory: directory)
        // Each test client runs on its own event loop, so each counts its writes in its own stats block.
        let first = try testNode.connect()
        let second = try testNode.connect()
        try first.send("SET", "a", "1")
        try second.send("SET", "b", "2")
        #expect(try second.send("GET", "a") == .bulk(Array("1".utf8)))
        #expect(try info(first, "rdb_changes_since_last_save") == "2")
        // A BLPOP that blocks has changed nothing; served by another client's push, it has.
        try first.write("BLPOP", "list", "0")
        #expect(try info(second, "rdb_changes_since_last_save") == "2")
        #expect(try second.send("LPUSH", "list", "x") == .integer(1))
        #expect(try first.nextReply() == .array([.bulk(Array("list".utf8)), .bulk(Array("x".utf8))]))
        #expect(try info(second, "rdb_changes_since_last_save") == "4")
        #expect(try second.send("SAVE") == .simple("OK"))
        #expect(try info(first, "rdb_changes_since_last_save") == "0")
        try first.send("DEL", "a")
        #expect(try info(second, "rdb_changes_since_last_save") == "1")
    }

    @Test func saveRulesStartABackgroundSaveWhenDue() throws {
        let rules = try SaveRule.parse("900 1 300 10")
        #expect(rules == [SaveRule(seconds: 900, changes: 1), SaveRule(seconds: 300, changes: 10)])
        #expect(try SaveRule.parse("") == [])
        #expect(throws: ConfigurationError.self) { try SaveRule.parse("900") }
        #expect(throws: ConfigurationError.self) { try SaveRule.parse("900 x") }
        #expect(!SaveRule.isSaveDue(rules, changes: 0, secondsSinceLastSave: 10_000, lastSaveFailed: false, secondsSinceLastAttempt: 0))
        #expect(!SaveRule.isSaveDue(rules, changes: 5, secondsSinceLastSave: 299, lastSaveFailed: false, secondsSinceLastAttempt: 0))
        #expect(SaveRule.isSaveDue(rules, changes: 10, secondsSinceLastSave: 300, lastSaveFailed: false, secondsSinceLastAttempt: 0))
        #expect(SaveRule.isSaveDue(rules, changes: 1, secondsSinceLastSave: 900, lastSaveFailed: false, secondsSinceLastAttempt: 0))
        #expect(!SaveRule.isSaveDue(rules, changes: 1, secondsSinceLastSave: 900, lastSaveFailed: true, secondsSinceLastAttempt: 4))

        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let testNode = node(directory: directory, save: "10 2")
        let client = try testNode.connect()
        let service = PersistenceService(node: testNode.state, clock: ContinuousClock())
        try client.send("SET", "a", "1")
        testNode.advance(milliseconds: 20_000)
        #expect(!service.tick())  // one change, the rule wants two
        try client.send("SET", "b", "2")
        #expect(service.tick())
        try waitForBackgroundSave(client)
        #expect(try info(client, "rdb_changes_since_last_save") == "0")
        #expect(!service.tick())
    }

    @Test func inPlaceStringEditsAfterASnapshotBeganDoNotReachIt() throws {
        // Snapshots hold string values by reference: APPEND and SETRANGE must copy a shared block, not edit it.
        let testNode = TestNode()
        let client = try testNode.connect()
        let original = String(repeating: "a", count: 100)
        try client.send("SET", "grow", original)
        try client.send("APPEND", "grow", "b")  // now a block with spare room: APPEND would grow it in place
        try client.send("SET", "patch", original)
        let snapshot = testNode.state.keyspace.beginSnapshot()
        try client.send("APPEND", "grow", "c")
        try client.send("SETRANGE", "patch", "0", "zz")
        try client.send("GET", "grow")  // a second access: the stripe is captured already
        var bytes: [UInt8] = []
        while let chunk = snapshot.nextChunk() { bytes += chunk }
        var decoder = SnapshotStreamDecoder()
        let records = try decoder.feed(bytes)
        try decoder.finish()
        func text(_ key: String) -> String? {
            records.first { $0.key == CompactBytes(key) }?.value.withStringBytes { String(decoding: $0, as: UTF8.self) }
        }
        #expect(text("grow") == original + "b")
        #expect(text("patch") == original)
        #expect(try client.send("GET", "grow").text == original + "bc")
        #expect(try client.send("GET", "patch").text == "zz" + original.dropFirst(2))
    }

    // MARK: DEBUG, CONFIG, INFO

    @Test func digestIsOrderIndependentAndSensitiveToContent() throws {
        let first = try TestNode().connect()
        let second = try TestNode().connect()
        #expect(try first.send("DEBUG", "DIGEST") == .simple(String(repeating: "0", count: 40)))
        for index in 0..<200 { try first.send("SET", "k\(index)", "v\(index)") }
        for index in (0..<200).reversed() { try second.send("SET", "k\(index)", "v\(index)") }
        try first.send("SADD", "s", "a", "b", "c")
        try second.send("SADD", "s", "c", "b", "a")
        try first.send("HSET", "h", "x", "1", "y", "2")
        try second.send("HSET", "h", "y", "2", "x", "1")
        #expect(try first.send("DEBUG", "DIGEST") == second.send("DEBUG", "DIGEST"))
        #expect(try first.send("DEBUG", "DIGEST-VALUE", "s", "h") == second.send("DEBUG", "DIGEST-VALUE", "s", "h"))
        try second.send("EXPIRE", "k1", "100")
        #expect(try first.send("DEBUG", "DIGEST") != second.send("DEBUG", "DIGEST"))
        try second.send("PERSIST", "k1")
        try second.send("SET", "k1", "other")
        #expect(try first.send("DEBUG", "DIGEST") != second.send("DEBUG", "DIGEST"))
        #expect(try first.send("DEBUG", "DIGEST-VALUE", "missing").strings == [String(repeating: "0", count: 40)])
        #expect(try first.send("DEBUG", "NOPE").isError)
    }

    @Test func debugReloadKeepsTheDataset() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client = try node(directory: directory).connect()
        try populate(client)
        let digest = try client.send("DEBUG", "DIGEST")
        #expect(try client.send("DEBUG", "RELOAD") == .simple("OK"))
        #expect(try client.send("DEBUG", "DIGEST") == digest)
        #expect(try client.send("LRANGE", "list", "0", "-1").strings == ["a", "b", "c"])
    }

    @Test func commandsThatLockStripesThemselvesAreRefusedInsideMulti() throws {
        let client = try TestNode().connect()
        try client.send("SET", "k", "v")
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("BGSAVE").text == "ERR Command not allowed inside a transaction")
        #expect(try client.send("INFO", "keyspace") == .simple("QUEUED"))
        #expect(try client.send("DUMP", "k") == .simple("QUEUED"))
        let replies = try client.send("EXEC")
        #expect(replies.isError)  // EXECABORT: errors were queued
        #expect(try client.send("MULTI") == .simple("OK"))
        try client.send("INFO", "keyspace")
        try client.send("DUMP", "k")
        // DEBUG's digests read under the locks EXEC holds (redis allows DEBUG in MULTI; its SLEEP is used there).
        #expect(try client.send("DEBUG", "DIGEST") == .simple("QUEUED"))
        let executed = try client.send("EXEC")
        #expect(executed.elements?.count == 3)
        #expect(executed.elements?.first?.text?.contains("db0:keys=1") == true)
        #expect(try executed.elements?.last == client.send("DEBUG", "DIGEST"))
    }

    @Test func configAndInfoCoverPersistence() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let client = try TestNode().connect()
        #expect(try client.send("CONFIG", "GET", "dbfilename").strings == ["dbfilename", "dump.cnsnap"])
        #expect(try client.send("CONFIG", "SET", "save", "900 1 300 10") == .simple("OK"))
        #expect(try client.send("CONFIG", "GET", "save").strings == ["save", "900 1 300 10"])
        #expect(try client.send("CONFIG", "SET", "save", "900").isError)
        #expect(try client.send("CONFIG", "SET", "save", "") == .simple("OK"))
        #expect(try client.send("CONFIG", "SET", "dir", directory) == .simple("OK"))
        #expect(try client.send("CONFIG", "SET", "dir", directory + "/missing").isError)
        #expect(try client.send("CONFIG", "SET", "dbfilename", "../escape").isError)
        #expect(try client.send("CONFIG", "SET", "dbfilename", "other.snap") == .simple("OK"))
        #expect(try NodeConfiguration.parse(arguments: ["--save", ""]).save == "")
        #expect(throws: ConfigurationError.self) { try NodeConfiguration.parse(arguments: ["--save", "60"]) }
        for field in ["loading", "rdb_changes_since_last_save", "rdb_bgsave_in_progress", "rdb_last_save_time",
                      "rdb_last_bgsave_status", "rdb_last_bgsave_time_sec", "rdb_saves"] {
            #expect(try info(client, field) != nil, "\(field)")
        }
    }
}

/// DEBUG PROTOCOL (one value of each RESP type, in the client's protocol) and DEBUG SET-DISABLE-DENY-SCRIPTS, the
/// test hooks redis's scripting unit uses to check the Lua <-> RESP conversions.
struct DebugProtocolTests {
    @Test func everyTypeInBothProtocols() throws {
        let client = try TestNode().connect()
        #expect(try client.send("DEBUG", "PROTOCOL", "bignum") == .string("1234567999999999999999999999999999999"))
        #expect(try client.send("DEBUG", "PROTOCOL", "map") == .array([.integer(0), .integer(0), .integer(1), .integer(1), .integer(2), .integer(0)]))
        #expect(try client.send("DEBUG", "PROTOCOL", "attrib") == .string("Some real reply following the attribute"))
        #expect(try client.send("DEBUG", "PROTOCOL", "push") == .error("ERR RESP2 is not supported by this command"))
        #expect(try client.send("DEBUG", "PROTOCOL", "nothing").isError)
        try client.send("HELLO", "3")
        #expect(try client.send("DEBUG", "PROTOCOL", "true") == .boolean(true))
        #expect(try client.send("DEBUG", "PROTOCOL", "double") == .double(3.141))
        #expect(try client.send("DEBUG", "PROTOCOL", "set") == .set([.integer(0), .integer(1), .integer(2)]))
        #expect(try client.send("DEBUG", "PROTOCOL", "verbatim") == .verbatim("This is a verbatim\nstring"))
        #expect(try client.send("DEBUG", "PROTOCOL", "null") == .null)
    }

    /// DEBUG OBJECT looks in the table (redis's dbFind): a key past its time to live but not reclaimed yet is there.
    @Test func debugObjectSeesAnExpiredKeyUntilItIsReclaimed() throws {
        let node = TestNode()
        let client = try node.connect()
        try client.send("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        try client.send("SET", "key", "value", "PX", "1")
        node.advance(milliseconds: 2)
        #expect(try client.send("DEBUG", "OBJECT", "key").text?.hasPrefix("Value at:") == true)
        #expect(try client.send("EXISTS", "key") == .integer(0))
        #expect(try client.send("DEBUG", "OBJECT", "key") == .error("ERR no such key"))
    }

    @Test func scriptsSeeTheConversionsOnceDenyScriptsIsOff() throws {
        let client = try TestNode().connect()
        let script = "redis.setresp(3); local v = redis.call('debug', 'protocol', 'bignum'); return v.big_number"
        #expect(try client.send("EVAL", script, "0").text?.hasPrefix("ERR This Redis command is not allowed from script") == true)
        #expect(try client.send("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1") == .simple("OK"))
        #expect(try client.send("EVAL", script, "0") == .string("1234567999999999999999999999999999999"))
        // An attribute is skipped: the reply after it is the value.
        #expect(try client.send("EVAL", "redis.setresp(3); return redis.call('debug', 'protocol', 'attrib')", "0") == .string(
            "Some real reply following the attribute"))
        #expect(try client.send("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0") == .simple("OK"))
        #expect(try client.send("EVAL", script, "0").isError)
    }
}
