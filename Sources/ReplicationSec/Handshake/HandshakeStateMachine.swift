// HandshakeStateMachine: the three-message mutually authenticated handshake, as a pure value returning actions.
//
// Pattern (Noise XX shape, SIGMA-I authentication, see Handshake.md):
//   -> e                                   ClientHello (offers + cluster cookie)
//   <- e, ee, enc{cert_r, sig_r(h_ee, cert_r)}   ServerHello
//   -> enc{cert_i, sig_i(h2, cert_i)}      ClientFinish
// Transcript hash: h0 = SHA256(prologue); h1 = SHA256(h0 || ClientHello);
// h_ee = SHA256(h1 || ServerHello up to e_r); h2 = SHA256(h_ee || ServerHello ciphertext || tag);
// h3 = SHA256(h2 || ClientFinish). Keys: see KeySchedule.swift.
public import Crypto

/// Settings of one side of a handshake.
public struct HandshakeConfiguration: Sendable {
    /// This node's identity.
    public var identity: NodeIdentity
    /// The authority and revocation list used to verify the peer.
    public var trustStore: TrustStore
    /// Which peers are accepted.
    public var peerExpectation: PeerExpectation
    /// Protocol versions this side speaks (the responder picks the highest common one).
    public var versions: [UInt8]
    /// Cipher suites this side accepts, most preferred first.
    public var suites: [UInt16]
    /// Transport orderings this side accepts, most preferred first.
    public var orderings: [TransportOrdering]
    /// Wall clock for certificate validity.
    public var clock: WallClock
    /// Creates ephemeral X25519 keys (injectable for published vectors).
    public var makeEphemeralKey: @Sendable () -> Curve25519.KeyAgreement.PrivateKey

    public init(
        identity: NodeIdentity,
        trustStore: TrustStore,
        peerExpectation: PeerExpectation,
        versions: [UInt8] = [HandshakeProtocol.version1],
        suites: [UInt16] = [HandshakeProtocol.suiteX25519Ed25519AES256CTRHMACSHA256],
        orderings: [TransportOrdering] = [.strictInOrder],
        clock: WallClock = .system,
        makeEphemeralKey: @escaping @Sendable () -> Curve25519.KeyAgreement.PrivateKey = { .init() }
    ) {
        self.identity = identity
        self.trustStore = trustStore
        self.peerExpectation = peerExpectation
        self.versions = versions
        self.suites = suites
        self.orderings = orderings
        self.clock = clock
        self.makeEphemeralKey = makeEphemeralKey
    }
}

/// What a completed handshake established.
public struct HandshakeResult: Sendable {
    /// The verified peer certificate.
    public var peer: NodeCertificate
    /// Negotiated version.
    public var version: UInt8
    /// Negotiated cipher suite.
    public var suite: UInt16
    /// Negotiated transport ordering.
    public var ordering: TransportOrdering
    /// Epoch-0 traffic secret for records this side sends.
    public var sendSecret: SymmetricKey
    /// Epoch-0 traffic secret for records this side receives.
    public var receiveSecret: SymmetricKey
    /// The final transcript hash h3 (both sides agree on it; usable for channel binding).
    public var transcriptHash: [UInt8]
}

/// The handshake of one side, driven by the frames it receives.
public struct HandshakeStateMachine: Sendable {
    /// What the caller must do next.
    public enum Action: Sendable {
        /// Write this frame to the peer and wait for the next one.
        case send([UInt8])
        /// Write this frame, then the session is established.
        case sendAndComplete([UInt8], HandshakeResult)
        /// The session is established.
        case complete(HandshakeResult)
        /// Abort the connection with this error.
        case fail(SecureChannelError)
    }

    private enum State: Sendable {
        case initiatorIdle
        case initiatorSentHello(ephemeral: Curve25519.KeyAgreement.PrivateKey, transcript: [UInt8], offered: ClientHello)
        case responderIdle
        case responderSentHello(
            chainingKey: SymmetricKey, transcript: [UInt8], initiatorKey: RecordCipher,
            version: UInt8, suite: UInt16, ordering: TransportOrdering
        )
        case done
        case failed(SecureChannelError)
    }

    private let configuration: HandshakeConfiguration
    private var state: State

    /// A handshake for the connecting side; call ``start()`` first.
    public static func initiator(_ configuration: HandshakeConfiguration) -> Self {
        Self(configuration: configuration, state: .initiatorIdle)
    }

    /// A handshake for the accepting side; feed it the ClientHello.
    public static func responder(_ configuration: HandshakeConfiguration) -> Self {
        Self(configuration: configuration, state: .responderIdle)
    }

    /// Produces the ClientHello (initiator only).
    public mutating func start() -> Action {
        guard case .initiatorIdle = state else { return fail(.unexpectedFrame) }
        let ephemeral = configuration.makeEphemeralKey()
        let hello = ClientHello.encode(
            versions: configuration.versions, suites: configuration.suites,
            orderings: configuration.orderings.map(\.rawValue),
            ephemeralKey: Array(ephemeral.publicKey.rawRepresentation),
            authority: configuration.trustStore.authority
        )
        let offered = try! ClientHello.parse(hello, authority: configuration.trustStore.authority)
        state = .initiatorSentHello(ephemeral: ephemeral, transcript: Self.hash(Self.initialHash, hello), offered: offered)
        return .send(hello)
    }

    /// Consumes one handshake frame from the peer.
    public mutating func receive(_ frame: [UInt8]) -> Action {
        do throws(SecureChannelError) {
            switch state {
            case .responderIdle:
                return try respondToHello(frame)
            case .initiatorSentHello(let ephemeral, let transcript, let offered):
                return try finish(serverHello: frame, ephemeral: ephemeral, h1: transcript, offered: offered)
            case .responderSentHello(let chainingKey, let transcript, let initiatorKey, let version, let suite, let ordering):
                return try accept(
                    clientFinish: frame, chainingKey: chainingKey, h2: transcript, initiatorKey: initiatorKey,
                    version: version, suite: suite, ordering: ordering
                )
            case .initiatorIdle, .done:
                return fail(.unexpectedFrame)
            case .failed(let error):
                return .fail(error)
            }
        } catch {
            return fail(error)
        }
    }

    // MARK: responder

    private mutating func respondToHello(_ frame: [UInt8]) throws(SecureChannelError) -> Action {
        // Cheap checks first: layout and cluster cookie, no ECC.
        let hello = try ClientHello.parse(frame, authority: configuration.trustStore.authority)
        guard let version = configuration.versions.sorted(by: >).first(where: hello.versions.contains) else {
            throw .versionMismatch
        }
        guard let suite = configuration.suites.first(where: hello.suites.contains),
            let ordering = configuration.orderings.first(where: { hello.orderings.contains($0.rawValue) })
        else { throw .noCommonOptions }
        guard !HandshakeProtocol.isWeakX25519PublicKey(hello.ephemeralKey) else { throw .weakPublicKey }

        let h1 = Self.hash(Self.initialHash, frame)
        let ephemeral = configuration.makeEphemeralKey()
        let sharedSecret = try HandshakeProtocol.agree(ephemeral, peer: hello.ephemeralKey)

        let certificate = configuration.identity.certificate
        let payloadLength = 2 + certificate.encoded.count + 64
        var header = [FrameType.serverHello.rawValue]
        header.appendBigEndian(UInt32(1 + 2 + 1 + 32 + payloadLength + RecordCipher.tagLength))
        header.append(version)
        header.appendBigEndian(suite)
        header.append(ordering.rawValue)
        header += ephemeral.publicKey.rawRepresentation
        let hEE = Self.hash(h1, header)

        let chainingKey = KeySchedule.extract(salt: hEE, inputKeyMaterial: sharedSecret)
        let responderKey = KeySchedule.recordCipher(
            trafficSecret: KeySchedule.expand(chainingKey, label: "rsec1 hs r2i", context: hEE))
        let initiatorKey = KeySchedule.recordCipher(
            trafficSecret: KeySchedule.expand(chainingKey, label: "rsec1 hs i2r", context: hEE))

        let signature = try sign(HandshakeProtocol.responderSignatureContext + hEE + certificate.encoded)
        let ciphertext = responderKey.applyKeystream(
            IdentityPayload.encode(certificate: certificate, signature: signature), recordCounter: 0)
        let tag = responderKey.tag(header, ciphertext)
        let h2 = Self.hash(hEE, ciphertext + tag)
        state = .responderSentHello(
            chainingKey: chainingKey, transcript: h2, initiatorKey: initiatorKey,
            version: version, suite: suite, ordering: ordering
        )
        return .send(header + ciphertext + tag)
    }

    private mutating func accept(
        clientFinish frame: [UInt8], chainingKey: SymmetricKey, h2: [UInt8], initiatorKey: RecordCipher,
        version: UInt8, suite: UInt16, ordering: TransportOrdering
    ) throws(SecureChannelError) -> Action {
        var reader = ByteReader(frame)
        guard reader.readByte() == FrameType.clientFinish.rawValue,
            let length = reader.readInteger(UInt32.self), Int(length) == reader.remaining,
            reader.remaining > RecordCipher.tagLength
        else { throw .malformedHandshake }
        let tagStart = frame.count - RecordCipher.tagLength
        let ciphertext = Array(frame[5..<tagStart])
        guard initiatorKey.isValidTag(Array(frame[tagStart...]), over: Array(frame[0..<5]), ciphertext) else {
            throw .handshakeAuthenticationFailed
        }
        let (certificate, signature) = try IdentityPayload.parse(initiatorKey.applyKeystream(ciphertext, recordCounter: 0))
        let peer = try configuration.trustStore.verify(
            certificate, expecting: configuration.peerExpectation, now: configuration.clock.now())
        guard peer.publicKey.isValidSignature(signature, for: HandshakeProtocol.initiatorSignatureContext + h2 + peer.encoded)
        else { throw .handshakeAuthenticationFailed }
        let h3 = Self.hash(h2, frame)
        let (initiatorToResponder, responderToInitiator) = Self.trafficSecrets(chainingKey: chainingKey, h3: h3)
        state = .done
        return .complete(
            HandshakeResult(
                peer: peer, version: version, suite: suite, ordering: ordering,
                sendSecret: responderToInitiator, receiveSecret: initiatorToResponder, transcriptHash: h3
            ))
    }

    // MARK: initiator

    private mutating func finish(
        serverHello frame: [UInt8], ephemeral: Curve25519.KeyAgreement.PrivateKey, h1: [UInt8], offered: ClientHello
    ) throws(SecureChannelError) -> Action {
        var reader = ByteReader(frame)
        guard reader.readByte() == FrameType.serverHello.rawValue,
            let length = reader.readInteger(UInt32.self), Int(length) == reader.remaining,
            let version = reader.readByte(), let suite = reader.readInteger(UInt16.self),
            let orderingByte = reader.readByte(), let responderEphemeral = reader.read(32),
            reader.remaining > RecordCipher.tagLength
        else { throw .malformedHandshake }
        // Downgrade protection part 1: the choice must be one we offered. Part 2: the responder signs h_ee,
        // which covers our whole ClientHello, so a rewritten offer breaks its signature below.
        guard offered.versions.contains(version) else { throw .versionMismatch }
        guard offered.suites.contains(suite), offered.orderings.contains(orderingByte),
            let ordering = TransportOrdering(rawValue: orderingByte)
        else { throw .noCommonOptions }

        let sharedSecret = try HandshakeProtocol.agree(ephemeral, peer: responderEphemeral)
        let header = Array(frame[0..<(5 + 1 + 2 + 1 + 32)])
        let hEE = Self.hash(h1, header)
        let chainingKey = KeySchedule.extract(salt: hEE, inputKeyMaterial: sharedSecret)
        let responderKey = KeySchedule.recordCipher(
            trafficSecret: KeySchedule.expand(chainingKey, label: "rsec1 hs r2i", context: hEE))
        let initiatorKey = KeySchedule.recordCipher(
            trafficSecret: KeySchedule.expand(chainingKey, label: "rsec1 hs i2r", context: hEE))

        let tagStart = frame.count - RecordCipher.tagLength
        let ciphertext = Array(frame[header.count..<tagStart])
        let tag = Array(frame[tagStart...])
        guard responderKey.isValidTag(tag, over: header, ciphertext) else { throw .handshakeAuthenticationFailed }
        let (certificate, signature) = try IdentityPayload.parse(responderKey.applyKeystream(ciphertext, recordCounter: 0))
        let peer = try configuration.trustStore.verify(
            certificate, expecting: configuration.peerExpectation, now: configuration.clock.now())
        guard peer.publicKey.isValidSignature(signature, for: HandshakeProtocol.responderSignatureContext + hEE + peer.encoded)
        else { throw .handshakeAuthenticationFailed }
        let h2 = Self.hash(hEE, ciphertext + tag)

        let ownCertificate = configuration.identity.certificate
        let ownSignature = try sign(HandshakeProtocol.initiatorSignatureContext + h2 + ownCertificate.encoded)
        let finishCiphertext = initiatorKey.applyKeystream(
            IdentityPayload.encode(certificate: ownCertificate, signature: ownSignature), recordCounter: 0)
        var finishHeader = [FrameType.clientFinish.rawValue]
        finishHeader.appendBigEndian(UInt32(finishCiphertext.count + RecordCipher.tagLength))
        let finish = finishHeader + finishCiphertext + initiatorKey.tag(finishHeader, finishCiphertext)
        let h3 = Self.hash(h2, finish)
        let (initiatorToResponder, responderToInitiator) = Self.trafficSecrets(chainingKey: chainingKey, h3: h3)
        state = .done
        return .sendAndComplete(
            finish,
            HandshakeResult(
                peer: peer, version: version, suite: suite, ordering: ordering,
                sendSecret: initiatorToResponder, receiveSecret: responderToInitiator, transcriptHash: h3
            ))
    }

    // MARK: helpers

    private mutating func fail(_ error: SecureChannelError) -> Action {
        state = .failed(error)
        return .fail(error)
    }

    private func sign(_ message: [UInt8]) throws(SecureChannelError) -> [UInt8] {
        do { return Array(try configuration.identity.signingKey.signature(for: message)) } catch {
            throw SecureChannelError.handshakeAuthenticationFailed.with(message: "signing failed: \(error)")
        }
    }

    static let initialHash: [UInt8] = Array(SHA256.hash(data: HandshakeProtocol.prologue))

    static func hash(_ previous: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(data: data)
        return Array(hasher.finalize())
    }

    static func trafficSecrets(chainingKey: SymmetricKey, h3: [UInt8]) -> (SymmetricKey, SymmetricKey) {
        let master = KeySchedule.extract(salt: h3, inputKeyMaterial: chainingKey.bytes)
        return (KeySchedule.expand(master, label: "rsec1 ts i2r"), KeySchedule.expand(master, label: "rsec1 ts r2i"))
    }
}
