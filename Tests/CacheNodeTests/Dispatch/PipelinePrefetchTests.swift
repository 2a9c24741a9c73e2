// A pipelined batch through the real handler and NodeDispatcher: its keys are prefetched and hashed once, and the
// commands taking them must still see exactly their own key, also when commands in between are refused, queued in
// MULTI, take no key or several, or repeat a key.
import CacheNode
import CacheNodeTestSupport
import NIOCore
import Testing

struct PipelinePrefetchTests {
    /// The commands as one write, so that they arrive in one read and are decoded (and prefetched) together.
    private static func pipeline(_ commands: [[String]]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for command in commands {
            var frame = TestClient.frame(command)
            buffer.writeBuffer(&frame)
        }
        return buffer
    }

    @Test func everyCommandOfAPrefetchedBatchGetsItsOwnKey() throws {
        let node = TestNode()
        let client = try node.connect()
        let batch: [[String]] = [
            ["SET", "alpha", "1"], ["SET", "beta", String(repeating: "b", count: 40)], ["GET", "alpha"],
            ["GET"],  // refused (arity): its key slot is never taken
            ["GET", "beta"], ["INCR", "alpha"], ["INCR", "alpha"], ["PING"], ["MGET", "alpha", "beta", "nope"],
            ["MULTI"], ["SET", "gamma", "3"], ["GET", "gamma"], ["EXEC"],
            ["GET", "gamma"], ["GET", "nope"], ["STRLEN", "beta"], ["DEL", "alpha"], ["GET", "alpha"],
        ]
        try client.writeRaw(Self.pipeline(batch))
        let replies = try client.allReplies()
        let long = String(repeating: "b", count: 40)
        #expect(replies == [
            .simple("OK"), .simple("OK"), .string("1"),
            .error("ERR wrong number of arguments for 'get' command"),
            .string(long), .integer(2), .integer(3), .simple("PONG"), .array([.string("3"), .string(long), .null]),
            .simple("OK"), .simple("QUEUED"), .simple("QUEUED"), .array([.simple("OK"), .string("3")]),
            .string("3"), .null, .integer(40), .integer(1), .null,
        ])
    }

    @Test func singleKeyCommandsAmongMultiKeyOnesStillGetTheirOwnKeys() throws {
        // Multi-key commands add their keys to the batch's hints too; the single-key commands after them must still
        // find their own key (their note's place in the batch's keys moves past the multi-key commands' keys).
        let node = TestNode()
        let client = try node.connect()
        let batch: [[String]] = [
            ["SET", "a", "1"], ["MSET", "b", "2", "c", "3"], ["GET", "a"], ["MGET", "a", "b", "c", "d"], ["GET", "c"],
            ["DEL", "b", "c", "d"], ["GET", "b"], ["EXISTS", "a", "b", "c"], ["INCR", "a"], ["MGET"],
            ["GET", "a"],
        ]
        try client.writeRaw(Self.pipeline(batch))
        #expect(try client.allReplies() == [
            .simple("OK"), .simple("OK"), .string("1"), .array([.string("1"), .string("2"), .string("3"), .null]),
            .string("3"), .integer(2), .null, .integer(1), .integer(2),
            .error("ERR wrong number of arguments for 'mget' command"), .string("2"),
        ])
    }

    @Test func aBatchWithMoreKeysThanTheHintLimitGetsEveryReplyRight() throws {
        let node = TestNode()
        let client = try node.connect()
        let keys = (0..<100).map { "key-\($0)" }
        var batch: [[String]] = [["MSET"] + keys.flatMap { [$0, "v-\($0)"] }]
        batch += [["MGET"] + keys, ["GET", "key-99"], ["GET", "key-0"]]
        try client.writeRaw(Self.pipeline(batch))
        #expect(try client.allReplies() == [
            .simple("OK"), .array(keys.map { .string("v-\($0)") }), .string("v-key-99"), .string("v-key-0"),
        ])
    }

    @Test func aKeyRepeatedThroughABatchIsUpdatedInOrder() throws {
        let node = TestNode()
        let client = try node.connect()
        try client.writeRaw(Self.pipeline(Array(repeating: ["INCR", "counter"], count: 40) + [["GET", "counter"]]))
        #expect(try client.allReplies() == (1...40).map { .integer($0) } + [.string("40")])
    }
}
