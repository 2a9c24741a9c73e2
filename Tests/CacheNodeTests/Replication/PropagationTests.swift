// What write commands append to the replication stream (read back from the backlog), through the real decoder,
// dispatcher and handlers: relative TTLs made absolute, randomness and floats replaced by their results, blocking
// pops by their non-blocking form, expiry as DEL, SELECT on database changes, MULTI…EXEC around transactions.
@testable import CacheNode
import CacheNodeTestSupport
import CacheStore
import NIOCore
import RESPServer
import Testing

/// A node recording its stream, and a way to read what it recorded.
struct RecordingNode {
    let node = TestNode()
    var readFrom: Int64 = 1

    init() {
        node.state.replication.startRecording(keyspace: node.state.keyspace)
    }

    /// The commands appended since the last call.
    mutating func recorded() throws -> [[String]] {
        let bytes = node.state.replication.backlogBytes(from: readFrom) ?? []
        readFrom += Int64(bytes.count)
        var buffer = ByteBuffer(bytes: bytes)
        var decoder = RESPCommandDecoder()
        var arguments = CommandArguments()
        var commands: [[String]] = []
        while try decoder.next(from: &buffer, into: &arguments) {
            commands.append((0..<arguments.count).map { arguments.string($0) })
        }
        #expect(buffer.readableBytes == 0, "a partial command was recorded")
        return commands
    }
}

struct PropagationTests {
    @Test func nothingIsRecordedBeforeAReplicaConnects() throws {
        let node = TestNode()
        let client = try node.connect()
        try client.send("SET", "k", "v")
        #expect(node.state.replication.mode == .off)
        #expect(node.state.replication.backlogBytes(from: 1) == nil)
        #expect(node.state.replication.snapshot.offset == 0)
    }

    @Test func writesAreRecordedAsReceivedWithASelectFirst() throws {
        var recording = RecordingNode()
        let client = try recording.node.connect()
        try client.send("SET", "k", "v")
        try client.send("GET", "k")
        try client.send("DEL", "k")
        #expect(try recording.recorded() == [["SELECT", "0"], ["SET", "k", "v"], ["DEL", "k"]])
        try client.send("SELECT", "3")
        try client.send("LPUSH", "l", "a", "b")
        try client.send("SELECT", "0")
        try client.send("HSET", "h", "f", "v")
        #expect(try recording.recorded() == [["SELECT", "3"], ["LPUSH", "l", "a", "b"], ["SELECT", "0"], ["HSET", "h", "f", "v"]])
        // Failed writes are not propagated.
        try client.send("LPUSH", "h", "x")
        #expect(try recording.recorded() == [])
    }

    @Test func relativeExpiriesBecomeAbsolute() throws {
        var recording = RecordingNode()
        let now = recording.node.clock.nowMilliseconds()
        let client = try recording.node.connect()
        try client.send("SET", "a", "1", "EX", "10", "NX")
        try client.send("SET", "b", "1", "PX", "500", "GET")
        try client.send("SETEX", "c", "5", "v")
        try client.send("PSETEX", "d", "250", "v")
        try client.send("EXPIRE", "a", "100")
        try client.send("PEXPIRE", "b", "100", "XX")
        try client.send("GETEX", "c", "EX", "7")
        try client.send("GETEX", "d", "PERSIST")
        try client.send("GETEX", "d")
        try client.send("EXPIRE", "a", "-1")
        #expect(try recording.recorded() == [
            ["SELECT", "0"],
            ["SET", "a", "1", "PXAT", String(now + 10_000), "NX"],
            ["SET", "b", "1", "PXAT", String(now + 500), "GET"],
            ["SET", "c", "v", "PXAT", String(now + 5000)],
            ["SET", "d", "v", "PXAT", String(now + 250)],
            ["PEXPIREAT", "a", String(now + 100_000)],
            ["PEXPIREAT", "b", String(now + 100), "XX"],
            ["PEXPIREAT", "c", String(now + 7000)],
            ["PERSIST", "d"],
            ["DEL", "a"],
        ])
    }

    @Test func randomAndFloatingPointResultsArePropagated() throws {
        var recording = RecordingNode()
        let client = try recording.node.connect()
        try client.send("SADD", "s", "x")
        #expect(try client.send("SPOP", "s") == .string("x"))
        try client.send("SPOP", "s")
        #expect(try client.send("INCRBYFLOAT", "f", "1.5") == .string("1.5"))
        #expect(try client.send("HINCRBYFLOAT", "h", "g", "0.25") == .string("0.25"))
        #expect(try recording.recorded() == [
            ["SELECT", "0"], ["SADD", "s", "x"], ["SREM", "s", "x"],
            ["SET", "f", "1.5", "KEEPTTL"], ["HSET", "h", "g", "0.25"],
        ])
        try client.send("SADD", "t", "a", "b", "c")
        let popped = try #require(try client.send("SPOP", "t", "2").strings)
        let commands = try recording.recorded()
        #expect(commands.count == 2)
        #expect(commands.last.map { Array($0.prefix(2)) } == ["SREM", "t"])
        #expect(commands.last.map { Set($0.dropFirst(2)) } == Set(popped))
    }

    @Test func blockingPopsPropagateTheirNonBlockingForm() throws {
        var recording = RecordingNode()
        let client = try recording.node.connect()
        let waiter = try recording.node.connect()
        try client.send("RPUSH", "b", "1", "2")
        #expect(try client.send("BLPOP", "a", "b", "0") == .array([.string("b"), .string("1")]))
        #expect(try client.send("BLMOVE", "b", "c", "RIGHT", "LEFT", "0") == .string("2"))
        #expect(try recording.recorded() == [
            ["SELECT", "0"], ["RPUSH", "b", "1", "2"], ["LPOP", "b"], ["LMOVE", "b", "c", "RIGHT", "LEFT"],
        ])
        // A client that had to wait is served by a later push: the pop is recorded after the push.
        try waiter.writeRaw("*3\r\n$5\r\nBRPOP\r\n$1\r\nq\r\n$1\r\n0\r\n")
        #expect(try waiter.nextReply() == nil)
        try client.send("LPUSH", "q", "x")
        #expect(try waiter.nextReply() == .array([.string("q"), .string("x")]))
        #expect(try recording.recorded() == [["LPUSH", "q", "x"], ["RPOP", "q"]])
    }

    @Test func blockingSortedSetPopsPropagateTheirNonBlockingForm() throws {
        var recording = RecordingNode()
        let client = try recording.node.connect()
        let waiter = try recording.node.connect()
        try client.send("ZADD", "z", "1", "a", "2", "b", "3", "c")
        #expect(try client.send("BZPOPMAX", "none", "z", "0") == .array([.string("z"), .string("c"), .string("3")]))
        #expect(try client.send("BZMPOP", "0", "1", "z", "MIN", "COUNT", "5")
            == .array([.string("z"), .array([.array([.string("a"), .string("1")]), .array([.string("b"), .string("2")])])]))
        #expect(try recording.recorded() == [
            ["SELECT", "0"], ["ZADD", "z", "1", "a", "2", "b", "3", "c"], ["ZPOPMAX", "z"],
            ["ZMPOP", "1", "z", "MIN", "COUNT", "5"],
        ])
        // A client that had to wait is served by a later ZADD: the pop is recorded after it.
        try waiter.write("BZPOPMIN", "q", "0")
        #expect(try waiter.nextReply() == nil)
        try client.send("ZADD", "q", "7", "x")
        #expect(try waiter.nextReply() == .array([.string("q"), .string("x"), .string("7")]))
        #expect(try recording.recorded() == [["ZADD", "q", "7", "x"], ["ZPOPMIN", "q"]])
    }

    @Test func transactionsArePropagatedAsMultiExec() throws {
        var recording = RecordingNode()
        let client = try recording.node.connect()
        try client.send("MULTI")
        try client.send("SET", "a", "1")
        try client.send("GET", "a")
        try client.send("SELECT", "2")
        try client.send("INCR", "n")
        try client.send("EXEC")
        #expect(try recording.recorded() == [["MULTI"], ["SELECT", "0"], ["SET", "a", "1"], ["SELECT", "2"], ["INCR", "n"], ["EXEC"]])
        // A transaction without writes records nothing.
        try client.send("MULTI")
        try client.send("GET", "a")
        try client.send("EXEC")
        #expect(try recording.recorded() == [])
    }

    @Test func expiredKeysAreDeletedExplicitly() throws {
        var recording = RecordingNode()
        let client = try recording.node.connect()
        try client.send("SET", "k", "v", "PX", "100")
        _ = try recording.recorded()
        recording.node.advance(milliseconds: 200)
        #expect(try client.send("GET", "k") == .null)
        #expect(try recording.recorded() == [["DEL", "k"]])
        try client.send("SELECT", "1")
        try client.send("SET", "j", "v", "PX", "100")
        _ = try recording.recorded()
        recording.node.advance(milliseconds: 200)
        recording.node.state.keyspace.activeExpireCycle(now: recording.node.clock.nowMilliseconds())
        #expect(try recording.recorded() == [["DEL", "j"]])
    }

    @Test func replicasRefuseWritesButNotReadsAndNeverExpireKeys() throws {
        let node = TestNode()
        let client = try node.connect()
        try client.send("SET", "k", "v", "PX", "100")
        node.state.replication.markReplicaForTesting(keyspace: node.state.keyspace)
        #expect(try client.send("SET", "x", "1") == .error("READONLY You can't write against a read only replica."))
        #expect(try client.send("GET", "k") == .string("v"))
        node.advance(milliseconds: 200)
        // Logically expired for readers, but kept until the primary's DEL arrives.
        #expect(try client.send("GET", "k") == .null)
        #expect(try client.send("DBSIZE") == .integer(1))
        #expect(try client.send("WAIT", "0", "0").isError)
    }

    @Test func waitReturnsAtOnceWhenEnoughReplicasAcknowledged() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("WAIT", "0", "0") == .integer(0))
        #expect(try client.send("WAIT", "1", "-1") == .error("ERR timeout is negative"))
        // No replica: WAIT 1 with a timeout suspends and answers 0 when it expires.
        try client.writeRaw("*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$2\r\n50\r\n")
        #expect(try client.nextReply() == nil)
        client.advanceLoopTime(milliseconds: 50)
        #expect(try client.nextReply() == .integer(0))
    }

    @Test func replicationCommandsFollowTheSecurityPolicy() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("PSYNC", "?", "-1").text?.contains("plaintext replication is disabled") == true)
        #expect(try client.send("REPLCONF", "listening-port", "1").text?.contains("plaintext replication is disabled") == true)
        #expect(try client.send("REPLICAOF", "127.0.0.1", "1").text?.contains("plaintext replication is disabled") == true)
        #expect(try client.send("ROLE") == .array([.string("master"), .integer(0), .array([])]))
        #expect(try client.send("REPLICAOF", "NO", "ONE") == .simple("OK"))
    }

    /// Streams reach replicas as redis sends them: XADD with the ID it made and an approximate trim as the exact one
    /// it did, XREADGROUP/XCLAIM/XAUTOCLAIM as `XCLAIM … FORCE JUSTID LASTID`, NOACK reads as `XGROUP SETID`, and
    /// reads or no-ops not at all. Replaying what was recorded on a second node gives the same data.
    @Test func streamsPropagateTheirEffects() throws {
        var recording = RecordingNode()
        let now = recording.node.clock.nowMilliseconds()
        let client = try recording.node.connect()
        let added = try client.send("XADD", "s", "*", "f", "v").text ?? ""
        #expect(added == "\(now)-0")
        try client.send("CONFIG", "SET", "stream-node-max-entries", "2")
        for index in 1...5 { _ = try client.send("XADD", "s", "\(now)-\(index)", "f", "\(index)") }
        // Six entries in nodes of two: MAXLEN ~ 3 drops whole nodes only (four entries), and says so exactly.
        let trimmed = try client.send("XADD", "s", "MAXLEN", "~", "3", "*", "f", "7")
        #expect(try client.send("XLEN", "s") == .integer(3))
        try client.send("XREAD", "STREAMS", "s", "0")
        try client.send("XGROUP", "CREATE", "s", "g", "0")
        try client.send("XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", ">")
        try client.send("XREADGROUP", "GROUP", "g", "bob", "NOACK", "COUNT", "1", "STREAMS", "s", ">")
        try client.send("XACK", "s", "g", "9-9")
        recording.node.advance(milliseconds: 100)
        let claimed = try client.send("XAUTOCLAIM", "s", "g", "carol", "50", "0", "JUSTID")
        let recorded = try recording.recorded()
        let ids = (try client.send("XRANGE", "s", "-", "+")).elements?.compactMap { $0.elements?.first?.text } ?? []
        #expect(ids.count == 3)
        let expected: [[String]] = [
            ["SELECT", "0"],
            ["XADD", "s", "\(now)-0", "f", "v"],
        ] + (1...5).map { ["XADD", "s", "\(now)-\($0)", "f", "\($0)"] } + [
            ["XADD", "s", "MAXLEN", "=", "3", trimmed.text ?? "", "f", "7"],
            ["XGROUP", "CREATE", "s", "g", "0"],
            ["XCLAIM", "s", "g", "alice", "0", ids[0], "TIME", String(now), "RETRYCOUNT", "1", "FORCE", "JUSTID", "LASTID", ids[0]],
            ["XGROUP", "CREATECONSUMER", "s", "g", "bob"],
            // Seven entries were ever added and the first kept is the fifth: alice's read counted 5, bob's 6.
            ["XGROUP", "SETID", "s", "g", ids[1], "ENTRIESREAD", "6"],
            ["XCLAIM", "s", "g", "carol", "0", ids[0], "TIME", String(now + 100), "RETRYCOUNT", "1", "FORCE", "JUSTID", "LASTID", ids[1]],
        ]
        #expect(recorded.filter { $0[0] != "CONFIG" } == expected)
        #expect(claimed.elements?[1] == .array([.bulk(Array(ids[0].utf8))]))

        // The replayed commands rebuild the same stream, group and pending entries.
        let replica = TestNode()
        let replay = try replica.connect()
        for command in recorded where command[0] != "SELECT" {
            #expect(try !replay.send(arguments: command.map { Array($0.utf8) }).isError, "\(command)")
        }
        #expect(try replay.send("DEBUG", "DIGEST-VALUE", "s") == client.send("DEBUG", "DIGEST-VALUE", "s"))
        #expect(try replay.send("XPENDING", "s", "g", "-", "+", "10") == client.send("XPENDING", "s", "g", "-", "+", "10"))
    }
}
