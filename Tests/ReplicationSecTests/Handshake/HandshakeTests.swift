// HandshakeTests: successful mutual authentication and the adversarial handshake cases — MITM key swap, weak keys,
// downgrade, replayed messages, certificate failures, and a certificate whose key did not sign the transcript.
import Crypto
import Testing
@testable import ReplicationSec

struct HandshakeTests {
    let clientConfig = Fixtures.configuration(Fixtures.shardA, expecting: .node("shard-b", role: .cacheNode))
    let serverConfig = Fixtures.configuration(Fixtures.shardB, expecting: PeerExpectation(roles: [.cacheNode]))

    @Test func bothSidesAuthenticateAndAgreeOnKeys() throws {
        let (client, server) = try Fixtures.handshake(clientConfig, serverConfig)
        #expect(client.peer.nodeID == "shard-b")
        #expect(server.peer.nodeID == "shard-a")
        #expect(client.transcriptHash == server.transcriptHash)
        #expect(client.sendSecret.bytes == server.receiveSecret.bytes)
        #expect(client.receiveSecret.bytes == server.sendSecret.bytes)
        #expect(client.sendSecret.bytes != client.receiveSecret.bytes)
        #expect(client.version == 1 && client.ordering == .strictInOrder)
    }

    @Test func freshEphemeralsGiveFreshKeys() throws {
        let (first, _) = try Fixtures.handshake(clientConfig, serverConfig)
        let (second, _) = try Fixtures.handshake(clientConfig, serverConfig)
        #expect(first.sendSecret.bytes != second.sendSecret.bytes)
    }

    /// Drives a handshake where `tamper` may rewrite each message in flight; returns the failure, if any.
    func run(
        client: HandshakeConfiguration? = nil, server: HandshakeConfiguration? = nil,
        tamper: (Int, [UInt8]) -> [UInt8] = { $1 }
    ) -> SecureChannelError? {
        var initiator = HandshakeStateMachine.initiator(client ?? clientConfig)
        var responder = HandshakeStateMachine.responder(server ?? serverConfig)
        guard case .send(let hello) = initiator.start() else { return nil }
        let serverAction = responder.receive(tamper(1, hello))
        guard case .send(let serverHello) = serverAction else { return Fixtures.expectFailure(serverAction) }
        let clientAction = initiator.receive(tamper(2, serverHello))
        guard case .sendAndComplete(let finish, _) = clientAction else { return Fixtures.expectFailure(clientAction) }
        let final = responder.receive(tamper(3, finish))
        return Fixtures.expectFailure(final)
    }

    @Test func ephemeralKeySwapByManInTheMiddleIsDetected() {
        // The attacker replaces the initiator's ephemeral key (fixing up the cookie, which any cluster member can
        // compute) so that it shares the ee secret with the responder. The responder's signature and tag then
        // cover the attacker's key, not the initiator's: the initiator rejects the ServerHello.
        let attacker = Fixtures.ephemeral(0x66)
        let error = run { step, frame in
            guard step == 1 else { return frame }
            let hello = try! ClientHello.parse(frame, authority: Fixtures.authority.publicKey)
            return ClientHello.encode(
                versions: hello.versions, suites: hello.suites, orderings: hello.orderings,
                ephemeralKey: Array(attacker.publicKey.rawRepresentation), authority: Fixtures.authority.publicKey)
        }
        #expect(error == .handshakeAuthenticationFailed)
    }

    @Test func responderEphemeralSwapIsDetected() {
        let attacker = Array(Fixtures.ephemeral(0x67).publicKey.rawRepresentation)
        let error = run { step, frame in
            guard step == 2 else { return frame }
            var swapped = frame
            swapped.replaceSubrange(9..<41, with: attacker)
            return swapped
        }
        #expect(error == .handshakeAuthenticationFailed)
    }

    @Test func everyBitFlipInEveryHandshakeMessageFails() {
        for step in 1...3 {
            var frameLength = 0
            _ = run { current, frame in
                if current == step { frameLength = frame.count }
                return frame
            }
            for index in stride(from: 0, to: frameLength, by: 1) {
                let error = run { current, frame in
                    guard current == step else { return frame }
                    var flipped = frame
                    flipped[index] ^= 0x04
                    return flipped
                }
                #expect(error != nil, "flip in message \(step) byte \(index) was not detected")
            }
        }
    }

    @Test(arguments: HandshakeProtocol.lowOrderPoints + [
        [UInt8](repeating: 0, count: 31) + [0x80],  // zero with the ignored top bit set
        [1] + [UInt8](repeating: 0, count: 30) + [0x80],
    ])
    func allZeroAndLowOrderKeysAreRejected(key: [UInt8]) {
        #expect(HandshakeProtocol.isWeakX25519PublicKey(key))
        // As the initiator's key: the responder refuses before computing anything.
        let asInitiator = run { step, frame in
            guard step == 1 else { return frame }
            let hello = try! ClientHello.parse(frame, authority: Fixtures.authority.publicKey)
            return ClientHello.encode(
                versions: hello.versions, suites: hello.suites, orderings: hello.orderings, ephemeralKey: key,
                authority: Fixtures.authority.publicKey)
        }
        #expect(asInitiator == .weakPublicKey)
        // As the responder's key: the initiator refuses.
        let asResponder = run { step, frame in
            guard step == 2 else { return frame }
            var swapped = frame
            swapped.replaceSubrange(9..<41, with: key)
            return swapped
        }
        #expect(asResponder == .weakPublicKey)
    }

    @Test func swiftCryptoAcceptsZeroKeyButAgreeRefusesIt() throws {
        // The reason for the explicit check: swift-crypto returns an all-zero secret for the zero point.
        let zero = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: [UInt8](repeating: 0, count: 32))
        let secret = try Curve25519.KeyAgreement.PrivateKey().sharedSecretFromKeyAgreement(with: zero)
        #expect(secret.withUnsafeBytes { Array($0) } == [UInt8](repeating: 0, count: 32))
        #expect(throws: SecureChannelError.weakPublicKey) {
            try HandshakeProtocol.agree(.init(), peer: [UInt8](repeating: 0, count: 32))
        }
    }

    @Test func versionDowngradeInTheOfferIsDetected() {
        // The initiator offers versions 1 and 2; the attacker strips 2 so the responder must pick 1. The
        // responder (which speaks only 1 here) would pick 1 anyway, but its signature covers the offer as received,
        // so the initiator, whose transcript has the original offer, rejects.
        let client = Fixtures.configuration(Fixtures.shardA, expecting: .node("shard-b", role: .cacheNode), versions: [2, 1])
        let error = run(client: client) { step, frame in
            guard step == 1 else { return frame }
            let hello = try! ClientHello.parse(frame, authority: Fixtures.authority.publicKey)
            return ClientHello.encode(
                versions: [1], suites: hello.suites, orderings: hello.orderings, ephemeralKey: hello.ephemeralKey,
                authority: Fixtures.authority.publicKey)
        }
        #expect(error == .handshakeAuthenticationFailed)
    }

    @Test func optionDowngradeInTheOfferIsDetected() {
        let client = Fixtures.configuration(
            Fixtures.shardA, expecting: .node("shard-b", role: .cacheNode), orderings: [.replayWindow, .strictInOrder])
        let server = Fixtures.configuration(
            Fixtures.shardB, expecting: PeerExpectation(roles: [.cacheNode]), orderings: [.replayWindow, .strictInOrder])
        #expect(run(client: client, server: server) == nil)
        let error = run(client: client, server: server) { step, frame in
            guard step == 1 else { return frame }
            let hello = try! ClientHello.parse(frame, authority: Fixtures.authority.publicKey)
            return ClientHello.encode(
                versions: hello.versions, suites: hello.suites, orderings: [TransportOrdering.strictInOrder.rawValue],
                ephemeralKey: hello.ephemeralKey, authority: Fixtures.authority.publicKey)
        }
        #expect(error == .handshakeAuthenticationFailed)
    }

    @Test func chosenVersionOrOptionNotOfferedIsRejected() {
        let versionError = run { step, frame in
            guard step == 2 else { return frame }
            var changed = frame
            changed[5] = 9
            return changed
        }
        #expect(versionError == .versionMismatch)
        let optionError = run { step, frame in
            guard step == 2 else { return frame }
            var changed = frame
            changed[8] = 1
            return changed
        }
        #expect(optionError == .noCommonOptions)
    }

    @Test func noCommonVersionIsAVersionMismatch() {
        let client = Fixtures.configuration(Fixtures.shardA, expecting: .node("shard-b", role: .cacheNode), versions: [2])
        #expect(run(client: client) == .versionMismatch)
    }

    @Test func missingCookieIsRejectedBeforeAnyECCWork() {
        let error = run { step, frame in
            guard step == 1 else { return frame }
            var changed = frame
            changed[changed.count - 1] ^= 1
            return changed
        }
        #expect(error == .handshakeCookieInvalid)
        // A ClientHello made for another cluster's authority fails the same cheap check.
        let foreign = ClientHello.encode(
            versions: [1], suites: [1], orderings: [0],
            ephemeralKey: Array(Fixtures.ephemeral(3).publicKey.rawRepresentation), authority: Fixtures.otherAuthority.publicKey)
        var responder = HandshakeStateMachine.responder(serverConfig)
        #expect(Fixtures.expectFailure(responder.receive(foreign)) == .handshakeCookieInvalid)
    }

    @Test func replayedHandshakeMessagesFail() throws {
        // Record a genuine session, then replay its ClientHello and ClientFinish to a fresh responder.
        var initiator = HandshakeStateMachine.initiator(clientConfig)
        var responder = HandshakeStateMachine.responder(serverConfig)
        guard case .send(let hello) = initiator.start() else { Issue.record("no hello"); return }
        let serverHello = try Fixtures.expectSend(responder.receive(hello))
        guard case .sendAndComplete(let finish, _) = initiator.receive(serverHello) else { Issue.record("no finish"); return }

        var replayTarget = HandshakeStateMachine.responder(serverConfig)
        _ = try Fixtures.expectSend(replayTarget.receive(hello))  // new responder ephemeral → new transcript
        #expect(Fixtures.expectFailure(replayTarget.receive(finish)) == .handshakeAuthenticationFailed)

        // A replayed ServerHello to a new initiator fails too (different initiator ephemeral).
        var freshInitiator = HandshakeStateMachine.initiator(clientConfig)
        _ = freshInitiator.start()
        #expect(Fixtures.expectFailure(freshInitiator.receive(serverHello)) == .handshakeAuthenticationFailed)
        // And a message out of order is refused.
        var other = HandshakeStateMachine.responder(serverConfig)
        #expect(Fixtures.expectFailure(other.receive(finish)) == .malformedHandshake)
    }

    @Test func certificateWhoseKeyDidNotSignTheTranscriptIsRejected() {
        // The responder presents shard-b's genuine certificate but signs with another key.
        let impostor = NodeIdentity(signingKey: Fixtures.key(77), certificate: Fixtures.shardB.certificate)
        let server = Fixtures.configuration(impostor, expecting: PeerExpectation(roles: [.cacheNode]))
        #expect(run(server: server) == .handshakeAuthenticationFailed)
        let impostorClient = NodeIdentity(signingKey: Fixtures.key(78), certificate: Fixtures.shardA.certificate)
        let client = Fixtures.configuration(impostorClient, expecting: .node("shard-b", role: .cacheNode))
        #expect(run(client: client) == .handshakeAuthenticationFailed)
    }

    @Test func certificateFailuresStopTheHandshake() throws {
        let revokedStore = Fixtures.trustStore()
        try revokedStore.install(try Fixtures.authority.revocationList(sequence: 1, issuedAt: 0, serials: [101]))
        let cases: [(HandshakeConfiguration?, HandshakeConfiguration?, SecureChannelError)] = [
            (Fixtures.configuration(Fixtures.shardA, expecting: .node("shard-c", role: .cacheNode)), nil, .wrongNodeID),
            (Fixtures.configuration(Fixtures.shardA, expecting: .node("shard-b", role: .framework)), nil, .wrongRole),
            (Fixtures.configuration(Fixtures.shardA, expecting: .node("shard-b", role: .cacheNode), trustStore: revokedStore), nil, .certificateRevoked),
            (Fixtures.configuration(Fixtures.shardA, expecting: .node("shard-b", role: .cacheNode), clock: Fixtures.now + 7200), nil, .certificateExpired),
            (Fixtures.configuration(Fixtures.shardA, expecting: .node("shard-b", role: .cacheNode), clock: Fixtures.now - 7200), nil, .certificateNotYetValid),
            (Fixtures.configuration(Fixtures.identity("shard-a", authority: Fixtures.otherAuthority), expecting: .node("shard-b", role: .cacheNode)), nil, .unknownAuthority),
            (nil, Fixtures.configuration(Fixtures.shardB, expecting: PeerExpectation(roles: [.framework])), .wrongRole),
        ]
        for (client, server, expected) in cases {
            #expect(run(client: client, server: server) == expected)
        }
    }
}
