// Random pipelines of commands from every family, several clients at once, through the real decoder, dispatcher and
// reply writer: the node must answer each command it reads and keep serving, whatever the order (clients killing
// themselves or each other mid-pipeline, blocking pops, transactions, subscriptions, database swaps, resets,
// malformed input). A fixed seed per test keeps every run the same; a failure names the seed and the last pipeline.
import CacheNode
import CacheNodeTestSupport
import CacheStore
import NIOCore
import Testing

struct RandomPipelineTests {
    private static let keys = ["k0", "k1", "k2", "{t}a", "{t}b"]

    /// One random command (or, rarely, malformed input) as the client would send it.
    private static func randomCommand(_ random: inout SplitMix64, clientIDs: [Int]) -> [String] {
        func key() -> String { keys.randomElement(using: &random)! }
        func number() -> String { String(Int.random(in: -3...20, using: &random)) }
        let someClient = clientIDs.randomElement(using: &random) ?? 1
        let choices: [[String]] = [
            ["SET", key(), "v\(number())"], ["SET", key(), "x", "PX", String(Int.random(in: 1...50, using: &random))],
            ["SET", key(), "y", "NX", "GET"], ["SET", key(), "z", "XX", "KEEPTTL"], ["GET", key()], ["GETDEL", key()],
            ["GETEX", key(), "EX", "1"], ["INCR", key()], ["INCRBYFLOAT", key(), "1.5"], ["APPEND", key(), "ab"],
            ["SETRANGE", key(), number(), "zz"], ["GETRANGE", key(), "0", number()], ["MSET", key(), "1", key(), "2"],
            ["MGET", key(), key(), key()], ["DEL", key(), key()], ["UNLINK", key()], ["EXISTS", key(), key()],
            ["TYPE", key()], ["RENAME", key(), key()], ["COPY", key(), key(), "REPLACE"], ["MOVE", key(), "1"],
            ["EXPIRE", key(), number()], ["PEXPIRE", key(), "5"], ["PERSIST", key()], ["TTL", key()],
            ["OBJECT", "ENCODING", key()], ["OBJECT", "FREQ", key()], ["RANDOMKEY"], ["SCAN", "0", "COUNT", "3"],
            ["KEYS", "*"], ["DBSIZE"], ["SELECT", String(Int.random(in: 0...2, using: &random))], ["SWAPDB", "0", "1"],
            ["FLUSHDB"], ["LPUSH", key(), "a", "b"], ["RPUSH", key(), "c"], ["LPOP", key(), "2"], ["LRANGE", key(), "0", "-1"],
            ["LMOVE", key(), key(), "LEFT", "RIGHT"], ["BLPOP", key(), key(), "0.01"], ["BRPOP", key(), "0"],
            ["BLMOVE", key(), key(), "RIGHT", "LEFT", "0.02"], ["HSET", key(), "f", number(), "g", "1"],
            ["HINCRBY", key(), "f", "2"], ["HGETALL", key()], ["HDEL", key(), "f"], ["SADD", key(), "m", number()],
            ["SMEMBERS", key()], ["SPOP", key()], ["SINTERSTORE", key(), key(), key()], ["ZADD", key(), number(), "a"],
            ["ZADD", key(), "XX", "INCR", "1", "a"], ["ZRANGE", key(), "0", "-1", "WITHSCORES"],
            ["ZRANGESTORE", key(), key(), "0", "-1"], ["ZUNIONSTORE", key(), "2", key(), key()], ["ZPOPMIN", key()],
            ["MULTI"], ["EXEC"], ["DISCARD"], ["WATCH", key()], ["UNWATCH"], ["SUBSCRIBE", "ch"], ["PSUBSCRIBE", "c*"],
            ["UNSUBSCRIBE"], ["PUBLISH", "ch", "hello"], ["PING"], ["ECHO", "e"], ["HELLO", Bool.random(using: &random) ? "3" : "2"],
            ["RESET"], ["CLIENT", "SETNAME", "n\(number())"], ["CLIENT", "REPLY", ["ON", "OFF", "SKIP"].randomElement(using: &random)!],
            ["CLIENT", "KILL", "ID", String(someClient), "SKIPME", Bool.random(using: &random) ? "yes" : "no"],
            ["CLIENT", "LIST"], ["INFO", "keyspace"], ["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"], ["QUIT"],
            ["NOSUCHCOMMAND", key()], ["GET"], ["SET", key()],
            ["FLUSHALL"], ["DUMP", key()], ["TOUCH", key(), key()], ["RENAMENX", key(), key()], ["EXPIREAT", key(), "1"],
            ["SETEX", key(), "1", "v"], ["GETSET", key(), "w"], ["MEMORY", "USAGE", key()], ["OBJECT", "IDLETIME", key()],
            ["LINSERT", key(), "BEFORE", "a", "n"], ["LSET", key(), "0", "s"], ["LTRIM", key(), "1", number()],
            ["LMPOP", "2", key(), key(), "LEFT"], ["BLMPOP", "0.01", "2", key(), key(), "RIGHT", "COUNT", "2"],
            ["SMOVE", key(), key(), "m"], ["SUNIONSTORE", key(), key(), key()], ["SRANDMEMBER", key(), number()],
            ["ZMPOP", "2", key(), key(), "MIN"], ["ZRANDMEMBER", key(), number()],
            ["HRANDFIELD", key(), number(), "WITHVALUES"], ["SSUBSCRIBE", "{t}s"], ["SPUBLISH", "{t}s", "m"],
            ["PUBSUB", "CHANNELS"], ["CLIENT", "INFO"], ["CLIENT", "GETNAME"], ["WAIT", "0", "0"],
            ["CONFIG", "SET", "maxmemory", ["0", "1mb", "100kb"].randomElement(using: &random)!],
            ["CONFIG", "SET", "maxmemory-policy", ["noeviction", "allkeys-lfu", "volatile-ttl", "allkeys-random"].randomElement(using: &random)!],
            ["COMMAND", "INFO", "get"], ["TIME"],
        ]
        return choices.randomElement(using: &random)!
    }

    @Test(arguments: Array(UInt64(1)...32))
    func randomPipelinesFromSeveralClientsNeverStopTheNode(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let node = TestNode()
        var clients: [TestClient] = []
        var ids: [Int] = []
        for _ in 0..<4 {
            let client = try node.connect()
            guard case .integer(let id) = try client.send("CLIENT", "ID") else { Issue.record("no CLIENT ID"); return }
            clients.append(client)
            ids.append(id)
        }
        for round in 0..<400 {
            let slot = Int.random(in: 0..<clients.count, using: &random)
            if clients[slot].isClosed {
                clients[slot] = try node.connect()
                guard case .integer(let id) = try clients[slot].send("CLIENT", "ID") else {
                    Issue.record("seed \(seed) round \(round): a new client got no CLIENT ID")
                    return
                }
                ids[slot] = id
            }
            var pipeline = ByteBuffer()
            var sent: [[String]] = []
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                let command = Self.randomCommand(&random, clientIDs: ids)
                sent.append(command)
                var frame = TestClient.frame(command)
                pipeline.writeBuffer(&frame)
            }
            if Int.random(in: 0..<40, using: &random) == 0 {
                pipeline.writeString(["*2\r\n$3\r\nGET\r\n$-5\r\n", "*x\r\n", "GET \"unbalanced\r\n"].randomElement(using: &random)!)
                sent.append(["<malformed>"])
            }
            try clients[slot].writeRaw(pipeline)
            if Int.random(in: 0..<10, using: &random) == 0 {
                node.advance(milliseconds: Int64.random(in: 1...60, using: &random))
                for client in clients where !client.isClosed { client.advanceLoopTime(milliseconds: 30) }
            }
            for client in clients where !client.isClosed { try client.allReplies() }
            // A fresh connection is answered after every round: nothing the others did stopped the node.
            let probe = try node.connect()
            #expect(try probe.send("PING") == .simple("PONG"), "seed \(seed) round \(round) after \(sent)")
            // The keyspace answers consistently: every key KEYS lists exists.
            guard case .array(let listed) = try probe.send("KEYS", "*") else {
                Issue.record("seed \(seed) round \(round): KEYS failed after \(sent)")
                return
            }
            for case .bulk(let name) in listed {
                #expect(try probe.send(arguments: [Array("EXISTS".utf8), name]) == .integer(1), "seed \(seed) round \(round) after \(sent)")
            }
        }
    }
}
