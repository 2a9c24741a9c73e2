// Test helpers for a RESPConnectionHandler on an EmbeddedChannel: what the client sends and what it has received, as
// text.
import NIOCore
import NIOEmbedded

extension EmbeddedChannel {
    /// Delivers `text` to the handlers as bytes read from the client.
    func writeClientText(_ text: String) throws {
        try writeInbound(ByteBuffer(string: text))
    }

    /// Everything the handlers wrote to the client since the last call.
    func takeClientOutput() throws -> String {
        var text = ""
        while var buffer = try readOutbound(as: ByteBuffer.self) {
            text += buffer.readString(length: buffer.readableBytes) ?? ""
        }
        return text
    }
}
