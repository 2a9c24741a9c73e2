// EXEC re-routes its queued commands in cluster mode (redis getNodeByQuery over the transaction): a slot that moved
// or started migrating between MULTI and EXEC gets -MOVED / -ASK / -TRYAGAIN at EXEC, the transaction is discarded
// and nothing of it runs on a slot this node no longer owns.
import CacheNode
import CacheNodeTestSupport
import CacheStore
import Testing

struct ClusterTransactionTests {
    // Slots (redis CLUSTER KEYSLOT): bar 5061 and k2 449 (both ours), foo 12182 (C).

    @Test func execAfterTheSlotMovedAwayIsRedirectedAndDiscarded() throws {
        let fixture = try ClusterFixture()
        #expect(try fixture.push() == .simple("OK"))
        let client = fixture.client
        let operator_ = try fixture.node.connect()
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("SET", "bar", "1") == .simple("QUEUED"))
        #expect(try client.send("INCR", "{bar}n") == .simple("QUEUED"))
        // The (empty) slot is given to B before EXEC.
        #expect(try operator_.send("CLUSTER", "SETSLOT", "5061", "NODE", ClusterFixture.nodeB) == .simple("OK"))
        #expect(try client.send("EXEC") == .error("MOVED 5061 127.0.0.1:7001"))
        // Discarded, as redis does: nothing ran, and there is no transaction left.
        #expect(try operator_.send("CLUSTER", "COUNTKEYSINSLOT", "5061") == .integer(0))
        #expect(try client.send("EXEC") == .error("ERR EXEC without MULTI"))
        // A transaction on a slot still ours runs.
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("SET", "k2", "v") == .simple("QUEUED"))
        #expect(try client.send("EXEC") == .array([.simple("OK")]))
    }

    @Test func execOnAMigratingSlotAsksForMissingKeysAndRunsWhenAllExist() throws {
        let fixture = try ClusterFixture()
        #expect(try fixture.push() == .simple("OK"))
        let client = fixture.client
        let operator_ = try fixture.node.connect()
        #expect(try client.send("SET", "{bar}a", "1") == .simple("OK"))

        // Every key present: EXEC runs here although the slot started migrating.
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("INCR", "{bar}a") == .simple("QUEUED"))
        #expect(try operator_.send("CLUSTER", "SETSLOT", "5061", "MIGRATING", ClusterFixture.nodeB) == .simple("OK"))
        #expect(try client.send("EXEC") == .array([.integer(2)]))

        // A single missing key: -ASK to the target.
        #expect(try operator_.send("CLUSTER", "SETSLOT", "5061", "STABLE") == .simple("OK"))
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("SET", "{bar}new", "1") == .simple("QUEUED"))
        #expect(try operator_.send("CLUSTER", "SETSLOT", "5061", "MIGRATING", ClusterFixture.nodeB) == .simple("OK"))
        #expect(try client.send("EXEC") == .error("ASK 5061 127.0.0.1:7001"))
        #expect(try client.send("EXEC") == .error("ERR EXEC without MULTI"))

        // Some keys present, some moved already: -TRYAGAIN, and the present key is untouched.
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("INCR", "{bar}a") == .simple("QUEUED"))
        #expect(try client.send("GET", "{bar}gone") == .simple("QUEUED"))
        #expect(try client.send("EXEC") == .error("TRYAGAIN Multiple keys request during rehashing of slot"))
        #expect(try client.send("GET", "{bar}a") == .string("2"))
    }

    @Test func execAcrossSlotsIsCrossSlotAndWatchesAreDropped() throws {
        let fixture = try ClusterFixture()
        #expect(try fixture.push() == .simple("OK"))
        let client = fixture.client
        #expect(try client.send("WATCH", "bar") == .simple("OK"))
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("SET", "bar", "1") == .simple("QUEUED"))
        #expect(try client.send("SET", "k2", "1") == .simple("QUEUED"))
        #expect(try client.send("EXEC") == .error("CROSSSLOT Keys in request don't hash to the same slot"))
        #expect(try client.send("EXISTS", "bar") == .integer(0))
        #expect(try client.send("EXISTS", "k2") == .integer(0))
        // The watch went with the discarded transaction: a change to bar no longer aborts the next one.
        #expect(try client.send("SET", "bar", "2") == .simple("OK"))
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("GET", "bar") == .simple("QUEUED"))
        #expect(try client.send("EXEC") == .array([.string("2")]))
    }
}
