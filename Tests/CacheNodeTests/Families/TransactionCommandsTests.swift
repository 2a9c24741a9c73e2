// The transaction family: WATCH against whole-database changes, as redis 7's multi.tcl checks them. FLUSHALL and
// FLUSHDB break a WATCH only on a key that existed; SWAPDB on a key that exists in either database (a watched key
// missing before and after did not change). SAVE and SHUTDOWN are refused inside MULTI and abort it.
import CacheNode
import CacheNodeTestSupport
import Testing

struct TransactionCommandsTests {
    /// WATCH `key` in `database` (as prepared by `setUp`), run `change` from the same client, then MULTI/PING/EXEC:
    /// whether the transaction ran.
    private func transactionRuns(
        afterWatching key: String, _ setUp: [[String]], _ change: [[String]], millisecondsBeforeWatch: Int64 = 0
    ) throws -> Bool {
        let node = TestNode()
        let client = try node.connect()
        for command in setUp { _ = try client.send(arguments: command.map { Array($0.utf8) }) }
        if millisecondsBeforeWatch > 0 {
            // Keys whose time passed stay stored (no active expiry) until something touches them.
            _ = try client.send("DEBUG", "SET-ACTIVE-EXPIRE", "0")
            node.advance(milliseconds: millisecondsBeforeWatch)
        }
        #expect(try client.send("WATCH", key) == .simple("OK"))
        for command in change { _ = try client.send(arguments: command.map { Array($0.utf8) }) }
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("PING") == .simple("QUEUED"))
        switch try client.send("EXEC") {
        case .array(let replies): return replies == [.simple("PONG")]
        case .nullArray: return false
        case let other:
            Issue.record("EXEC answered \(other)")
            return false
        }
    }

    @Test func flushallAndFlushdbBreakAWatchOnlyOnAKeyThatExisted() throws {
        #expect(try !transactionRuns(afterWatching: "x", [["SET", "x", "30"]], [["FLUSHALL"]]))
        #expect(try transactionRuns(afterWatching: "x", [["DEL", "x"]], [["FLUSHALL"]]))
        #expect(try !transactionRuns(afterWatching: "x", [["SET", "x", "30"]], [["FLUSHDB"]]))
        #expect(try transactionRuns(afterWatching: "x", [["DEL", "x"]], [["FLUSHDB"]]))
        // Another database's FLUSHDB leaves it alone.
        #expect(try transactionRuns(afterWatching: "x", [["SET", "x", "30"], ["SELECT", "1"], ["SET", "x", "1"], ["SELECT", "0"]],
                                    [["SELECT", "1"], ["FLUSHDB"], ["SELECT", "0"]]))
    }

    @Test func swapdbBreaksAWatchOnAKeyThatExistsInEitherDatabase() throws {
        // Exists in the watched database: SWAPDB "deletes" it.
        #expect(try !transactionRuns(afterWatching: "x", [["SET", "x", "30"]], [["SWAPDB", "0", "1"]]))
        // Missing there, exists in the other: SWAPDB "creates" it.
        #expect(try !transactionRuns(afterWatching: "x", [["SELECT", "1"], ["SET", "x", "30"], ["SELECT", "0"]], [["SWAPDB", "0", "1"]]))
        // Missing in both: nothing changed for it.
        #expect(try transactionRuns(afterWatching: "x", [["SELECT", "1"], ["SET", "y", "30"], ["SELECT", "0"]], [["SWAPDB", "0", "1"]]))
    }

    // redis 7.2's stale keys: a key already expired (but still stored) when watched is logically missing, so its
    // deletion, or its replacement by another expired key, changes nothing; a key that expires after WATCH does.
    @Test func aWatchedKeyThatWasAlreadyExpiredIsMissingNotChanged() throws {
        let stale: [[String]] = [["SET", "x", "foo", "PX", "1"]]
        #expect(try transactionRuns(afterWatching: "x", stale, [], millisecondsBeforeWatch: 2))
        #expect(try transactionRuns(afterWatching: "x", stale, [["DEL", "x"]], millisecondsBeforeWatch: 2))
        #expect(try transactionRuns(afterWatching: "x", stale, [["FLUSHDB"]], millisecondsBeforeWatch: 2))
        #expect(try transactionRuns(afterWatching: "x", stale, [["SWAPDB", "0", "1"]], millisecondsBeforeWatch: 2))
        // Written again, it changed.
        #expect(try !transactionRuns(afterWatching: "x", stale, [["SET", "x", "bar"]], millisecondsBeforeWatch: 2))
        // A missing key replaced by an expired one, and an expired one by another: no change.
        #expect(try transactionRuns(afterWatching: "x", [["SELECT", "1"], ["SET", "x", "foo", "PX", "1"], ["SELECT", "0"]],
                                    [["SWAPDB", "0", "1"]], millisecondsBeforeWatch: 2))
        #expect(try transactionRuns(afterWatching: "x", stale + [["SELECT", "1"], ["SET", "x", "foo", "PX", "1"], ["SELECT", "0"]],
                                    [["SWAPDB", "0", "1"]], millisecondsBeforeWatch: 2))
        // A key live when watched that expires before EXEC aborts it.
        #expect(try !transactionRuns(afterWatching: "x", [["SET", "x", "foo", "PX", "100"]], [["DEBUG", "SLEEP", "0.2"]]))
    }

    // Queued, SHUTDOWN ran at EXEC and stopped the node (found by redis's multi.tcl "MULTI with SHUTDOWN").
    @Test(arguments: ["SAVE", "SHUTDOWN"])
    func saveAndShutdownAreRefusedInsideMulti(command: String) throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("SET", "foo", "bar") == .simple("QUEUED"))
        #expect(try client.send(command) == .error("ERR Command not allowed inside a transaction"))
        #expect(try client.send("EXEC") == .error("EXECABORT Transaction discarded because of previous errors."))
        #expect(try client.send("GET", "foo") == .null)
        #expect(!client.isClosed)
    }
}
