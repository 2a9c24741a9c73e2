// The transaction family: WATCH against whole-database changes, as redis 7's multi.tcl checks them. FLUSHALL and
// FLUSHDB break a WATCH only on a key that existed; SWAPDB on a key that exists in either database (a watched key
// missing before and after did not change).
import CacheNode
import CacheNodeTestSupport
import Testing

struct TransactionCommandsTests {
    /// WATCH `key` in `database` (as prepared by `setUp`), run `change` from the same client, then MULTI/PING/EXEC:
    /// whether the transaction ran.
    private func transactionRuns(afterWatching key: String, _ setUp: [[String]], _ change: [[String]]) throws -> Bool {
        let node = TestNode()
        let client = try node.connect()
        for command in setUp { _ = try client.send(arguments: command.map { Array($0.utf8) }) }
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
}
