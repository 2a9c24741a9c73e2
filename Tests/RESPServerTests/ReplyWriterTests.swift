// Tests of reply encoding under RESP2 and RESP3, and of the integer/float parsing rules commands rely on.
import NIOCore
import RESPServer
import Testing

struct ReplyWriterTests {
    private func encode(_ version: RESPVersion, _ body: (inout ReplyWriter) -> Void) -> String {
        var writer = ReplyWriter(buffer: ByteBuffer(), protocolVersion: version)
        body(&writer)
        return String(buffer: writer.buffer)
    }

    @Test func aggregatesDegradeToArraysUnderRESP2() {
        #expect(encode(.v2) { $0.mapHeader(2) } == "*4\r\n")
        #expect(encode(.v3) { $0.mapHeader(2) } == "%2\r\n")
        #expect(encode(.v2) { $0.setHeader(3) } == "*3\r\n")
        #expect(encode(.v3) { $0.setHeader(3) } == "~3\r\n")
        #expect(encode(.v2) { $0.pushHeader(3) } == "*3\r\n")
        #expect(encode(.v3) { $0.pushHeader(3) } == ">3\r\n")
    }

    @Test func nullsBooleansAndDoubles() {
        #expect(encode(.v2) { $0.null() } == "$-1\r\n")
        #expect(encode(.v3) { $0.null() } == "_\r\n")
        #expect(encode(.v2) { $0.nullArray() } == "*-1\r\n")
        #expect(encode(.v2) { $0.boolean(true) } == ":1\r\n")
        #expect(encode(.v3) { $0.boolean(false) } == "#f\r\n")
        #expect(encode(.v2) { $0.double(1.5) } == "$3\r\n1.5\r\n")
        #expect(encode(.v3) { $0.double(-.infinity) } == ",-inf\r\n")
        #expect(encode(.v3) { $0.double(3) } == ",3\r\n")
    }

    @Test func integersAndBulkStrings() {
        #expect(encode(.v2) { $0.integer(0) } == ":0\r\n")
        #expect(encode(.v2) { $0.integer(-42) } == ":-42\r\n")
        #expect(encode(.v2) { $0.integer(Int.min) } == ":-9223372036854775808\r\n")
        #expect(encode(.v2) { $0.integer(Int.max) } == ":9223372036854775807\r\n")
        #expect(encode(.v2) { $0.bulk("hé") } == "$3\r\nhé\r\n")
        #expect(encode(.v3) { $0.verbatim("ab") } == "=6\r\ntxt:ab\r\n")
        #expect(encode(.v2) { $0.verbatim("ab") } == "$2\r\nab\r\n")
    }

    @Test func userTextCannotInjectReplies() {
        #expect(encode(.v2) { $0.error(code: "ERR", message: "bad\r\n+OK") } == "-ERR bad  +OK\r\n")
        #expect(encode(.v2) { $0.simpleString("a\nb") } == "+a b\r\n")
    }

    @Test func integerParsingFollowsString2ll() {
        func parse(_ text: String) -> Int? { Array(text.utf8).withUnsafeBytes { RESPNumberParsing.parseInteger($0) } }
        #expect(parse("0") == 0)
        #expect(parse("-1") == -1)
        #expect(parse("9223372036854775807") == Int.max)
        #expect(parse("-9223372036854775808") == Int.min)
        #expect(parse("9223372036854775808") == nil)
        #expect(parse("01") == nil)
        #expect(parse("+1") == nil)
        #expect(parse(" 1") == nil)
        #expect(parse("-0") == nil)
        #expect(parse("") == nil)
    }

    @Test func doubleParsingAcceptsInfinitiesAndRejectsNaN() {
        func parse(_ text: String) -> Double? { Array(text.utf8).withUnsafeBytes { RESPNumberParsing.parseDouble($0) } }
        #expect(parse("1.5") == 1.5)
        #expect(parse("5.0e3") == 5000)
        #expect(parse("-inf") == -.infinity)
        #expect(parse("+inf") == .infinity)
        #expect(parse("nan") == nil)
        #expect(parse("1 ") == nil)
        #expect(parse("abc") == nil)
    }
}
