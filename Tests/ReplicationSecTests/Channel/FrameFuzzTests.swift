// FrameFuzzTests: the fuzz target's checks on a deterministic corpus (random bytes and mutations of genuine
// streams), so they run in every test pass; fuzz/FuzzSecureFrames runs the same checks under libFuzzer (`fuzz/run.sh frames`).
import Crypto
import NIOCore
import NIOEmbedded
import Testing
@testable import ReplicationSec

struct FrameFuzzTests {
    /// A small deterministic generator (SplitMix64).
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func feedServer(_ bytes: [UInt8]) throws -> [ByteBuffer] {
        let channel = EmbeddedChannel()
        try SecureChannel.addHandlers(
            to: channel.pipeline.syncOperations, role: .server(admission: nil),
            configuration: SecureChannelHandlerTests.serverConfiguration, eventLoop: channel.eventLoop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } catch is SecureChannelError {
            // Expected for malformed input.
        }
        var delivered = [ByteBuffer]()
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { delivered.append(buffer) }
        _ = try? channel.finish()
        return delivered
    }

    @Test func randomBytesNeverDeliverPlaintextOrCrash() throws {
        var generator = Generator(state: 1)
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<600, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if !bytes.isEmpty, Bool.random(using: &generator) { bytes[0] = [0x01, 0x02, 0x03, 0x15, 0x17].randomElement(using: &generator)! }
            #expect(try Self.feedServer(bytes).isEmpty)
        }
    }

    @Test func mutatedGenuineClientStreamsNeverDeliverTamperedPlaintext() throws {
        // Capture a genuine client stream: ClientHello, then (after the server replies) ClientFinish + a record.
        let pair = try SecureChannelHandlerTests.Pair()
        pair.client.writeAndFlush(ByteBuffer(string: "genuine"), promise: nil)
        var clientBytes = [UInt8]()
        var moved = true
        while moved {
            moved = false
            while let bytes = try pair.client.readOutbound(as: ByteBuffer.self) {
                moved = true
                clientBytes += Array(bytes.readableBytesView)
                try pair.server.writeInbound(bytes)
            }
            while let bytes = try pair.server.readOutbound(as: ByteBuffer.self) {
                moved = true
                try pair.client.writeInbound(bytes)
            }
        }
        #expect(try pair.server.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "genuine"))

        // Replayed to a fresh server, mutated: a new server ephemeral means no stream (mutated or not) gets through.
        var generator = Generator(state: 2)
        for _ in 0..<300 {
            var mutated = clientBytes
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: mutated[Int.random(in: 0..<mutated.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
                case 1: mutated.removeSubrange(Int.random(in: 0..<mutated.count, using: &generator)..<mutated.count)
                default: mutated.insert(UInt8.random(in: 0...255, using: &generator), at: Int.random(in: 0...mutated.count, using: &generator))
                }
                if mutated.isEmpty { break }
            }
            #expect(try Self.feedServer(mutated).isEmpty)
        }
    }

    @Test func mutatedRecordsAreNeverAccepted() throws {
        let secret = SymmetricKey(data: [UInt8](repeating: 3, count: 32))
        var sealer = RecordSealer(trafficSecret: secret, policy: RekeyPolicy(), now: .uptimeNanoseconds(0))
        let genuine = try sealer.seal(Array("payload".utf8), now: .uptimeNanoseconds(0))
        var generator = Generator(state: 3)
        for _ in 0..<3000 {
            var mutated = genuine
            let position = Int.random(in: 0..<mutated.count, using: &generator)
            mutated[position] ^= UInt8.random(in: 1...255, using: &generator)
            if Bool.random(using: &generator) { mutated = Array(mutated.prefix(Int.random(in: 0...mutated.count, using: &generator))) }
            var opener = RecordOpener(trafficSecret: secret, policy: RekeyPolicy(), ordering: .replayWindow, now: .uptimeNanoseconds(0))
            #expect(throws: SecureChannelError.self) { try opener.open(mutated, now: .uptimeNanoseconds(0)) }
        }
    }
}
