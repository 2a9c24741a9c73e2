// Tests of the HyperLogLog family through the real decoder, dispatcher and reply writer (redis
// tests/unit/hyperloglog.tcl). The known answers (bytes, PFDEBUG DECODE, estimates) are what redis-server 7.0.15
// answers to the same commands; IntegrationTests/DataTypesAgainstRedisServerTests compares whole sketches live.
import CacheNode
import CacheNodeTestSupport
import Testing

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

struct HyperLogLogCommandsTests {
    @Test func aSmallSketchIsRedisesSparseEncodingByteForByte() throws {
        let client = try TestNode().connect()
        #expect(try client.send("PFADD", "h", "a", "b", "c") == .integer(1))
        let header: [UInt8] = bytes("HYLL") + [1, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0x80]
        #expect(try client.send("GET", "h") == .bulk(header + [0x60, 0xF3, 0x80, 0x50, 0xB1, 0x84, 0x4B, 0xFB, 0x80, 0x42, 0x5A]))
        #expect(try client.send("PFDEBUG", "DECODE", "h") == .string("Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"))
        #expect(try client.send("PFDEBUG", "ENCODING", "h") == .simple("sparse"))
        // The estimate is cached in the header (its top bit cleared) until the next change.
        #expect(try client.send("PFCOUNT", "h") == .integer(3))
        #expect(try client.send("GETRANGE", "h", "8", "15") == .bulk([3, 0, 0, 0, 0, 0, 0, 0]))
        #expect(try client.send("PFADD", "h", "a") == .integer(0))
        #expect(try client.send("GETRANGE", "h", "15", "15") == .bulk([0]))
        #expect(try client.send("PFADD", "h", "d") == .integer(1))
        #expect(try client.send("GETRANGE", "h", "15", "15") == .bulk([0x80]))
    }

    @Test func estimatesMatchRedisesAcrossThePromotionToDense() throws {
        let client = try TestNode().connect()
        for start in stride(from: 1, through: 5000, by: 100) {
            try client.send(arguments: [bytes("PFADD"), bytes("big")] + (start..<(start + 100)).map { bytes("e\($0)") })
            if start == 901 {
                #expect(try client.send("PFCOUNT", "big") == .integer(1008))
                #expect(try client.send("PFDEBUG", "ENCODING", "big") == .simple("sparse"))
                _ = try client.send("COPY", "big", "thousand")
            }
        }
        #expect(try client.send("PFCOUNT", "big") == .integer(4968))
        #expect(try client.send("PFDEBUG", "ENCODING", "big") == .simple("dense"))
        #expect(try client.send("STRLEN", "big") == .integer(16 + 12288))
        _ = try client.send("PFADD", "h", "a", "b", "c")
        #expect(try client.send("PFCOUNT", "h", "thousand", "big") == .integer(4972))
        #expect(try client.send("PFMERGE", "m", "h", "thousand") == .simple("OK"))
        #expect(try client.send("PFCOUNT", "m") == .integer(1012))
        #expect(try client.send("PFDEBUG", "ENCODING", "m") == .simple("sparse"))
        // A dense source makes the destination dense.
        #expect(try client.send("PFMERGE", "m", "big") == .simple("OK"))
        #expect(try client.send("PFDEBUG", "ENCODING", "m") == .simple("dense"))
        #expect(try client.send("PFCOUNT", "m") == .integer(4972))
    }

    @Test func theSparseLimitIsTheConfiguredOne() throws {
        let client = try TestNode().connect()
        _ = try client.send("PFADD", "h", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k")
        #expect(try client.send("PFDEBUG", "ENCODING", "h") == .simple("sparse"))
        #expect(try client.send("CONFIG", "SET", "hll-sparse-max-bytes", "30") == .simple("OK"))
        #expect(try client.send("CONFIG", "GET", "hll-sparse-max-bytes") == .array([.string("hll-sparse-max-bytes"), .string("30")]))
        _ = try client.send("PFADD", "h", "new_element")
        #expect(try client.send("PFDEBUG", "ENCODING", "h") == .simple("dense"))
        #expect(try client.send("PFCOUNT", "h") == .integer(12))
    }

    @Test func getregConvertsToDenseAndReadsEveryRegister() throws {
        let client = try TestNode().connect()
        _ = try client.send("PFADD", "h", "a", "b", "c")
        guard case .array(let registers) = try client.send("PFDEBUG", "GETREG", "h") else {
            Issue.record("GETREG")
            return
        }
        #expect(registers.count == 16384)
        // The three runs PFDEBUG DECODE showed: register 8436 is 1, 12711 is 2, 15780 is 1.
        #expect(registers[8436] == .integer(1) && registers[12711] == .integer(2) && registers[15780] == .integer(1))
        #expect(registers.filter { $0 != .integer(0) }.count == 3)
        #expect(try client.send("PFDEBUG", "ENCODING", "h") == .simple("dense"))
        #expect(try client.send("PFDEBUG", "TODENSE", "h") == .integer(0))
        #expect(try client.send("PFCOUNT", "h") == .integer(3))
    }

    @Test func invalidSketchesAndWrongTypesAreRefused() throws {
        let client = try TestNode().connect()
        let notHLL = RESPValue.error("WRONGTYPE Key is not a valid HyperLogLog string value.")
        _ = try client.send("SET", "plain", "a string")
        #expect(try client.send("PFADD", "plain", "x") == notHLL)
        #expect(try client.send("PFCOUNT", "plain") == notHLL)
        #expect(try client.send("PFMERGE", "dest", "plain") == notHLL)
        _ = try client.send("LPUSH", "list", "x")
        #expect(try client.send("PFADD", "list", "x").text?.hasPrefix("WRONGTYPE Operation against a key") == true)
        // A sparse sketch whose runs cover too few registers, and one with bytes after the last run.
        _ = try client.send("PFADD", "h", "a", "b", "c")
        _ = try client.send("SETRANGE", "h", "16", "\u{7f}")  // XZERO 8436 becomes XZERO 16129: too many registers
        #expect(try client.send("PFCOUNT", "h") == .error("INVALIDOBJ Corrupted HLL object detected"))
        _ = try client.send("DEL", "h")
        _ = try client.send("PFADD", "h", "a")
        _ = try client.send("APPEND", "h", "hello")
        #expect(try client.send("PFCOUNT", "h") == .error("INVALIDOBJ Corrupted HLL object detected"))
        // A dense sketch of the wrong length.
        _ = try client.send("PFADD", "d", "a")
        _ = try client.send("PFDEBUG", "TODENSE", "d")
        _ = try client.send("APPEND", "d", "x")
        #expect(try client.send("PFCOUNT", "d") == notHLL)
        #expect(try client.send("PFDEBUG", "GETREG", "missing") == .error("ERR The specified key does not exist"))
        #expect(try client.send("PFDEBUG", "NOPE", "h") == .error("ERR Unknown PFDEBUG subcommand 'NOPE'"))
    }

    @Test func emptySketchesAndMissingKeys() throws {
        let client = try TestNode().connect()
        #expect(try client.send("PFCOUNT", "missing") == .integer(0))
        #expect(try client.send("PFADD", "empty") == .integer(1))
        #expect(try client.send("PFADD", "empty") == .integer(0))
        #expect(try client.send("PFCOUNT", "empty") == .integer(0))
        #expect(try client.send("PFADD", "withEmpty", "") == .integer(1))
        #expect(try client.send("PFCOUNT", "withEmpty") == .integer(1))
        #expect(try client.send("PFMERGE", "fresh", "nothing", "none") == .simple("OK"))
        #expect(try client.send("PFCOUNT", "fresh") == .integer(0))
        #expect(try client.send("EXISTS", "fresh") == .integer(1))
    }
}
