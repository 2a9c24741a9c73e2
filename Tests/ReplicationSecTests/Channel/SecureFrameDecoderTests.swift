// SecureFrameDecoderTests: the frame decoder under NIOTestUtils' ByteToMessageDecoderVerifier, plus limits.
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing
@testable import ReplicationSec

struct SecureFrameDecoderTests {
    static func frame(_ type: FrameType, _ body: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(UInt32(body.count))
        buffer.writeBytes(body)
        return buffer
    }

    @Test func verifierSplitsAndCoalescesFrames() throws {
        let frames = [
            Self.frame(.data, Array(repeating: 1, count: 60)),
            Self.frame(.clientHello, [1, 2, 3]),
            Self.frame(.close, []),
            Self.frame(.data, Array(0..<200).map { UInt8($0) }),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: frames.map { ($0, [$0]) },
            decoderFactory: { SecureFrameDecoder(maximumFrameLength: 1024) }
        )
    }

    @Test func oversizedLengthIsRejectedBeforeTheBodyArrives() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(SecureFrameDecoder(maximumFrameLength: 100)))
        var header = ByteBuffer()
        header.writeInteger(FrameType.data.rawValue)
        header.writeInteger(UInt32(101))
        #expect(throws: SecureChannelError.frameTooLarge) { try channel.writeInbound(header) }
    }

    @Test func unknownFrameTypeIsRejected() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(SecureFrameDecoder(maximumFrameLength: 100)))
        #expect(throws: SecureChannelError.unexpectedFrame) { try channel.writeInbound(ByteBuffer(bytes: [0x99, 0, 0, 0, 0])) }
    }

    @Test func partialFrameWaitsForMoreBytes() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(SecureFrameDecoder(maximumFrameLength: 100)))
        let whole = Self.frame(.data, [1, 2, 3, 4])
        try channel.writeInbound(whole.getSlice(at: 0, length: 7)!)
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        try channel.writeInbound(whole.getSlice(at: 7, length: 2)!)
        #expect(try channel.readInbound(as: ByteBuffer.self) == whole)
    }
}
