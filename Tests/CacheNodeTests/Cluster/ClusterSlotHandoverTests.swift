// Handing slots over cheaply: CLUSTER SETSLOTSRANGE (cache-node's batched SETSLOT) through the dispatcher — the same
// states, redirects and refusals as the single-slot form, all or nothing — the routing snapshot derived incrementally
// after SETSLOT (it must equal one built from scratch), and nodes.conf written coalesced after SETSLOT but before the
// reply of a push or SAVECONFIG.
@testable import CacheNode
import CacheNodeTestSupport
import CacheStore
import Foundation
import Synchronization
import Testing

struct ClusterSlotHandoverTests {
    // Keys and their slots (redis CLUSTER KEYSLOT): bar 5061 (ours), {a 10276 (B), foo 12182 (C).

    /// The routing the node publishes equals one built from its topology from scratch.
    func expectRoutingMatchesTopology(_ cluster: ClusterState, sourceLocation: SourceLocation = #_sourceLocation) {
        let published = cluster.routing
        let rebuilt = ClusterRouting(cluster.topology)
        #expect(published.owners == rebuilt.owners, sourceLocation: sourceLocation)
        #expect(published.addresses == rebuilt.addresses, sourceLocation: sourceLocation)
        #expect(published.isHealthy == rebuilt.isHealthy, sourceLocation: sourceLocation)
        #expect(published.migratingTo == rebuilt.migratingTo, sourceLocation: sourceLocation)
        #expect(published.importing == rebuilt.importing, sourceLocation: sourceLocation)
    }

    @Test func setSlotsRangeMovesABatchThroughTheSameStatesAsSetSlot() throws {
        let fixture = try ClusterFixture()
        let client = fixture.client
        let cluster = try #require(fixture.node.state.cluster)
        _ = try fixture.push()
        #expect(try client.send("SET", "{bar}present", "v") == .simple("OK"))

        // Source side: 5000-5100 (holding slot 5061) migrate to B in one call.
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "5000", "5100", "MIGRATING", ClusterFixture.nodeB) == .simple("OK"))
        expectRoutingMatchesTopology(cluster)
        let nodes = try client.send("CLUSTER", "NODES").text ?? ""
        #expect(nodes.contains("[5000->-\(ClusterFixture.nodeB)]") && nodes.contains("[5100->-\(ClusterFixture.nodeB)]"))
        #expect(!nodes.contains("[4999->-") && !nodes.contains("[5101->-"))
        #expect(try client.send("GET", "{bar}present") == .string("v"))
        #expect(try client.send("GET", "{bar}missing") == .error("ASK 5061 127.0.0.1:7001"))

        // Giving the range away is refused while one of its slots holds a key; the error names that slot and nothing
        // changed.
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "5000", "5100", "NODE", ClusterFixture.nodeB)
            == .error("ERR Can't assign hashslot 5061 to a different node while I still hold keys for this hash slot."))
        #expect(try client.send("GET", "{bar}missing") == .error("ASK 5061 127.0.0.1:7001"))
        #expect(cluster.topology.slotCount(of: fixture.myID) == 5461)
        #expect(try client.send("DEL", "{bar}present") == .integer(1))
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "5000", "5100", "NODE", ClusterFixture.nodeB) == .simple("OK"))
        expectRoutingMatchesTopology(cluster)
        #expect(try client.send("GET", "{bar}present") == .error("MOVED 5061 127.0.0.1:7001"))
        #expect(try client.send("GET", "{bar}x") == .error("MOVED 5061 127.0.0.1:7001"))
        #expect(!(try client.send("CLUSTER", "NODES").text ?? "").contains("->-"))
        #expect(cluster.topology.slotRanges(of: fixture.myID) == [0...4999, 5101...5460])
        #expect((try client.send("CLUSTER", "INFO").text ?? "").contains("cluster_state:ok"))

        // Target side: import C's 12000-12199 and 12300 (two ranges in one call), then claim them with one new epoch.
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "12000", "12199", "12300", "12300", "IMPORTING", ClusterFixture.nodeC)
            == .simple("OK"))
        expectRoutingMatchesTopology(cluster)
        #expect(try client.send("SET", "foo", "1") == .error("MOVED 12182 127.0.0.1:7002"))
        #expect(try client.send("ASKING") == .simple("OK"))
        #expect(try client.send("SET", "foo", "1") == .simple("OK"))
        let epoch = cluster.topology.currentEpoch
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "12000", "12199", "12300", "12300", "NODE", fixture.myID) == .simple("OK"))
        expectRoutingMatchesTopology(cluster)
        #expect(cluster.topology.currentEpoch == epoch + 1, "one bump for the whole batch")
        #expect(try client.send("GET", "foo") == .string("1"))
        #expect(cluster.topology.slotRanges(of: fixture.myID) == [0...4999, 5101...5460, 12000...12199, 12300...12300])
        #expect(cluster.topology.importing.isEmpty)

        // STABLE clears a range.
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "0", "99", "MIGRATING", ClusterFixture.nodeC) == .simple("OK"))
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "0", "99", "STABLE") == .simple("OK"))
        #expect(cluster.topology.migrating.isEmpty)
        expectRoutingMatchesTopology(cluster)
    }

    @Test func setSlotsRangeIsAllOrNothingAndParsesLikeAddSlotsRange() throws {
        let fixture = try ClusterFixture()
        let client = fixture.client
        let cluster = try #require(fixture.node.state.cluster)
        _ = try fixture.push()
        // 5461 belongs to B: the whole call is refused, naming it, and 5400-5460 stay as they were.
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "5400", "5500", "MIGRATING", ClusterFixture.nodeC)
            == .error("ERR I'm not the owner of hash slot 5461"))
        #expect(cluster.topology.migrating.isEmpty)
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "5400", "5500", "IMPORTING", ClusterFixture.nodeB)
            == .error("ERR I'm already the owner of hash slot 5400"))
        #expect(cluster.topology.importing.isEmpty)
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "5", "3", "STABLE") == .error("ERR start slot number 5 is greater than end slot number 3"))
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "0", "16384", "STABLE") == .error("ERR Invalid or out of range slot"))
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "0", "10", "5", "20", "STABLE") == .error("ERR Slot ranges overlap: each slot may appear once"))
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "0", "10") == .error("ERR wrong number of arguments for 'cluster|setslotsrange' command"))
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "0", "10", "MIGRATING") == .error("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP"))
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "0", "10", "STABLE", "extra").isError)
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "0", "10", "NODE", ClusterFixture.replica) == .error("ERR Target node is not a master"))
        // A replica refuses SETSLOT in either form, as redis.
        let replica = try ClusterFixture()
        _ = try replica.client.send("CLUSTER", "TOPOLOGY", "SET", "1", """
            \(ClusterFixture.nodeB) 127.0.0.1:7001@17001 master - 0 0 2 connected 0-16383
            \(replica.myID) 127.0.0.1:7003@17003 slave \(ClusterFixture.nodeB) 0 0 2 connected
            """)
        #expect(try replica.client.send("CLUSTER", "SETSLOTSRANGE", "0", "1", "STABLE") == .error("ERR Please use SETSLOT only with masters."))
        #expect(try replica.client.send("CLUSTER", "SETSLOT", "0", "STABLE") == .error("ERR Please use SETSLOT only with masters."))
    }

    @Test func singleSlotSetSlotKeepsTheRoutingEqualToAFullRebuild() throws {
        let fixture = try ClusterFixture()
        let client = fixture.client
        let cluster = try #require(fixture.node.state.cluster)
        _ = try fixture.push()
        // What redis-cli --cluster reshard sends, slot by slot: this node gives 0-9 to B and takes 10923-10932 from C.
        for slot in 0..<10 {
            #expect(try client.send("CLUSTER", "SETSLOT", String(slot), "MIGRATING", ClusterFixture.nodeB) == .simple("OK"))
            #expect(try client.send("CLUSTER", "SETSLOT", String(slot), "NODE", ClusterFixture.nodeB) == .simple("OK"))
            let other = String(10923 + slot)
            #expect(try client.send("CLUSTER", "SETSLOT", other, "IMPORTING", ClusterFixture.nodeC) == .simple("OK"))
            #expect(try client.send("CLUSTER", "SETSLOT", other, "NODE", fixture.myID) == .simple("OK"))
            expectRoutingMatchesTopology(cluster)
        }
        // A slot given to a node marked failed makes the cluster unhealthy, and taking it back heals it.
        _ = try client.send("CLUSTER", "TOPOLOGY", "SET", "2", fixture.payload() + "\n"
            + "\(String(repeating: "f", count: 40)) 127.0.0.1:7004@17004 master,fail - 0 0 5 connected")
        #expect((try client.send("CLUSTER", "INFO").text ?? "").contains("cluster_state:ok"))
        #expect(try client.send("CLUSTER", "SETSLOT", "7", "NODE", String(repeating: "f", count: 40)) == .simple("OK"))
        expectRoutingMatchesTopology(cluster)
        #expect(try client.send("GET", "x") == .error("CLUSTERDOWN The cluster is down"))
        #expect(try client.send("CLUSTER", "SETSLOT", "7", "NODE", fixture.myID) == .simple("OK"))
        expectRoutingMatchesTopology(cluster)
        #expect((try client.send("CLUSTER", "INFO").text ?? "").contains("cluster_state:ok"))
    }

    @Test func nodesConfIsWrittenCoalescedAfterSetSlotAndBeforeThePushReplies() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("handover-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = NodeConfiguration()
        configuration.clusterEnabled = true
        configuration.directory = directory
        let node = TestNode(configuration: configuration)
        let client = try node.connect()
        let cluster = try #require(node.state.cluster)
        let myID = cluster.myID
        let other = String(repeating: "b", count: 40)
        let payload = """
            \(myID) 127.0.0.1:7000@17000 master - 0 0 1 connected 0-8191
            \(other) 127.0.0.1:7001@17001 master - 0 0 2 connected 8192-16383
            """
        // A push is on disk when it is acknowledged.
        #expect(try client.send("CLUSTER", "TOPOLOGY", "SET", "3", payload) == .simple("OK"))
        #expect(ClusterState(configuration: configuration).topology.topologyEpoch == 3)
        let written = try #require(cluster.configWriter).writes.load(ordering: .relaxed)

        // 2,000 single-slot SETSLOTs (a redis-cli reshard of 1,000 slots) cost far fewer writes.
        for slot in 0..<1000 {
            _ = try client.send("CLUSTER", "SETSLOT", String(slot), "MIGRATING", other)
            _ = try client.send("CLUSTER", "SETSLOT", String(slot), "NODE", other)
        }
        cluster.flushConfig()
        let writes = try #require(cluster.configWriter).writes.load(ordering: .relaxed) - written
        #expect(writes >= 1 && writes < 2000, "\(writes) writes")
        let reloaded = ClusterState(configuration: configuration)
        #expect(reloaded.myID == myID)
        #expect(reloaded.topology.slotRanges(of: myID) == [1000...8191])

        // SAVECONFIG writes before it replies.
        #expect(try client.send("CLUSTER", "SETSLOTSRANGE", "1000", "1009", "MIGRATING", other) == .simple("OK"))
        #expect(try client.send("CLUSTER", "SAVECONFIG") == .simple("OK"))
        #expect(ClusterState(configuration: configuration).topology.migrating.count == 10)
    }
}
