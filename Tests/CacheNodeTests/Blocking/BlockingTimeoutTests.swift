// Tests of the blocking-command timeout parser against redis's getTimeoutFromObjectOrReply rules.
import CacheNode
import Testing

struct BlockingTimeoutTests {
    static let now: Int64 = 1_700_000_000_000

    func deadline(_ text: String) throws -> Int64? {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { try BlockingTimeout.deadline(seconds: $0, now: Self.now) }
    }

    @Test func secondsBecomeAnAbsoluteDeadlineRoundedUpToMilliseconds() throws {
        #expect(try deadline("1") == Self.now + 1000)
        #expect(try deadline("0.5") == Self.now + 500)
        #expect(try deadline("0.001") == Self.now + 1)
        #expect(try deadline("0.0001") == Self.now + 1)
        #expect(try deadline("1e1") == Self.now + 10_000)
        #expect(try deadline("0x10") == Self.now + 16_000)
        #expect(try deadline("+2") == Self.now + 2000)
    }

    @Test func zeroMeansForever() throws {
        #expect(try deadline("0") == nil)
        #expect(try deadline("0.0") == nil)
        // redis rounds -0.0001 s up to 0 ms, which also means forever.
        #expect(try deadline("-0.0001") == nil)
    }

    @Test func badValuesUseRedisErrors() {
        for text in ["", "abc", "nan", "1x", " 1", "1 ", "--1", "1e99999"] {
            #expect(throws: BlockingTimeout.notAFloat, "\(text)") { try deadline(text) }
        }
        for text in ["-1", "-0.5", "-inf"] {
            #expect(throws: BlockingTimeout.negative, "\(text)") { try deadline(text) }
        }
        for text in ["inf", "0x7FFFFFFFFFFFFF", "9223372036854775807", "9223372036854775.807"] {
            #expect(throws: BlockingTimeout.outOfRange, "\(text)") { try deadline(text) }
        }
    }
}
