// SecureFrameDecoder: splits the byte stream into whole frames (`type u8 | length u32 | body`) with a hard cap.
public import NIOCore

/// Decodes complete ReplicationSec frames; each output buffer holds one whole frame including its 5-byte header.
///
/// Returns `nil` until a frame is complete, and throws `.frameTooLarge` as soon as a header announces more than
/// `maximumFrameLength` bytes of body, or `.unexpectedFrame` for an unknown type byte, before buffering the body.
public struct SecureFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    /// Largest accepted body length.
    public let maximumFrameLength: Int

    public init(maximumFrameLength: Int) {
        self.maximumFrameLength = maximumFrameLength
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        guard FrameType(rawValue: type) != nil else { throw SecureChannelError.unexpectedFrame }
        guard let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self) else { return nil }
        guard length <= maximumFrameLength else { throw SecureChannelError.frameTooLarge }
        return buffer.readSlice(length: RecordFormat.frameHeaderLength + Int(length))
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        try decode(buffer: &buffer)
    }
}
