// RecordIO decoding (apache/mesos docs/recordio.md): the NIO verifier, every split point of a stream, and the
// refusals: a length line that is not digits, a record over the limit (refused before it is buffered), a stream
// that ends inside a record.

import CacheFrameworkMesos
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

struct RecordIODecoderTests {
    let records = [#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"12220-3440-12532-2345"},"heartbeat_interval_seconds":15}}"#, #"{"type":"HEARTBEAT"}"#, "x"]

    var stream: ByteBuffer {
        var buffer = ByteBuffer()
        for record in records { RecordIO.write(ByteBuffer(string: record), to: &buffer) }
        return buffer
    }

    @Test func frameIsLengthNewlineRecord() {
        #expect(String(buffer: RecordIO.frame(ByteBuffer(string: #"{"type":"HEARTBEAT"}"#))) == "20\n{\"type\":\"HEARTBEAT\"}")
    }

    @Test func verifierAcceptsTheDecoder() throws {
        let pairs = records.map { record -> (ByteBuffer, [ByteBuffer]) in
            (RecordIO.frame(ByteBuffer(string: record)), [ByteBuffer(string: record)])
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) {
            RecordIODecoder(maximumRecordSize: 1024)
        }
    }

    @Test func everySplitPointDecodesTheSameRecords() throws {
        let whole = stream
        for split in 0...whole.readableBytes {
            let processor = NIOSingleStepByteToMessageProcessor(RecordIODecoder(maximumRecordSize: 1024))
            var decoded: [String] = []
            try processor.process(buffer: whole.getSlice(at: 0, length: split)!) { decoded.append(String(buffer: $0)) }
            try processor.process(buffer: whole.getSlice(at: split, length: whole.readableBytes - split)!) {
                decoded.append(String(buffer: $0))
            }
            try processor.finishProcessing(seenEOF: true) { decoded.append(String(buffer: $0)) }
            #expect(decoded == records, "split at \(split)")
        }
    }

    @Test func byteByByteDecodes() throws {
        let processor = NIOSingleStepByteToMessageProcessor(RecordIODecoder(maximumRecordSize: 1024))
        var decoded: [String] = []
        for byte in stream.readableBytesView {
            try processor.process(buffer: ByteBuffer(bytes: [byte])) { decoded.append(String(buffer: $0)) }
        }
        #expect(decoded == records)
    }

    @Test func oversizeRecordIsRefusedBeforeItsBytesArrive() {
        let processor = NIOSingleStepByteToMessageProcessor(RecordIODecoder(maximumRecordSize: 100))
        #expect(throws: RecordIOError.recordTooLarge(101, limit: 100)) {
            try processor.process(buffer: ByteBuffer(string: "101\n")) { _ in }
        }
        let huge = NIOSingleStepByteToMessageProcessor(RecordIODecoder(maximumRecordSize: 100))
        #expect(throws: RecordIOError.recordTooLarge(0, limit: 0)) {
            try huge.process(buffer: ByteBuffer(string: "18446744073709551615\n")) { _ in }
        }
    }

    @Test func garbageLengthIsRefused() {
        for garbage in ["abc\n", "\n", "-5\n", "1 2\n", "12x", "123456789012345678901", " 5\n", "99999999999999999999\n"] {
            let processor = NIOSingleStepByteToMessageProcessor(RecordIODecoder(maximumRecordSize: 100))
            #expect(throws: RecordIOError.invalidLength(""), "\(garbage.debugDescription)") {
                try processor.process(buffer: ByteBuffer(string: garbage)) { _ in }
            }
        }
    }

    @Test func streamEndingInsideARecordIsTruncated() throws {
        let processor = NIOSingleStepByteToMessageProcessor(RecordIODecoder(maximumRecordSize: 100))
        try processor.process(buffer: ByteBuffer(string: "10\nabc")) { _ in Issue.record("no record is complete") }
        #expect(throws: RecordIOError.truncated(buffered: 0)) {
            try processor.finishProcessing(seenEOF: true) { _ in }
        }
    }

    @Test func decoderInAPipelineEmitsRecords() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RecordIODecoder(maximumRecordSize: 1024)))
        try channel.writeInbound(stream)
        var decoded: [String] = []
        while let record = try channel.readInbound(as: ByteBuffer.self) { decoded.append(String(buffer: record)) }
        #expect(decoded == records)
        #expect(try channel.finish().isClean)
    }
}
