// Fixtures: a test authority, node identities, trust stores and handshake configurations shared by the tests.
import Crypto
import Foundation
import NIOCore
@testable import ReplicationSec

enum Fixtures {
    static let now: Int64 = 1_800_000_000
    static let authority = ClusterAuthority(signingKey: key(1))
    static let otherAuthority = ClusterAuthority(signingKey: key(2))

    /// A deterministic Ed25519 key from a one-byte seed.
    static func key(_ seed: UInt8) -> Curve25519.Signing.PrivateKey {
        try! Curve25519.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: seed, count: 32))
    }

    static func ephemeral(_ seed: UInt8) -> Curve25519.KeyAgreement.PrivateKey {
        try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: [UInt8](repeating: seed, count: 32))
    }

    static func identity(
        _ nodeID: String, role: NodeRole = .cacheNode, seed: UInt8 = 10, serial: UInt64 = 100,
        notBefore: Int64 = now - 3600, notAfter: Int64 = now + 3600, authority: ClusterAuthority = authority
    ) -> NodeIdentity {
        try! authority.issueIdentity(
            nodeID: nodeID, role: role, notBefore: notBefore, notAfter: notAfter, signingKey: key(seed), serial: serial)
    }

    static let shardA = identity("shard-a", seed: 10, serial: 100)
    static let shardB = identity("shard-b", seed: 11, serial: 101)

    static func trustStore() -> TrustStore { TrustStore(authority: authority.publicKey) }

    static func configuration(
        _ identity: NodeIdentity, expecting expectation: PeerExpectation,
        trustStore: TrustStore = trustStore(), clock: Int64 = now,
        versions: [UInt8] = [1], orderings: [TransportOrdering] = [.strictInOrder],
        ephemeralSeed: UInt8? = nil
    ) -> HandshakeConfiguration {
        HandshakeConfiguration(
            identity: identity, trustStore: trustStore, peerExpectation: expectation,
            versions: versions, orderings: orderings, clock: .fixed(clock),
            makeEphemeralKey: { ephemeralSeed.map(Fixtures.ephemeral) ?? .init() }
        )
    }

    /// Runs a full handshake between two state machines; returns (initiator result, responder result).
    static func handshake(
        _ initiator: HandshakeConfiguration, _ responder: HandshakeConfiguration
    ) throws -> (HandshakeResult, HandshakeResult) {
        var client = HandshakeStateMachine.initiator(initiator)
        var server = HandshakeStateMachine.responder(responder)
        guard case .send(let hello) = client.start() else { throw Failure("no hello") }
        let serverHello = try expectSend(server.receive(hello))
        guard case .sendAndComplete(let finish, let clientResult) = client.receive(serverHello) else {
            throw Failure("initiator did not finish")
        }
        guard case .complete(let serverResult) = server.receive(finish) else { throw Failure("responder did not complete") }
        return (clientResult, serverResult)
    }

    static func expectSend(_ action: HandshakeStateMachine.Action) throws -> [UInt8] {
        switch action {
        case .send(let frame): return frame
        case .fail(let error): throw error
        default: throw Failure("expected a frame to send, got \(action)")
        }
    }

    static func expectFailure(_ action: HandshakeStateMachine.Action) -> SecureChannelError? {
        if case .fail(let error) = action { return error }
        return nil
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

extension [UInt8] {
    init(hex: String) {
        var bytes = [UInt8]()
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        self = bytes
    }

    var hex: String { map { String(format: "%02x", $0) }.joined() }
}
