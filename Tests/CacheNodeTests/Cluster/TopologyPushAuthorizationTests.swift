// Who may push a topology to a node with an identity, through the real listeners of an in-process node: a plain
// client-port connection and a cache-node peer on the secure port are refused with NOPERM, the framework
// (certificate role framework) on the secure port is accepted, and a VNF-role peer does not get past the handshake.
@testable import CacheNode
import Foundation
import Logging
import NIOCore
import NIOPosix
import RESPServer
import ReplicationSec
import Synchronization
import Testing

struct TopologyPushAuthorizationTests {
    /// Identity files of one authority in a temporary directory.
    struct Credentials {
        let directory: String
        let authority = ClusterAuthority()

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("push-auth-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try KeyFiles.encodeAuthorityPublicKey(authority.publicKey)
                .write(toFile: directory + "/authority.pub", atomically: true, encoding: .utf8)
        }

        func identity(_ nodeID: String, role: NodeRole) throws -> NodeIdentity {
            let now = Int64(Date().timeIntervalSince1970)
            return try authority.issueIdentity(nodeID: nodeID, role: role, notBefore: now - 60, notAfter: now + 3_600)
        }

        /// Writes `nodeID`'s identity file and returns its path.
        func write(_ nodeID: String, role: NodeRole) throws -> String {
            let path = directory + "/\(nodeID).identity"
            try KeyFiles.encodeIdentity(try identity(nodeID, role: role)).write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        /// A client configuration for `nodeID` with `role`, expecting the node `expecting`.
        func client(_ nodeID: String, role: NodeRole, expecting: String) throws -> SecureChannelConfiguration {
            SecureChannelConfiguration(
                handshake: HandshakeConfiguration(
                    identity: try identity(nodeID, role: role), trustStore: TrustStore(authority: authority.publicKey),
                    peerExpectation: .node(expecting, role: .cacheNode)),
                handshakeTimeout: .seconds(5))
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory) }
    }

    @Test func onlyTheFrameworkThroughTheSecureChannelMayPushATopology() async throws {
        let credentials = try Credentials()
        defer { credentials.remove() }
        var configuration = NodeConfiguration()
        configuration.clusterEnabled = true
        configuration.clusterConfigFile = ""
        configuration.port = 0
        configuration.nodeIdentity = try credentials.write("node-a", role: .cacheNode)
        configuration.clusterAuthority = credentials.directory + "/authority.pub"
        configuration.replicationPort = 0
        let node = NodeState(configuration: configuration)
        let logger = Logger(label: "test.push-auth")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let security = try #require(try ReplicationService.loadSecurity(configuration))
        node.replication.install(ReplicationRuntime(group: group, logger: logger, security: security))
        let plainListener = RESPListener(
            configuration: .init(hosts: ["127.0.0.1"], port: 0), dispatcher: NodeDispatcher(node: node), group: group, logger: logger)
        let secureListener = ReplicationService.secureListener(
            node: node, security: security, configuration: configuration, group: group, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await plainListener.run() }
            tasks.addTask { try await secureListener.run() }
            while plainListener.boundPorts.isEmpty || node.replication.securePort.load(ordering: .relaxed) <= 0 {
                try await Task.sleep(for: .milliseconds(5))
            }
            let clientPort = plainListener.boundPorts[0]
            let securePort = node.replication.securePort.load(ordering: .relaxed)
            let myID = node.cluster!.myID
            let payload = "\(myID) 127.0.0.1:\(clientPort)@\(securePort) master - 0 0 1 connected 0-16383"
            let push = ["CLUSTER", "TOPOLOGY", "SET", "1", payload]
            let refusal = "NOPERM topology pushes are accepted only from the framework through the secure channel (replication port \(securePort))"

            // Plaintext on the client port: refused, while other commands work.
            let plain = try await PeerLink.connect(to: PeerEndpoint(host: "127.0.0.1", port: clientPort), group: group)
            let plainAnswer = try await plain.command(push)
            #expect(plainAnswer.isError && plainAnswer.description.contains(refusal), "\(plainAnswer)")
            #expect(try await plain.command(["PING"]) == .simpleString("PONG"))
            await plain.close()

            // A cache-node peer (a replica or MIGRATE peer) on the secure port: refused; it keeps its other uses.
            let peer = try await PeerLink.connect(
                to: PeerEndpoint(
                    host: "127.0.0.1", port: securePort, security: try credentials.client("node-b", role: .cacheNode, expecting: "node-a")),
                group: group)
            let peerAnswer = try await peer.command(push)
            #expect(peerAnswer.isError && peerAnswer.description.contains(refusal), "\(peerAnswer)")
            #expect(peerAnswer.description.contains("'node-b' authenticated with role cache-node"), "\(peerAnswer)")
            #expect(try await peer.command(["CLUSTER", "MYID"]) == .bulk(Array(myID.utf8)))
            await peer.close()
            #expect(node.cluster!.topology.topologyEpoch == 0)

            // The framework on the secure port: accepted.
            let framework = try await PeerLink.connect(
                to: PeerEndpoint(
                    host: "127.0.0.1", port: securePort, security: try credentials.client("framework", role: .framework, expecting: "node-a")),
                group: group)
            #expect(try await framework.command(push) == .simpleString("OK"))
            #expect(node.cluster!.topology.topologyEpoch == 1)
            #expect(try await framework.command(["SET", "k", "v"]) == .simpleString("OK"))
            await framework.close()

            // Other roles do not get past the secure listener's handshake.
            // (the client may finish its side first; the node then closes the link before any command runs).
            await #expect(throws: (any Error).self) {
                let vnf = try await PeerLink.connect(
                    to: PeerEndpoint(
                        host: "127.0.0.1", port: securePort, security: try credentials.client("vnf-1", role: .vnf, expecting: "node-a")),
                    group: group)
                _ = try await vnf.command(push)
            }
            #expect(node.cluster!.topology.topologyEpoch == 1)
            tasks.cancelAll()
        }
        try await group.shutdownGracefully()
    }
}
