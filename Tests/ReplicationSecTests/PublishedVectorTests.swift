// PublishedVectorTests: our published handshake and record vectors (Vectors/*.json). The implementation must
// reproduce them byte for byte, and Vectors/verify_vectors.py (Python `cryptography`) checks them independently.
// Regenerate after an intentional wire change with `RSEC_WRITE_VECTORS=1 swift test --filter PublishedVectorTests`.
import Crypto
import Foundation
import NIOCore
import Testing
@testable import ReplicationSec

struct PublishedVectorTests {
    static let vectorsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors")
    static let clock: Int64 = 1_800_000_000

    struct Party {
        var signingSeed: UInt8, ephemeralSeed: UInt8, nodeID: String, role: NodeRole, serial: UInt64
    }
    static let initiator = Party(signingSeed: 0x10, ephemeralSeed: 0x20, nodeID: "shard-a", role: .cacheNode, serial: 1001)
    static let responder = Party(signingSeed: 0x11, ephemeralSeed: 0x21, nodeID: "framework-1", role: .framework, serial: 1002)

    static func seed(_ byte: UInt8) -> [UInt8] { [UInt8](repeating: byte, count: 32) }

    /// Runs the fixed handshake and returns the vector document.
    static func handshakeVector() throws -> ([String: Any], HandshakeResult) {
        let authority = ClusterAuthority(signingKey: try .init(rawRepresentation: seed(0x01)))
        func identity(_ party: Party) throws -> NodeIdentity {
            try authority.issueIdentity(
                nodeID: party.nodeID, role: party.role, notBefore: clock - 86_400, notAfter: clock + 86_400,
                signingKey: try .init(rawRepresentation: seed(party.signingSeed)), serial: party.serial)
        }
        let trust = TrustStore(authority: authority.publicKey)
        let initiatorIdentity = try identity(initiator)
        let responderIdentity = try identity(responder)
        let client = HandshakeConfiguration(
            identity: initiatorIdentity, trustStore: trust, peerExpectation: .node(responder.nodeID, role: responder.role),
            versions: [1], suites: [1], orderings: [.strictInOrder, .replayWindow], clock: .fixed(clock),
            makeEphemeralKey: { try! .init(rawRepresentation: seed(initiator.ephemeralSeed)) })
        let server = HandshakeConfiguration(
            identity: responderIdentity, trustStore: trust, peerExpectation: PeerExpectation(roles: [.cacheNode]),
            versions: [1], suites: [1], orderings: [.strictInOrder], clock: .fixed(clock),
            makeEphemeralKey: { try! .init(rawRepresentation: seed(responder.ephemeralSeed)) })
        var initiatorMachine = HandshakeStateMachine.initiator(client)
        var responderMachine = HandshakeStateMachine.responder(server)
        guard case .send(let hello) = initiatorMachine.start() else { throw Fixtures.Failure("no hello") }
        let serverHello = try Fixtures.expectSend(responderMachine.receive(hello))
        guard case .sendAndComplete(let finish, let clientResult) = initiatorMachine.receive(serverHello),
            case .complete(let serverResult) = responderMachine.receive(finish)
        else { throw Fixtures.Failure("handshake failed") }
        #expect(serverResult.transcriptHash == clientResult.transcriptHash)
        func party(_ party: Party, _ identity: NodeIdentity) -> [String: Any] {
            [
                "signing_seed": seed(party.signingSeed).hex, "ephemeral_seed": seed(party.ephemeralSeed).hex,
                "node_id": party.nodeID, "role": Int(party.role.rawValue), "serial": party.serial,
                "not_before": clock - 86_400, "not_after": clock + 86_400, "certificate": identity.certificate.encoded.hex,
            ]
        }
        let document: [String: Any] = [
            "description": "ReplicationSec v1 handshake: X25519 ephemerals, Ed25519 identities, deterministic signatures",
            "authority_seed": seed(0x01).hex,
            "clock": clock,
            "initiator": party(initiator, initiatorIdentity),
            "initiator_offer": ["versions": [1], "suites": [1], "orderings": [0, 1]],
            "responder": party(responder, responderIdentity),
            "client_hello": hello.hex,
            "server_hello": serverHello.hex,
            "client_finish": finish.hex,
            "transcript_hash": clientResult.transcriptHash.hex,
            "traffic_secret_i2r": clientResult.sendSecret.bytes.hex,
            "traffic_secret_r2i": clientResult.receiveSecret.bytes.hex,
        ]
        return (document, clientResult)
    }

    /// Seals fixed payloads across two rekeys (rekey after 2 records) and a close record.
    static func recordVector(trafficSecret: SymmetricKey) throws -> [String: Any] {
        let start = NIODeadline.uptimeNanoseconds(0)
        var sealer = RecordSealer(trafficSecret: trafficSecret, policy: RekeyPolicy(rekeyAfterMessages: 2, rejectAfterMessages: 2), now: start)
        var secret = trafficSecret
        var epochSecrets = [secret.bytes.hex]
        for _ in 0..<2 {
            secret = KeySchedule.nextTrafficSecret(secret)
            epochSecrets.append(secret.bytes.hex)
        }
        let payloads = ["*1\r\n$4\r\nPING\r\n", "", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", String(repeating: "x", count: 40), "+OK\r\n"]
        var records = [[String: Any]]()
        for payload in payloads {
            records.append(["payload": Array(payload.utf8).hex, "frame": try sealer.seal(Array(payload.utf8), now: start).hex])
        }
        return [
            "description": "ReplicationSec v1 records, initiator-to-responder, rekey after 2 records: epochs 0,0,1,1,2 then close",
            "traffic_secret": trafficSecret.bytes.hex,
            "rekey_after_messages": 2,
            "epoch_traffic_secrets": epochSecrets,
            "records": records,
            "close": try sealer.sealClose(now: start).hex,
        ]
    }

    static func canonicalJSON(_ object: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    @Test func implementationReproducesThePublishedVectors() throws {
        let (handshake, result) = try Self.handshakeVector()
        let records = try Self.recordVector(trafficSecret: result.sendSecret)
        let files = [("handshake.json", handshake), ("records.json", records)]
        if ProcessInfo.processInfo.environment["RSEC_WRITE_VECTORS"] == "1" {
            for (name, document) in files {
                try Self.canonicalJSON(document).write(to: Self.vectorsDirectory.appendingPathComponent(name))
            }
        }
        for (name, document) in files {
            let published = try Data(contentsOf: Self.vectorsDirectory.appendingPathComponent(name))
            #expect(try Self.canonicalJSON(document) == published, "\(name) differs from the implementation")
        }
    }

    @Test func publishedRecordsOpenWithTheReceiverAndRekeyTwice() throws {
        let data = try Data(contentsOf: Self.vectorsDirectory.appendingPathComponent("records.json"))
        let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let secret = SymmetricKey(data: [UInt8](hex: try #require(document["traffic_secret"] as? String)))
        var opener = RecordOpener(
            trafficSecret: secret, policy: RekeyPolicy(rekeyAfterMessages: 2, rejectAfterMessages: 2),
            ordering: .strictInOrder, now: .uptimeNanoseconds(0))
        for record in try #require(document["records"] as? [[String: String]]) {
            let opened = try opener.open([UInt8](hex: record["frame"]!), now: .uptimeNanoseconds(0))
            #expect(opened == .data([UInt8](hex: record["payload"]!)))
        }
        #expect(opener.epoch == 2)
        #expect(try opener.open([UInt8](hex: try #require(document["close"] as? String)), now: .uptimeNanoseconds(0)) == .close)
    }

    @Test func independentPythonImplementationVerifiesTheVectors() throws {
        // Requires python3 with the `cryptography` package (CI: `pip install cryptography`).
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.vectorsDirectory.appendingPathComponent("verify_vectors.py").path, Self.vectorsDirectory.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "verify_vectors.py failed:\n\(text)")
        #expect(text.contains("all vectors verified"))
    }
}
