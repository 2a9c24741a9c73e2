// Tests of the command decoder: NIO's decoder verifier (every split of the input), redis's protocol.tcl cases,
// limits, inline commands and the pre-auth limits.
import NIOCore
import NIOTestUtils
import RESPServer
import Testing

struct RESPCommandDecoderTests {
    private func decodeAll(_ text: String, limits: RESPCommandDecoder.Limits = .init(), authenticated: Bool = true)
        throws(RESPDecodeError) -> [[String]]
    {
        var decoder = RESPCommandDecoder(limits: limits)
        decoder.clientIsAuthenticated = authenticated
        var buffer = ByteBuffer(string: text)
        var arguments = CommandArguments()
        var commands: [[String]] = []
        while try decoder.next(from: &buffer, into: &arguments) {
            commands.append((0..<arguments.count).map { arguments.string($0) })
        }
        return commands
    }

    private func args(_ words: String...) -> CommandArguments { CommandArguments(strings: words) }

    @Test func verifierAcceptsEverySplitOfAPipeline() throws {
        let input = ByteBuffer(string: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\nGET k\r\n*0\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n")
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(input, [args("SET", "k", "hello"), args("PING"), args("GET", "k"), args("GET", "")])],
            decoderFactory: { RESPCommandDecoder() }
        )
    }

    @Test func binarySafeBulkStrings() throws {
        var buffer = ByteBuffer()
        buffer.writeString("*2\r\n$3\r\nSET\r\n$4\r\n")
        buffer.writeBytes([0, 13, 10, 255])
        buffer.writeString("\r\n")
        var decoder = RESPCommandDecoder()
        var arguments = CommandArguments()
        #expect(try decoder.next(from: &buffer, into: &arguments))
        #expect(arguments.bytes(1) == [0, 13, 10, 255])
    }

    @Test func incompleteFramesWaitForMoreBytesAndResume() throws {
        var decoder = RESPCommandDecoder()
        var arguments = CommandArguments()
        var buffer = ByteBuffer(string: "*2\r\n$3\r\nGET\r\n$5\r\nhel")
        #expect(try decoder.next(from: &buffer, into: &arguments) == false)
        buffer.writeString("lo\r\n")
        #expect(try decoder.next(from: &buffer, into: &arguments))
        #expect(arguments.string(1) == "hello")
        #expect(buffer.readableBytes == 0)
    }

    // redis tests/unit/protocol.tcl
    @Test func handlesAnEmptyQueryAndNegativeMultibulk() throws {
        #expect(try decodeAll("\r\n*-10\r\n*0\r\nPING\r\n") == [["PING"]])
    }

    @Test func outOfRangeMultibulkLength() {
        #expect(throws: RESPDecodeError.invalidMultibulkLength) { try decodeAll("*3000000000\r\n") }
        #expect(throws: RESPDecodeError.invalidMultibulkLength) { try decodeAll("*20\r\n", limits: .init(maximumArgumentCount: 10)) }
    }

    @Test func wrongMultibulkPayloadHeader() {
        #expect(throws: RESPDecodeError.expectedDollar(got: UInt8(ascii: "f"))) { try decodeAll("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n") }
    }

    @Test func negativeAndNonNumericBulkLengths() {
        #expect(throws: RESPDecodeError.invalidBulkLength) { try decodeAll("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n") }
        #expect(throws: RESPDecodeError.invalidBulkLength) { try decodeAll("*1\r\n$blabla\r\n") }
        #expect(throws: RESPDecodeError.invalidMultibulkLength) { try decodeAll("*blabla\r\n") }
    }

    @Test func bulkLengthAboveProtoMaxBulkLen() {
        #expect(throws: RESPDecodeError.invalidBulkLength) { try decodeAll("*1\r\n$2147483648\r\n") }
        #expect(throws: RESPDecodeError.invalidBulkLength) { try decodeAll("*1\r\n$11\r\n", limits: .init(maximumBulkLength: 10)) }
    }

    @Test func overlongHeaderAndInlineLines() {
        let longLine = String(repeating: "a", count: 70_000)
        #expect(throws: RESPDecodeError.inlineTooLong) { try decodeAll(longLine) }
        #expect(throws: RESPDecodeError.multibulkCountTooLong) { try decodeAll("*" + String(repeating: "1", count: 70_000)) }
        #expect(throws: RESPDecodeError.bulkCountTooLong) { try decodeAll("*1\r\n$" + String(repeating: "1", count: 70_000)) }
    }

    @Test func unauthenticatedClientsGetRedisPreAuthLimits() {
        #expect(throws: RESPDecodeError.unauthenticatedMultibulkLength) {
            try decodeAll("*11\r\n", authenticated: false)
        }
        #expect(throws: RESPDecodeError.unauthenticatedBulkLength) {
            try decodeAll("*1\r\n$16385\r\n", authenticated: false)
        }
        #expect(throws: Never.self) { try decodeAll("*11\r\n", authenticated: true) }
    }

    @Test func inlineCommandsFollowRedisQuoting() throws {
        #expect(try decodeAll("set k \"hello world\"\r\nget 'k'\n") == [["set", "k", "hello world"], ["get", "k"]])
        #expect(try decodeAll("echo \"\\x41\\x42\\n\"\r\n") == [["echo", "AB\n"]])
        #expect(throws: RESPDecodeError.unbalancedQuotes) { try decodeAll("echo \"unterminated\r\n") }
        #expect(throws: RESPDecodeError.unbalancedQuotes) { try decodeAll("echo \"a\"b\r\n") }
    }

    @Test func errorTextsMatchRedis() {
        #expect(RESPDecodeError.invalidMultibulkLength.description == "invalid multibulk length")
        #expect(RESPDecodeError.expectedDollar(got: UInt8(ascii: "f")).description == "expected '$', got 'f'")
        #expect(RESPDecodeError.inlineTooLong.description == "too big inline request")
    }
}
