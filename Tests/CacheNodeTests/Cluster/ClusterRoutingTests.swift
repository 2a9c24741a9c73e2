// Cluster mode through the real dispatcher: pushed topologies and stale epochs, MOVED/ASK/TRYAGAIN/CROSSSLOT/
// CLUSTERDOWN redirects with redis's wording, hash tags, ASKING lasting one command, READONLY replicas, the
// SETSLOT state machine, per-slot key counts, and the CLUSTER reply shapes.
import CacheNode
import CacheNodeTestSupport
import CacheStore
import Testing

/// A node in cluster mode and a three-primary topology around it: this node owns 0-5460, B 5461-10922,
/// C 10923-16383, R replicates this node.
struct ClusterFixture {
    static let nodeB = String(repeating: "b", count: 40)
    static let nodeC = String(repeating: "c", count: 40)
    static let replica = String(repeating: "d", count: 40)

    let node: TestNode
    let client: TestClient
    let myID: String

    init() throws {
        var configuration = NodeConfiguration()
        configuration.clusterEnabled = true
        configuration.clusterConfigFile = ""
        node = TestNode(configuration: configuration)
        client = try node.connect()
        guard case .bulk(let id) = try client.send("CLUSTER", "MYID") else { throw ClusterTestError.noID }
        myID = String(decoding: id, as: UTF8.self)
    }

    func payload(myRanges: String = "0-5460", extra: String = "") -> String {
        """
        \(myID) 127.0.0.1:7000@17000 master - 0 0 1 connected \(myRanges)\(extra)
        \(Self.nodeB) 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922
        \(Self.nodeC) 127.0.0.1:7002@17002 master - 0 0 3 connected 10923-16383
        \(Self.replica) 127.0.0.1:7003@17003 slave \(myID) 0 0 1 connected
        """
    }

    func push(epoch: Int = 1) throws -> RESPValue {
        try client.send("CLUSTER", "TOPOLOGY", "SET", String(epoch), payload())
    }
}

enum ClusterTestError: Error { case noID }

struct ClusterRoutingTests {
    // Keys and their slots (redis CLUSTER KEYSLOT): bar 5061 (ours), {a 10276 (B), foo 12182 (C).

    @Test func keyCommandsAreRefusedUntilSlotsAreAssigned() throws {
        let fixture = try ClusterFixture()
        #expect(try fixture.client.send("CLUSTER", "KEYSLOT", "foo") == .integer(12182))
        #expect(try fixture.client.send("SET", "foo", "1") == .error("CLUSTERDOWN Hash slot not served"))
        #expect(try fixture.client.send("PING") == .simple("PONG"))
        #expect(try fixture.client.send("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == .simple("OK"))
        #expect(try fixture.client.send("SET", "foo", "1") == .simple("OK"))
        #expect(try fixture.client.send("SELECT", "1") == .error("ERR SELECT is not allowed in cluster mode"))
        #expect(try fixture.client.send("SELECT", "0") == .simple("OK"))
        #expect(try fixture.client.send("MOVE", "foo", "1") == .error("ERR MOVE is not allowed in cluster mode"))
        #expect(try fixture.client.send("SWAPDB", "0", "1") == .error("ERR SWAPDB is not allowed in cluster mode"))
    }

    @Test func pushedTopologyRedirectsWithMovedAndRefusesCrossSlot() throws {
        let fixture = try ClusterFixture()
        let client = fixture.client
        #expect(try fixture.push() == .simple("OK"))
        #expect(try client.send("SET", "bar", "1") == .simple("OK"))
        #expect(try client.send("GET", "bar") == .string("1"))
        #expect(try client.send("GET", "foo") == .error("MOVED 12182 127.0.0.1:7002"))
        #expect(try client.send("SET", "{a", "x") == .error("MOVED 10276 127.0.0.1:7001"))
        #expect(try client.send("MSET", "bar", "1", "foo", "2") == .error("CROSSSLOT Keys in request don't hash to the same slot"))
        #expect(try client.send("MSET", "{bar}1", "1", "{bar}2", "2") == .simple("OK"))
        #expect(try client.send("MGET", "{bar}1", "{bar}2") == .array([.string("1"), .string("2")]))
        // Inside MULTI a redirect is an error at queue time, so EXEC aborts.
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("GET", "foo") == .error("MOVED 12182 127.0.0.1:7002"))
        #expect(try client.send("EXEC") == .error("EXECABORT Transaction discarded because of previous errors."))
    }

    @Test func staleAndConflictingEpochsAreRejected() throws {
        let fixture = try ClusterFixture()
        #expect(try fixture.push(epoch: 5) == .simple("OK"))
        #expect(try fixture.push(epoch: 5) == .simple("OK"))  // a retried push of the same topology
        let stale = try fixture.client.send("CLUSTER", "TOPOLOGY", "SET", "4", fixture.payload())
        #expect((stale.text ?? "").hasPrefix("STALEEPOCH"))
        let conflicting = try fixture.client.send("CLUSTER", "TOPOLOGY", "SET", "5", fixture.payload(myRanges: "0-100"))
        #expect((conflicting.text ?? "").hasPrefix("STALEEPOCH"))
        #expect(try fixture.client.send("CLUSTER", "TOPOLOGY", "SET", "6", fixture.payload(myRanges: "0-100")) == .simple("OK"))
        #expect(try fixture.client.send("GET", "bar") == .error("CLUSTERDOWN Hash slot not served"))
        #expect(try fixture.client.send("GET", "k126") == .error("CLUSTERDOWN The cluster is down"))  // slot 58
        guard case .array(let view) = try fixture.client.send("CLUSTER", "TOPOLOGY", "GET") else { Issue.record("no array"); return }
        #expect(view.first == .integer(6))
        let info = try fixture.client.send("CLUSTER", "INFO").text ?? ""
        #expect(info.contains("cluster_state:fail\r\n"))
        #expect(info.contains("cluster_current_epoch:6\r\n"))
        #expect(info.contains("cluster_slots_assigned:11024\r\n"))
        // Malformed payloads are refused and change nothing.
        #expect(try fixture.client.send("CLUSTER", "TOPOLOGY", "SET", "7", "nonsense").isError)
        #expect(try fixture.client.send("CLUSTER", "TOPOLOGY", "GET") == .array(view))
    }

    @Test func askingWithoutMigrationStillRedirects() throws {
        let fixture = try ClusterFixture()
        _ = try fixture.push()
        #expect(try fixture.client.send("ASKING") == .simple("OK"))
        #expect(try fixture.client.send("GET", "foo") == .error("MOVED 12182 127.0.0.1:7002"))
    }

    @Test func migratingSlotAsksForMissingKeysAndTriesAgainOnPartialPresence() throws {
        let fixture = try ClusterFixture()
        let client = fixture.client
        _ = try fixture.push()
        #expect(try client.send("SET", "{bar}present", "v") == .simple("OK"))
        #expect(try client.send("CLUSTER", "SETSLOT", "5061", "MIGRATING", ClusterFixture.nodeB) == .simple("OK"))
        #expect(try client.send("GET", "{bar}present") == .string("v"))
        #expect(try client.send("GET", "{bar}missing") == .error("ASK 5061 127.0.0.1:7001"))
        #expect(try client.send("SET", "{bar}missing", "1") == .error("ASK 5061 127.0.0.1:7001"))
        #expect(try client.send("MGET", "{bar}present", "{bar}missing") == .error("TRYAGAIN Multiple keys request during rehashing of slot"))
        let nodes = try client.send("CLUSTER", "NODES").text ?? ""
        #expect(nodes.contains("[5061->-\(ClusterFixture.nodeB)]"))
        // The slot cannot be handed away while keys remain; once they are gone it can.
        #expect(try client.send("CLUSTER", "SETSLOT", "5061", "NODE", ClusterFixture.nodeB)
            == .error("ERR Can't assign hashslot 5061 to a different node while I still hold keys for this hash slot."))
        #expect(try client.send("DEL", "{bar}present") == .integer(1))
        #expect(try client.send("CLUSTER", "SETSLOT", "5061", "NODE", ClusterFixture.nodeB) == .simple("OK"))
        #expect(try client.send("GET", "{bar}present") == .error("MOVED 5061 127.0.0.1:7001"))
        #expect(!(try client.send("CLUSTER", "NODES").text ?? "").contains("->-"))
    }

    @Test func importingSlotServesOnlyAskingClientsForOneCommand() throws {
        let fixture = try ClusterFixture()
        let client = fixture.client
        _ = try fixture.push()
        #expect(try client.send("CLUSTER", "SETSLOT", "12182", "IMPORTING", ClusterFixture.nodeC) == .simple("OK"))
        #expect(try client.send("SET", "foo", "1") == .error("MOVED 12182 127.0.0.1:7002"))
        #expect(try client.send("ASKING") == .simple("OK"))
        #expect(try client.send("SET", "foo", "1") == .simple("OK"))
        #expect(try client.send("GET", "foo") == .error("MOVED 12182 127.0.0.1:7002"))
        #expect(try client.send("ASKING") == .simple("OK"))
        #expect(try client.send("MGET", "{foo}a", "{foo}b") == .error("TRYAGAIN Multiple keys request during rehashing of slot"))
        #expect(try client.send("CLUSTER", "COUNTKEYSINSLOT", "12182") == .integer(1))
        #expect(try client.send("CLUSTER", "SETSLOT", "12182", "NODE", fixture.myID) == .simple("OK"))
        #expect(try client.send("GET", "foo") == .string("1"))
        let nodes = try client.send("CLUSTER", "NODES").text ?? ""
        #expect(nodes.contains("myself,master - 0 0 4 connected 0-5460 12182\n"))
    }

    @Test func setSlotStateMachineRefusesWhatRedisRefuses() throws {
        let fixture = try ClusterFixture()
        let client = fixture.client
        _ = try fixture.push()
        let unknown = String(repeating: "e", count: 40)
        #expect(try client.send("CLUSTER", "SETSLOT", "12182", "MIGRATING", ClusterFixture.nodeB) == .error("ERR I'm not the owner of hash slot 12182"))
        #expect(try client.send("CLUSTER", "SETSLOT", "100", "IMPORTING", ClusterFixture.nodeB) == .error("ERR I'm already the owner of hash slot 100"))
        #expect(try client.send("CLUSTER", "SETSLOT", "100", "MIGRATING", unknown) == .error("ERR I don't know about node \(unknown)"))
        #expect(try client.send("CLUSTER", "SETSLOT", "100", "MIGRATING", ClusterFixture.replica) == .error("ERR Target node is not a master"))
        #expect(try client.send("CLUSTER", "SETSLOT", "100", "NODE", unknown) == .error("ERR Unknown node \(unknown)"))
        #expect(try client.send("CLUSTER", "SETSLOT", "100", "BOGUS").isError)
        #expect(try client.send("CLUSTER", "SETSLOT", "100", "MIGRATING", ClusterFixture.nodeB) == .simple("OK"))
        #expect(try client.send("CLUSTER", "SETSLOT", "100", "STABLE") == .simple("OK"))
        #expect(!(try client.send("CLUSTER", "NODES").text ?? "").contains("["))
        #expect(try client.send("CLUSTER", "ADDSLOTS", "100") == .error("ERR Slot 100 is already busy"))
        #expect(try client.send("CLUSTER", "ADDSLOTS", "16384") == .error("ERR Invalid or out of range slot"))
        #expect(try client.send("CLUSTER", "DELSLOTSRANGE", "0", "10") == .simple("OK"))
        #expect(try client.send("CLUSTER", "DELSLOTS", "5") == .error("ERR Slot 5 is already unassigned"))
        #expect(try client.send("CLUSTER", "ADDSLOTSRANGE", "5", "3") == .error("ERR start slot number 5 is greater than end slot number 3"))
        #expect(try client.send("CLUSTER", "GETKEYSINSLOT", "1", "-1") == .error("ERR Invalid slot or number of keys"))
        #expect(try client.send("CLUSTER", "COUNTKEYSINSLOT", "99999") == .error("ERR Invalid slot"))
    }

    @Test func readonlyReplicaServesReadsOfItsPrimarySlots() throws {
        var configuration = NodeConfiguration()
        configuration.clusterEnabled = true
        configuration.clusterConfigFile = ""
        let node = TestNode(configuration: configuration)
        let client = try node.connect()
        guard case .bulk(let idBytes) = try client.send("CLUSTER", "MYID") else { Issue.record("no id"); return }
        let myID = String(decoding: idBytes, as: UTF8.self)
        let primary = String(repeating: "a", count: 40)
        let payload = """
            \(primary) 127.0.0.1:7000@17000 master - 0 0 1 connected 0-16383
            \(myID) 127.0.0.1:7003@17003 slave \(primary) 0 0 1 connected
            """
        #expect(try client.send("CLUSTER", "TOPOLOGY", "SET", "1", payload) == .simple("OK"))
        #expect(try client.send("GET", "bar") == .error("MOVED 5061 127.0.0.1:7000"))
        #expect(try client.send("READONLY") == .simple("OK"))
        #expect(try client.send("GET", "bar") == .null)
        #expect(try client.send("SET", "bar", "1") == .error("MOVED 5061 127.0.0.1:7000"))
        #expect(try client.send("READWRITE") == .simple("OK"))
        #expect(try client.send("GET", "bar") == .error("MOVED 5061 127.0.0.1:7000"))
        #expect(try client.send("CLUSTER", "MYSHARDID") == .string(primary))
    }

    @Test func slotKeyCountsFollowWritesExpiryAndFlush() throws {
        let fixture = try ClusterFixture()
        let client = fixture.client
        #expect(try client.send("CLUSTER", "ADDSLOTSRANGE", "0", "16383") == .simple("OK"))
        for index in 0..<50 { try client.send("SET", "{s}\(index)", "v") }
        let slot = HashSlot.slot(of: "s")
        #expect(try client.send("CLUSTER", "COUNTKEYSINSLOT", String(slot)) == .integer(50))
        guard case .array(let some) = try client.send("CLUSTER", "GETKEYSINSLOT", String(slot), "10") else { Issue.record("no array"); return }
        #expect(some.count == 10)
        #expect(try client.send("PEXPIRE", "{s}0", "10") == .integer(1))
        fixture.node.advance(milliseconds: 20)
        #expect(try client.send("GET", "{s}0") == .null)
        #expect(try client.send("CLUSTER", "COUNTKEYSINSLOT", String(slot)) == .integer(49))
        #expect(try client.send("FLUSHALL") == .simple("OK"))
        #expect(try client.send("CLUSTER", "COUNTKEYSINSLOT", String(slot)) == .integer(0))
        #expect(try client.send("CLUSTER", "GETKEYSINSLOT", String(slot), "10") == .array([]))
    }

    @Test func replyShapesFollowRedis() throws {
        let fixture = try ClusterFixture()
        let client = fixture.client
        _ = try fixture.push(epoch: 3)
        let nodes = try client.send("CLUSTER", "NODES").text ?? ""
        let mine = nodes.split(separator: "\n").first { $0.hasPrefix(fixture.myID) }.map(String.init)
        #expect(mine == "\(fixture.myID) 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460")
        #expect(nodes.contains("\(ClusterFixture.replica) 127.0.0.1:7003@17003 slave \(fixture.myID) 0 "))
        guard case .array(let slots) = try client.send("CLUSTER", "SLOTS") else { Issue.record("no slots"); return }
        #expect(slots.count == 3)
        #expect(slots.first == .array([
            .integer(0), .integer(5460),
            .array([.string("127.0.0.1"), .integer(7000), .string(fixture.myID), .array([])]),
            .array([.string("127.0.0.1"), .integer(7003), .string(ClusterFixture.replica), .array([])]),
        ]))
        guard case .array(let shards) = try client.send("CLUSTER", "SHARDS") else { Issue.record("no shards"); return }
        #expect(shards.count == 3)
        let info = try client.send("CLUSTER", "INFO").text ?? ""
        for field in ["cluster_state:ok", "cluster_slots_assigned:16384", "cluster_slots_ok:16384", "cluster_known_nodes:4",
                      "cluster_size:3", "cluster_current_epoch:3", "cluster_my_epoch:1"] {
            #expect(info.contains(field + "\r\n"), "CLUSTER INFO lacks \(field)")
        }
        #expect((try client.send("INFO", "cluster").text ?? "").contains("cluster_enabled:1"))
        #expect(try client.send("CLUSTER", "COUNT-FAILURE-REPORTS", ClusterFixture.nodeB) == .integer(0))
        #expect(try client.send("CLUSTER", "BUMPEPOCH") == .simple("BUMPED 4"))
        #expect(try client.send("CLUSTER", "BUMPEPOCH") == .simple("STILL 4"))
    }

    @Test func clusterCommandsNeedClusterMode() throws {
        let client = try TestNode().connect()
        #expect(try client.send("CLUSTER", "INFO") == .error("ERR This instance has cluster support disabled"))
        #expect(try client.send("ASKING") == .error("ERR This instance has cluster support disabled"))
        #expect(try client.send("SET", "foo", "1") == .simple("OK"))
    }
}
