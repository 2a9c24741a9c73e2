// FuzzSecureFrames: libFuzzer entry point for the ReplicationSec frame decoder, handshake and record opener.
import Crypto
import NIOCore
import NIOEmbedded
import ReplicationSec

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSecureFrames(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    FrameFuzzHarness.run(bytes)
    return 0
}

/// Starts libFuzzer (see LibFuzzerDriver.swift).
@main
enum FuzzSecureFramesMain {
    static func main() { runLibFuzzer { start, count in fuzzSecureFrames(start, count) } }
}

/// The checks, shared in spirit with FrameFuzzTests.
enum FrameFuzzHarness {
    static let authority = ClusterAuthority(signingKey: try! .init(rawRepresentation: [UInt8](repeating: 1, count: 32)))
    static let identity = try! authority.issueIdentity(
        nodeID: "fuzz", role: .cacheNode, notBefore: 0, notAfter: .max,
        signingKey: try! .init(rawRepresentation: [UInt8](repeating: 2, count: 32)))
    static let configuration = SecureChannelConfiguration(
        handshake: HandshakeConfiguration(
            identity: identity, trustStore: TrustStore(authority: authority.publicKey),
            peerExpectation: PeerExpectation(roles: [.cacheNode])),
        maximumRecordPayload: 4096)

    static func run(_ bytes: [UInt8]) {
        let channel = EmbeddedChannel()
        _ = try? SecureChannel.addHandlers(
            to: channel.pipeline.syncOperations, role: .server(admission: nil), configuration: configuration,
            eventLoop: channel.eventLoop)
        _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
        // No handshake can complete from one blind input, so no plaintext may come out.
        if let output = try? channel.readInbound(as: ByteBuffer.self) {
            fatalError("plaintext delivered from unauthenticated input: \(output)")
        }
        _ = try? channel.finish()
        // Run what the close scheduled (and any timer still pending) so nothing keeps the pipeline alive.
        channel.embeddedEventLoop.advanceTime(by: .hours(1))

        var opener = RecordOpener(
            trafficSecret: .init(data: [UInt8](repeating: 3, count: 32)), policy: RekeyPolicy(),
            ordering: .replayWindow, now: .uptimeNanoseconds(0))
        if let record = try? opener.open(bytes, now: .uptimeNanoseconds(0)) {
            fatalError("forged record accepted: \(record)")
        }
    }
}
