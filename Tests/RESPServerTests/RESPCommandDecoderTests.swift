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

    @Test func framesEndingPastTwoGiBAreRefusedBeforeTheyAreBuffered() {
        // Arguments are located by 32-bit offsets; the length alone tells the frame cannot fit.
        let unlimited = RESPCommandDecoder.Limits(maximumBulkLength: .max)
        #expect(throws: RESPDecodeError.invalidBulkLength) { try decodeAll("*1\r\n$2147483640\r\n", limits: unlimited) }
        #expect(throws: RESPDecodeError.invalidBulkLength) {
            try decodeAll("*2\r\n$3\r\nSET\r\n$2147483630\r\n", limits: unlimited)
        }
        #expect(throws: Never.self) { try decodeAll("*1\r\n$2147483000\r\n", limits: unlimited) }
    }

    @Test func trustedStreamsHaveNoArgumentCountOrBulkLengthLimit() throws {
        // An AOF or replication stream replays what clients stored under whatever limits held then.
        let count = 1024 * 1024 + 1
        let frame = "*\(count)\r\n" + String(repeating: "$0\r\n\r\n", count: count)
        #expect(throws: RESPDecodeError.invalidMultibulkLength) { try decodeAll(frame) }
        var decoder = RESPCommandDecoder(limits: .trustedStream)
        var buffer = ByteBuffer(string: frame)
        var arguments = CommandArguments()
        #expect(try decoder.next(from: &buffer, into: &arguments))
        #expect(arguments.count == count)
        #expect(RESPCommandDecoder.Limits.trustedStream.maximumBulkLength == .max)
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

    /// Decodes `input` given whole (frames complete in the buffer take the one-pass path) and given one byte at a
    /// time (every frame is assembled by the incremental path): the commands and the error, if any.
    private func decodeWholeAndByteByByte(_ input: [UInt8], authenticated: Bool = true)
        -> (whole: [[[UInt8]]], wholeError: RESPDecodeError?, bytewise: [[[UInt8]]], bytewiseError: RESPDecodeError?)
    {
        func run(chunkSize: Int) -> ([[[UInt8]]], RESPDecodeError?) {
            var decoder = RESPCommandDecoder()
            decoder.clientIsAuthenticated = authenticated
            var buffer = ByteBuffer()
            var arguments = CommandArguments()
            var commands: [[[UInt8]]] = []
            var position = 0
            while position < input.count {
                buffer.writeBytes(input[position..<min(position + chunkSize, input.count)])
                position += chunkSize
                do {
                    while try decoder.next(from: &buffer, into: &arguments) {
                        commands.append((0..<arguments.count).map { arguments.bytes($0) })
                    }
                } catch {
                    return (commands, error)
                }
            }
            return (commands, nil)
        }
        let whole = run(chunkSize: input.count)
        let bytewise = run(chunkSize: 1)
        return (whole.0, whole.1, bytewise.0, bytewise.1)
    }

    private func frame(_ arguments: [[UInt8]]) -> [UInt8] {
        var bytes = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments { bytes += Array("$\(argument.count)\r\n".utf8) + argument + [13, 10] }
        return bytes
    }

    @Test func wholeFramesDecodeAsTheyDoByteByByte() {
        // Argument counts on both sides of the one-pass path's 1,024 limit; values that look like RESP.
        let values: [[UInt8]] = [[], Array("v".utf8), Array("\r\n$3\r\n*1\r\n".utf8), Array(repeating: 0xFF, count: 300)]
        var input: [UInt8] = []
        var expected: [[[UInt8]]] = []
        for count in [1, 2, 3, 16, 1024, 1025] {
            let command = [Array("CMD".utf8)] + (1..<count).map { values[$0 % values.count] }
            input += frame(command)
            expected.append(command)
        }
        input += Array("PING\r\n".utf8) + frame([Array("GET".utf8), Array("k".utf8)])
        expected += [[Array("PING".utf8)], [Array("GET".utf8), Array("k".utf8)]]
        let decoded = decodeWholeAndByteByByte(input)
        #expect(decoded.wholeError == nil && decoded.bytewiseError == nil)
        // Compared as Bools: printing a thousand-argument frame on failure helps no one.
        let wholeMatches = decoded.whole == expected
        let bytewiseMatches = decoded.bytewise == expected
        #expect(wholeMatches, "the whole buffer decoded differently")
        #expect(bytewiseMatches, "byte-by-byte input decoded differently")
    }

    @Test func malformedFramesFailTheSameWayWholeOrByteByByte() {
        let cases: [(String, Bool)] = [
            ("*2\r\n$3\r\nGET\r\nx", true),
            ("*1\r\n$-1\r\n", true),
            ("*1\r\n$01\r\nx\r\n", true),
            ("*01\r\n$1\r\nx\r\n", true),
            ("*1\r\n$+1\r\nx\r\n", true),
            ("*1\r\n$99999999999999999999999\r\n", true),
            ("*1\r\n$536870913\r\n", true),
            ("*2000000\r\n", true),
            ("*11\r\n", false),
            ("*1\r\n$16385\r\n", false),
            ("*1\r\n$3\r\nGET\r\n*1\r\n:3\r\n", true),
        ]
        for (text, authenticated) in cases {
            let decoded = decodeWholeAndByteByByte(Array(text.utf8), authenticated: authenticated)
            #expect(decoded.wholeError != nil, "\(text.debugDescription) was accepted")
            #expect(decoded.wholeError == decoded.bytewiseError, "\(text.debugDescription)")
            #expect(decoded.whole == decoded.bytewise, "\(text.debugDescription)")
        }
    }

    @Test func errorTextsMatchRedis() {
        #expect(RESPDecodeError.invalidMultibulkLength.description == "invalid multibulk length")
        #expect(RESPDecodeError.expectedDollar(got: UInt8(ascii: "f")).description == "expected '$', got 'f'")
        #expect(RESPDecodeError.inlineTooLong.description == "too big inline request")
    }
}
