// CLUSTER MEET between real cache-node processes with identities: the pull of the peer's own CLUSTER NODES line runs
// through ReplicationSec to the peer's secure port, so a peer holding an identity from another authority is refused
// (its client port would have answered a plaintext pull), a peer without a secure port is refused, and a peer of the
// same authority is learned with its secure port as cluster bus port.
import Foundation
import Testing

@Suite(.serialized)
struct SecureMeetTests {
    func securePort(_ node: CacheNodeProcess) throws -> Int {
        let answer = try redisCLI(node.port, ["CONFIG", "GET", "replication-port"]).split(whereSeparator: \.isNewline)
        guard answer.count == 2, let port = Int(answer[1]), port > 0 else {
            throw HarnessError(description: "no secure port reported: \(answer)")
        }
        return port
    }

    @Test func meetPullsThePeerThroughTheSecureChannelOnly() throws {
        let cluster = ["--cluster-enabled", "yes", "--cluster-config-file", ""]
        let ids = try TestIdentities(nodes: ["a", "b"])
        defer { ids.remove() }
        let strangers = try TestIdentities(nodes: ["x"])
        defer { strangers.remove() }
        let a = try CacheNodeProcess(arguments: cluster + ids.flags("a", replicationPort: 0))
        defer { a.stop() }
        let b = try CacheNodeProcess(arguments: cluster + ids.flags("b", replicationPort: 0))
        defer { b.stop() }
        let stranger = try CacheNodeProcess(arguments: cluster + strangers.flags("x", replicationPort: 0))
        defer { stranger.stop() }
        let plaintext = try CacheNodeProcess(arguments: cluster + ["--replication-plaintext", "yes"])
        defer { plaintext.stop() }

        // Another authority's node: its client port would describe itself, but the authenticated handshake fails.
        let refused = try redisCLI(a.port, ["CLUSTER", "MEET", "127.0.0.1", String(stranger.port)])
        #expect(refused.hasPrefix("ERR CLUSTER MEET could not reach"), "\(refused)")
        let strangerID = try redisCLI(stranger.port, ["CLUSTER", "MYID"])
        #expect(!(try redisCLI(a.port, ["CLUSTER", "NODES"])).contains(strangerID))

        // A node without a secure port is never pulled in plaintext.
        let noSecurePort = try redisCLI(a.port, ["CLUSTER", "MEET", "127.0.0.1", String(plaintext.port)])
        #expect(noSecurePort.contains("has no secure replication port"), "\(noSecurePort)")
        #expect(try redisCLI(a.port, ["CLUSTER", "NODES"]).split(whereSeparator: \.isNewline).count == 1)

        // Same authority: learned, at the address used, with its secure port as bus port.
        #expect(try redisCLI(a.port, ["CLUSTER", "MEET", "127.0.0.1", String(b.port)]) == "OK")
        let bID = try redisCLI(b.port, ["CLUSTER", "MYID"])
        let learned = try redisCLI(a.port, ["CLUSTER", "NODES"]).split(whereSeparator: \.isNewline).first { $0.hasPrefix(bID) }
        let line = try #require(learned, "a knows b after MEET")
        #expect(line.contains("127.0.0.1:\(b.port)@\(try securePort(b))"), "\(line)")
        #expect(!line.contains("myself"))
    }
}
