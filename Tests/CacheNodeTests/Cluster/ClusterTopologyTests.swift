// The topology value on its own: the CLUSTER NODES text form round-trips, malformed or inconsistent pushes are
// refused whole, role changes reach the replication seam, and nodes.conf keeps a node's id and view across restarts.
import CacheNode
import CacheNodeTestSupport
import CacheStore
import Foundation
import Synchronization
import Testing

struct ClusterTopologyTests {
    static let me = String(repeating: "1", count: 40)
    static let other = String(repeating: "2", count: 40)

    func topology() -> ClusterTopology {
        ClusterTopology(myself: ClusterNodeRecord(id: Self.me, ip: "10.0.0.1", port: 7000))
    }

    @Test func nodesTextRoundTrips() throws {
        var topology = topology()
        let payload = """
            \(Self.me) 10.0.0.1:7000@17000 master - 0 0 1 connected 0-99 200 [300-<-\(Self.other)]
            \(Self.other) 10.0.0.2:7001@17001,host-b master - 0 0 2 connected 100-199 201-16383
            """
        try topology.apply(epoch: 1, lines: try ClusterTopology.parseNodes(payload), previousPayload: nil, payload: payload)
        #expect(topology.importing == [300: Self.other])
        #expect(topology.slotRanges(of: Self.me) == [0...99, 200...200])
        #expect(topology.isHealthy)
        let text = topology.nodesDescription(now: 5)
        #expect(text.contains("\(Self.me) 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-99 200 [300-<-\(Self.other)]\n"))
        #expect(text.contains("\(Self.other) 10.0.0.2:7001@17001,host-b master - 0 5 2 connected 100-199 201-16383\n"))
        let reparsed = try ClusterTopology.parseNodes(text)
        #expect(reparsed.count == 2)
        #expect(reparsed.first { $0.isMyself }?.slots == [0...99, 200...200])
    }

    @Test func inconsistentPushesAreRefusedWhole() throws {
        var topology = topology()
        func push(_ text: String) throws(CommandError) {
            try topology.apply(epoch: 1, lines: try ClusterTopology.parseNodes(text), previousPayload: nil, payload: text)
        }
        #expect(throws: CommandError.self) {
            try push("\(Self.me) 10.0.0.1:7000@17000 master - 0 0 1 connected 0-10\n\(Self.other) 10.0.0.2:7001@17001 master - 0 0 2 connected 5")
        }
        #expect(throws: CommandError.self) {
            try push("\(Self.other) 10.0.0.2:7001@17001 slave \(String(repeating: "9", count: 40)) 0 0 2 connected")
        }
        #expect(throws: CommandError.self) { try push("\(Self.other) 10.0.0.2:7001@17001 slave \(Self.me) 0 0 2 connected 1") }
        #expect(throws: CommandError.self) { try push("xyz 10.0.0.2:7001@17001 master - 0 0 2 connected") }
        #expect(throws: CommandError.self) { try push("\(Self.other) 10.0.0.2:7001@17001 master - 0 0 2 connected 16384") }
        #expect(topology.nodes.count == 1)
        #expect(topology.assignedSlotCount == 0)
    }

    @Test func roleChangesReachTheReplicationSeam() throws {
        var configuration = NodeConfiguration()
        configuration.clusterEnabled = true
        configuration.clusterConfigFile = ""
        let cluster = ClusterState(configuration: configuration)
        let changes = Mutex<[ClusterRoleChange]>([])
        cluster.onRoleChange { change in changes.withLock { $0.append(change) } }
        let myID = cluster.myID
        try cluster.applyPush(epoch: 1, payload: """
            \(Self.other) 10.0.0.2:7001@17001 master - 0 0 1 connected 0-16383
            \(myID) 10.0.0.1:7000@17000 slave \(Self.other) 0 0 1 connected
            """)
        try cluster.applyPush(epoch: 2, payload: """
            \(Self.other) 10.0.0.2:7001@17001 master - 0 0 1 connected 0-100
            \(myID) 10.0.0.1:7000@17000 master - 0 0 2 connected 101-16383
            """)
        #expect(changes.withLock { $0 } == [.replicate(host: "10.0.0.2", port: 7001), .becomePrimary])
        // CLUSTER REPLICATE needs an empty primary without slots.
        #expect(throws: CommandError.self) {
            try cluster.mutate { (topology: inout ClusterTopology) throws(CommandError) in try topology.replicate(Self.other, keyCount: 0) }
        }
    }

    @Test func nodesConfKeepsTheIdAndViewAcrossRestarts() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nodesconf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = NodeConfiguration()
        configuration.clusterEnabled = true
        configuration.directory = directory
        let first = ClusterState(configuration: configuration)
        try first.applyPush(epoch: 7, payload: """
            \(first.myID) 127.0.0.1:7000@17000 master - 0 0 1 connected 0-8191
            \(Self.other) 127.0.0.1:7001@17001 master - 0 0 2 connected 8192-16383
            """)
        let second = ClusterState(configuration: configuration)
        #expect(second.myID == first.myID)
        #expect(second.topology.topologyEpoch == 7)
        #expect(second.topology.slotRanges(of: Self.other) == [8192...16383])
        #expect(throws: CommandError.self) { try second.applyPush(epoch: 6, payload: "") }
    }
}
