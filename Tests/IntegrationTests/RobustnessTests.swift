// Robustness of the real cache-node process against hostile or careless clients, over raw loopback sockets:
// malformed RESP, protocol limits (proto-max-bulk-len, multibulk count, inline length, pre-auth limits), clients
// vanishing mid-command, huge pipelines, replies far larger than one socket write, and 10,000 idle connections.
// Every wait is bounded (socket receive timeouts and deadlines); nothing sleeps to wait for time.
import Foundation
import LoopbackTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite(.serialized)
struct RobustnessTests {
    // MARK: malformed input and protocol limits

    @Test func malformedRESPGetsProtocolErrorAndClosesOnlyThatConnection() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let bystander = try RawConnection(port: node.port)
        let offender = try RawConnection(port: node.port)
        #expect(try bystander.command("SET", "shared", "1") == .simple("OK"))

        // redis tests/unit/protocol.tcl "Wrong multibulk payload header"; the PING before it is still answered.
        try offender.send("*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n")
        let (replies, closed) = try offender.readRepliesUntilClosed()
        #expect(replies == [.simple("PONG"), .error("ERR Protocol error: expected '$', got 'f'")])
        #expect(closed, "the server must close a connection after a protocol error")

        #expect(try bystander.command("PING") == .simple("PONG"))
        #expect(try bystander.command("GET", "shared") == .bulk(Array("1".utf8)))
        #expect(try bystander.command("EXISTS", "x") == .integer(0))
    }

    @Test func bulkLengthAboveProtoMaxBulkLenIsRefused() throws {
        let node = try CacheNodeProcess(arguments: ["--proto-max-bulk-len", "1mb"])
        defer { node.stop() }
        let client = try RawConnection(port: node.port)
        // Exactly the limit is accepted…
        let largest = [UInt8](repeating: UInt8(ascii: "v"), count: 1024 * 1024)
        #expect(try client.command(Array("SET".utf8), Array("big".utf8), largest) == .simple("OK"))
        #expect(try client.command("STRLEN", "big") == .integer(1024 * 1024))
        // …one byte more is a protocol error, answered before the body is sent.
        try client.send("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$\(1024 * 1024 + 1)\r\n")
        let (replies, closed) = try client.readRepliesUntilClosed()
        #expect(replies == [.error("ERR Protocol error: invalid bulk length")])
        #expect(closed)
        #expect(try RawConnection(port: node.port).command("STRLEN", "big") == .integer(1024 * 1024))
    }

    // CLIENT KILL inside EXEC of clients on both event loops, each WATCHing a key, and of the killer itself. The
    // transaction runs to its end, every killed client is closed and the node keeps serving. Closing a killed client
    // on the killer's own thread, under the transaction's stripe locks (which ending its session takes), deadlocked
    // that event loop until aabc2f7.
    @Test func clientKillInsideExecClosesClientsOnEveryEventLoopAndTheNodeKeepsServing() throws {
        let node = try CacheNodeProcess(arguments: ["--threads", "2"])
        // SIGKILL: a deadlocked event loop would also hang a graceful shutdown, and this test must fail, not hang.
        defer { node.kill9() }
        var victims: [RawConnection] = []
        var victimIDs: [Int] = []
        for index in 0..<4 {
            let victim = try RawConnection(port: node.port)
            #expect(try victim.command("WATCH", "watched-\(index)") == .simple("OK"))
            guard case .integer(let id) = try victim.command("CLIENT", "ID") else { throw HarnessError(description: "no CLIENT ID") }
            victims.append(victim)
            victimIDs.append(id)
        }
        let killer = try RawConnection(port: node.port)
        guard case .integer(let killerID) = try killer.command("CLIENT", "ID") else { throw HarnessError(description: "no CLIENT ID") }
        #expect(try killer.command("MULTI") == .simple("OK"))
        for id in victimIDs {
            #expect(try killer.command("CLIENT", "KILL", "ID", String(id)) == .simple("QUEUED"))
        }
        #expect(try killer.command("CLIENT", "KILL", "ID", String(killerID), "SKIPME", "no") == .simple("QUEUED"))
        #expect(try killer.command("SET", "after-kills", "1") == .simple("QUEUED"))
        try killer.send("*1\r\n$4\r\nEXEC\r\n*1\r\n$4\r\nPING\r\n")
        let (killerReplies, killerClosed) = try killer.readRepliesUntilClosed()
        #expect(killerReplies == [.array(Array(repeating: .integer(1), count: 5) + [.simple("OK")])])
        #expect(killerClosed)
        for victim in victims {
            let (replies, closed) = try victim.readRepliesUntilClosed()
            #expect(replies.isEmpty)
            #expect(closed)
        }
        let after = try RawConnection(port: node.port)
        #expect(try after.command("GET", "after-kills") == .bulk(Array("1".utf8)))
        for index in 0..<4 {
            #expect(try after.command("SET", "watched-\(index)", "free") == .simple("OK"))
        }
    }

    @Test func clientQueryBufferLimitClosesAClientHoldingTooMuchInput() throws {
        let node = try CacheNodeProcess(arguments: ["--client-query-buffer-limit", "1mb"])
        defer { node.stop() }
        let bystander = try RawConnection(port: node.port)
        #expect(try bystander.command("CONFIG", "GET", "client-query-buffer-limit")
            == .array([.bulk(Array("client-query-buffer-limit".utf8)), .bulk(Array("1048576".utf8))]))
        // A 3 MB value under the default proto-max-bulk-len, but more than 1 MB of it held unprocessed: redis closes
        // such a client without a reply, and so do we. One byte over the limit in all, so the limit is passed by the
        // last byte the server reads and nothing unread is left to turn the close into a reset.
        let offender = try RawConnection(port: node.port)
        let header = Array("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$\(3 * 1024 * 1024)\r\n".utf8)
        try offender.send(header + [UInt8](repeating: UInt8(ascii: "v"), count: 1024 * 1024 + 1 - header.count))
        #expect(try offender.readRepliesUntilClosed() == ([], true))
        #expect(try bystander.command("EXISTS", "big") == .integer(0))
        #expect(try info(node.port, "stats")["client_query_buffer_limit_disconnections"] == "1")
        // Below the limit a large value still arrives in many reads and is stored.
        let value = [UInt8](repeating: UInt8(ascii: "w"), count: 900 * 1024)
        #expect(try bystander.command(Array("SET".utf8), Array("large".utf8), value) == .simple("OK"))
        #expect(try bystander.command("STRLEN", "large") == .integer(900 * 1024))
        // redis's lower bound for the setting.
        guard case .error(let message)? = try bystander.command("CONFIG", "SET", "client-query-buffer-limit", "1000") else {
            Issue.record("CONFIG SET client-query-buffer-limit 1000 was accepted")
            return
        }
        #expect(message.contains("client-query-buffer-limit") && message.contains("at least 1048576"))
    }

    // client-output-buffer-limit pubsub: a subscriber that stops reading is closed once its unread messages pass the
    // hard limit, as redis closes it. Before, the node kept every message published to such a subscriber (200 MB
    // published to one that never read: 230 MB resident). The publisher is not held up and the node's memory stays.
    @Test func aSubscriberThatDoesNotReadIsClosedAtThePubSubOutputLimit() throws {
        let node = try CacheNodeProcess(arguments: ["--client-output-buffer-limit", "pubsub 2mb 0 0"])
        defer { node.stop() }
        let subscriber = try RawConnection(port: node.port)
        #expect(try subscriber.command("SUBSCRIBE", "news")
            == .array([.bulk(Array("subscribe".utf8)), .bulk(Array("news".utf8)), .integer(1)]))
        let publisher = try RawConnection(port: node.port)
        #expect(try publisher.command("CONFIG", "GET", "client-output-buffer-limit") == .array([
            .bulk(Array("client-output-buffer-limit".utf8)),
            .bulk(Array("normal 0 0 0 slave 268435456 67108864 60 pubsub 2097152 0 0".utf8)),
        ]))
        let memoryBefore = Int(try info(node.port, "memory")["used_memory"] ?? "") ?? 0
        // 64 MB in 64 KiB messages, far more than loopback's socket buffers hold.
        let message = [UInt8](repeating: UInt8(ascii: "m"), count: 64 * 1024)
        let batch = Array((0..<64).map { _ in RawConnection.encode([Array("PUBLISH".utf8), Array("news".utf8), message]) }.joined())
        var receivers: [RESPReply] = []
        for _ in 0..<16 {
            try publisher.send(batch)
            receivers += try publisher.readReplies(64)
        }
        // Every PUBLISH answered; the first ones reached the subscriber, the last ones nobody: it was closed.
        #expect(receivers.first == .integer(1))
        #expect(receivers.last == .integer(0))
        // Measured before the subscriber reads anything: what the node holds for it now.
        let memoryAfter = Int(try info(node.port, "memory")["used_memory"] ?? "") ?? 0
        #expect(memoryAfter - memoryBefore < 16 << 20, "used_memory grew from \(memoryBefore) to \(memoryAfter)")
        let (messages, closed) = try subscriber.readRepliesUntilClosed()
        #expect(closed)
        #expect(messages.count < 16 * 64 / 2, "the subscriber got \(messages.count) messages: they were buffered, not dropped")
        #expect(try info(node.port, "stats")["client_output_buffer_limit_disconnections"] == "1")
        #expect(try publisher.command("PING") == .simple("PONG"))
    }

    // client-output-buffer-limit normal: none by default, so a client reading a reply larger than the socket buffers
    // gets all of it; with a limit set, the same reply closes it (redis drops the output and closes the client). A
    // client that only pipelines never gets there: its input waits while it does not read (backpressure).
    @Test func aNormalClientIsClosedWhenOneReplyPassesItsOutputLimit() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let admin = try RawConnection(port: node.port)
        let value = [UInt8](repeating: UInt8(ascii: "v"), count: 32 * 1024 * 1024)
        #expect(try admin.command(Array("SET".utf8), Array("huge".utf8), value) == .simple("OK"))
        let reader = try RawConnection(port: node.port)
        #expect(try reader.command("GET", "huge") == .bulk(value))

        #expect(try admin.command("CONFIG", "SET", "client-output-buffer-limit", "normal 4mb 0 0") == .simple("OK"))
        let greedy = try RawConnection(port: node.port)
        try greedy.send(RawConnection.encode([Array("GET".utf8), Array("huge".utf8)]) + RawConnection.encode([Array("SET".utf8), Array("after".utf8), Array("1".utf8)]))
        let (replies, closed) = try greedy.readRepliesUntilClosed()
        #expect(replies.isEmpty)
        #expect(closed)
        #expect(try admin.command("EXISTS", "after") == .integer(0))
        #expect(try info(node.port, "stats")["client_output_buffer_limit_disconnections"] == "1")
        #expect(try admin.command("STRLEN", "huge") == .integer(32 * 1024 * 1024))
    }

    @Test func clientListShowsEachClientsUnprocessedInput() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let admin = try RawConnection(port: node.port)
        let sender = try RawConnection(port: node.port)
        #expect(try sender.command("CLIENT", "SETNAME", "sender") == .simple("OK"))
        func senderQueryBuffer() throws -> String? {
            guard case .bulk(let list)? = try admin.command("CLIENT", "LIST") else { return nil }
            let line = String(decoding: list, as: UTF8.self).split(separator: "\n").first { $0.contains("name=sender ") }
            return line?.split(separator: " ").first { $0.hasPrefix("qbuf=") }.map { String($0.dropFirst(5)) }
        }
        #expect(try senderQueryBuffer() == "0")
        // Half of a 200,000-byte value: all of it waits, unprocessed, until the rest arrives.
        let header = Array("*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$200000\r\n".utf8)
        try sender.send(header + [UInt8](repeating: UInt8(ascii: "h"), count: 100_000))
        try eventually("CLIENT LIST shows the sender's buffered bytes", seconds: 10) {
            try senderQueryBuffer() == String(header.count + 100_000)
        }
        try sender.send([UInt8](repeating: UInt8(ascii: "h"), count: 100_000) + Array("\r\n".utf8))
        #expect(try sender.readReplies(1) == [.simple("OK")])
        #expect(try senderQueryBuffer() == "0")
    }

    @Test func protoMaxBulkLenSetAtRunTimeAppliesToOpenConnections() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let client = try RawConnection(port: node.port)
        let value = [UInt8](repeating: UInt8(ascii: "v"), count: 1024 * 1024 + 1)
        #expect(try client.command(Array("SET".utf8), Array("before".utf8), value) == .simple("OK"))
        #expect(try client.command("CONFIG", "SET", "proto-max-bulk-len", "1mb") == .simple("OK"))
        // The same connection, its next command: the new limit holds.
        try client.send("*3\r\n$3\r\nSET\r\n$5\r\nafter\r\n$\(1024 * 1024 + 1)\r\n")
        #expect(try client.readRepliesUntilClosed() == ([.error("ERR Protocol error: invalid bulk length")], true))
        let other = try RawConnection(port: node.port)
        #expect(try other.command("STRLEN", "before") == .integer(1024 * 1024 + 1))
        #expect(try other.command("EXISTS", "after") == .integer(0))
    }

    @Test func multibulkCountAboveOneMillionIsRefused() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let client = try RawConnection(port: node.port)
        try client.send("*\(1024 * 1024 + 1)\r\n$3\r\nDEL\r\n")
        let (replies, closed) = try client.readRepliesUntilClosed()
        #expect(replies == [.error("ERR Protocol error: invalid multibulk length")])
        #expect(closed)
        // redis tests/unit/protocol.tcl "Out of range multibulk length".
        let other = try RawConnection(port: node.port)
        try other.send("*3000000000\r\n")
        #expect(try other.readRepliesUntilClosed() == ([.error("ERR Protocol error: invalid multibulk length")], true))
        #expect(try RawConnection(port: node.port).command("PING") == .simple("PONG"))
    }

    @Test func inlineLineAbove64KiBIsRefused() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        // No line break within 64 KiB (redis tests/unit/protocol.tcl "Protocol desync regression test").
        let client = try RawConnection(port: node.port)
        try client.send([UInt8](repeating: UInt8(ascii: "a"), count: 70 * 1024))
        #expect(try client.readRepliesUntilClosed() == ([.error("ERR Protocol error: too big inline request")], true))
        // A whole inline command longer than 64 KiB is refused too.
        let other = try RawConnection(port: node.port)
        try other.send("ECHO " + String(repeating: "b", count: 65 * 1024) + "\r\n")
        #expect(try other.readRepliesUntilClosed() == ([.error("ERR Protocol error: too big inline request")], true))
        // Just under the limit is an ordinary inline command.
        let fine = try RawConnection(port: node.port)
        let word = String(repeating: "c", count: 60 * 1024)
        try fine.send("ECHO \(word)\r\n")
        #expect(try fine.readReplies(1) == [.bulk(Array(word.utf8))])
    }

    @Test func unauthenticatedClientSendingMoreThanTenArgumentsIsCutOff() throws {
        let node = try CacheNodeProcess(arguments: ["--requirepass", "secret"])
        defer { node.stop() }
        let tenPairs = ["MSET"] + (0..<5).flatMap { ["k\($0)", "v\($0)"] }  // 11 arguments
        let stranger = try RawConnection(port: node.port)
        #expect(try stranger.command("PING") == .error("NOAUTH Authentication required."))
        try stranger.send(RawConnection.encode(tenPairs.map { Array($0.utf8) }))
        #expect(try stranger.readRepliesUntilClosed() == ([.error("ERR Protocol error: unauthenticated multibulk length")], true))

        let bigArgument = try RawConnection(port: node.port)
        try bigArgument.send("*2\r\n$4\r\nAUTH\r\n$16385\r\n")
        #expect(try bigArgument.readRepliesUntilClosed() == ([.error("ERR Protocol error: unauthenticated bulk length")], true))

        let inline = try RawConnection(port: node.port)
        try inline.send(tenPairs.joined(separator: " ") + "\r\n")
        #expect(try inline.readRepliesUntilClosed() == ([.error("ERR Protocol error: unauthenticated multibulk length")], true))

        // Once authenticated, the same command is fine.
        let member = try RawConnection(port: node.port)
        #expect(try member.command("AUTH", "secret") == .simple("OK"))
        #expect(try member.command(tenPairs) == .simple("OK"))
        #expect(try member.command("GET", "k4") == .bulk(Array("v4".utf8)))
    }

    // MARK: careless clients

    @Test func clientsDisconnectingMidCommandLeaveTheServerHealthy() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let watcher = try RawConnection(port: node.port)
        for round in 0..<50 {
            let client = try RawConnection(port: node.port)
            // Half a bulk string: the SET must never run.
            try client.send("*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$100\r\n" + String(repeating: "x", count: 50))
            if round.isMultiple(of: 2) {
                client.resetOnClose()  // RST instead of FIN
            }
            client.close()
        }
        // A client that stops in the middle of a header line, and one that leaves with unread replies.
        let headerOnly = try RawConnection(port: node.port)
        try headerOnly.send("*2\r\n$3\r\nGE")
        headerOnly.close()
        let noReader = try RawConnection(port: node.port)
        try noReader.send(String(repeating: "*1\r\n$4\r\nPING\r\n", count: 10_000))
        noReader.resetOnClose()
        noReader.close()

        #expect(try watcher.command("PING") == .simple("PONG"))
        #expect(try watcher.command("EXISTS", "half") == .integer(0))
        let fresh = try RawConnection(port: node.port)
        #expect(try fresh.command("SET", "after", "ok") == .simple("OK"))
        #expect(try fresh.command("GET", "after") == .bulk(Array("ok".utf8)))
        #expect(node.process.isRunning)
    }

    @Test func hugePipelineGetsEveryReplyInOrder() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let client = try RawConnection(port: node.port)
        let count = 100_000
        var sets = [UInt8]()
        var gets = [UInt8]()
        var incrs = [UInt8]()
        for index in 0..<count {
            sets += RawConnection.encode([Array("SET".utf8), Array("key:\(index)".utf8), Array("value-\(index)".utf8)])
            gets += RawConnection.encode([Array("GET".utf8), Array("key:\(index)".utf8)])
            incrs += Array("INCR counter\r\n".utf8)
        }
        // Each batch goes out in one write from a second thread while this one reads, as a pipelining client would.
        let setReplies = try client.sendConcurrentlyAndRead(sets, replies: count)
        #expect(setReplies.count == count)
        #expect(setReplies.allSatisfy { $0 == .simple("OK") })

        let getReplies = try client.sendConcurrentlyAndRead(gets, replies: count)
        let expected = (0..<count).map { RESPReply.bulk(Array("value-\($0)".utf8)) }
        #expect(getReplies.count == count)
        let firstMismatch = getReplies.indices.first { getReplies[$0] != expected[$0] }
        #expect(firstMismatch == nil, "first out-of-order reply at \(firstMismatch ?? -1)")

        let incrReplies = try client.sendConcurrentlyAndRead(incrs, replies: count)
        #expect(incrReplies == (1...count).map { RESPReply.integer($0) })
        #expect(try client.command("DBSIZE") == .integer(count + 1))
    }

    @Test func repliesLargerThan64KiBArriveComplete() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let client = try RawConnection(port: node.port)
        // A 1 MiB value with a pattern that shows any lost, doubled or reordered chunk.
        let value = (0..<(1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        #expect(try client.command(Array("SET".utf8), Array("big".utf8), value) == .simple("OK"))
        #expect(try client.command("GET", "big") == .bulk(value))
        #expect(try client.command("GETRANGE", "big", "65536", "200000") == .bulk(Array(value[65536...200000])))

        // KEYS over 20,000 keys: about 330 KB of reply.
        let names = (0..<20_000).map { "robustness:key:\($0)" }
        for batch in stride(from: 0, to: names.count, by: 1000) {
            let pairs = names[batch..<batch + 1000].flatMap { [$0, "v"] }
            #expect(try client.command(["MSET"] + pairs) == .simple("OK"))
        }
        guard case .array(let keys)? = try client.command("KEYS", "robustness:*") else {
            Issue.record("KEYS did not answer with an array")
            return
        }
        #expect(keys.count == names.count)
        #expect(Set(keys) == Set(names.map { RESPReply.bulk(Array($0.utf8)) }))
        // And a big pipeline of big replies: 40 × 1 MiB without reading in between.
        try client.send(String(repeating: "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", count: 40))
        let replies = try client.readReplies(40)
        #expect(replies.count == 40 && replies.allSatisfy { $0 == .bulk(value) })
    }

    // MARK: many connections

    @Test func connectionsBeyondMaxclientsAreRefusedWithRedisError() throws {
        let node = try CacheNodeProcess(arguments: ["--maxclients", "3"])
        defer { node.stop() }
        let admitted = try (0..<3).map { _ in try RawConnection(port: node.port, receiveTimeout: 10) }
        for connection in admitted { #expect(try connection.command("PING") == .simple("PONG")) }
        // The fourth gets redis's error and is closed; the others keep working.
        let refused = try RawConnection(port: node.port, receiveTimeout: 10)
        let (replies, closed) = try refused.readRepliesUntilClosed()
        #expect(replies == [.error("ERR max number of clients reached")])
        #expect(closed)
        #expect(try admitted[0].command("PING") == .simple("PONG"))
        let stats = try admitted[0].command("INFO", "stats")
        guard case .bulk(let text)? = stats else { Issue.record("INFO reply: \(String(describing: stats))"); return }
        let info = String(decoding: text, as: UTF8.self)
        #expect(info.contains("rejected_connections:1\r\n"))
        let input = info.split(separator: "\r\n").first { $0.hasPrefix("total_net_input_bytes:") }
        #expect(input.flatMap { Int($0.split(separator: ":")[1]) }.map { $0 > 0 } == true)
        // Raising the limit at run time admits a new client.
        #expect(try admitted[0].command("CONFIG", "SET", "maxclients", "4") == .simple("OK"))
        admitted[2].close()
        let deadline = Date().addingTimeInterval(10)
        while try admitted[0].connectedClients() > 2 && Date() < deadline {}
        let later = try RawConnection(port: node.port, receiveTimeout: 10)
        #expect(try later.command("PING") == .simple("PONG"))
    }

    @Test func tenThousandIdleConnectionsStayOpenAndCloseCleanly() throws {
        let connections = 10_000
        // The test process holds one descriptor per client; the node inherits this limit (see the report).
        try RawConnection.raiseOpenFileLimit(to: connections + 500)
        // Above redis's default maxclients (10000), which the observer and newcomer would exceed.
        let node = try CacheNodeProcess(arguments: ["--maxclients", "20000"])
        defer { node.stop() }
        var idle: [RawConnection] = []
        idle.reserveCapacity(connections)
        for _ in 0..<connections {
            idle.append(try RawConnection(port: node.port, receiveTimeout: 10))
        }
        // The server has accepted them all: it reports them, and a new client is answered.
        let observer = try RawConnection(port: node.port, receiveTimeout: 10)
        let deadline = Date().addingTimeInterval(30)
        var connected = 0
        while Date() < deadline {
            connected = try observer.connectedClients()
            if connected >= connections + 1 { break }
        }
        #expect(connected == connections + 1)
        let newcomer = try RawConnection(port: node.port, receiveTimeout: 5)
        #expect(try newcomer.command("PING") == .simple("PONG"))
        // Every idle connection is still open and usable: a sample of them answers.
        for index in stride(from: 0, to: connections, by: 997) {
            #expect(try idle[index].command("PING") == .simple("PONG"), "connection \(index)")
        }
        for connection in idle { connection.close() }
        idle.removeAll()
        // The server notices every close.
        var remaining = Int.max
        let closeDeadline = Date().addingTimeInterval(30)
        while Date() < closeDeadline {
            remaining = try observer.connectedClients()
            if remaining <= 2 { break }
        }
        #expect(remaining == 2, "observer and newcomer remain")
        #expect(try newcomer.command("PING") == .simple("PONG"))
        #expect(node.process.isRunning)
    }
}

// MARK: - a raw RESP client over a POSIX socket

/// A RESP2 reply as it came off the wire.
enum RESPReply: Hashable, CustomStringConvertible {
    case simple(String)
    case error(String)
    case integer(Int)
    case bulk([UInt8])
    case null
    case array([RESPReply])

    var description: String {
        switch self {
        case .simple(let text): return "+\(text)"
        case .error(let text): return "-\(text)"
        case .integer(let value): return ":\(value)"
        case .bulk(let bytes): return bytes.count > 64 ? "$<\(bytes.count) bytes>" : "$\(String(decoding: bytes, as: UTF8.self))"
        case .null: return "(nil)"
        case .array(let items): return items.count > 8 ? "*<\(items.count) items>" : "\(items)"
        }
    }

    /// Parses one reply starting at `start`; returns it and the offset after it, or `nil` if incomplete.
    static func parse(_ bytes: [UInt8], at start: Int) throws -> (RESPReply, Int)? {
        guard start < bytes.count else { return nil }
        guard let lineEnd = lineEnd(bytes, from: start + 1) else { return nil }
        let line = String(decoding: bytes[(start + 1)..<lineEnd], as: UTF8.self)
        let next = lineEnd + 2
        switch bytes[start] {
        case UInt8(ascii: "+"): return (.simple(line), next)
        case UInt8(ascii: "-"): return (.error(line), next)
        case UInt8(ascii: ":"):
            guard let value = Int(line) else { throw HarnessError(description: "bad integer reply \(line)") }
            return (.integer(value), next)
        case UInt8(ascii: "$"):
            guard let length = Int(line) else { throw HarnessError(description: "bad bulk length \(line)") }
            if length < 0 { return (.null, next) }
            guard bytes.count >= next + length + 2 else { return nil }
            return (.bulk(Array(bytes[next..<next + length])), next + length + 2)
        case UInt8(ascii: "*"):
            guard let count = Int(line) else { throw HarnessError(description: "bad array length \(line)") }
            if count < 0 { return (.null, next) }
            var items: [RESPReply] = []
            items.reserveCapacity(count)
            var offset = next
            for _ in 0..<count {
                guard let (item, after) = try parse(bytes, at: offset) else { return nil }
                items.append(item)
                offset = after
            }
            return (.array(items), offset)
        default:
            throw HarnessError(description: "unexpected reply type byte \(bytes[start])")
        }
    }

    private static func lineEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        while index + 1 < bytes.count {
            if bytes[index] == 13 && bytes[index + 1] == 10 { return index }
            index += 1
        }
        return nil
    }
}

/// A blocking TCP connection to 127.0.0.1 with send and receive timeouts, so no test can hang.
final class RawConnection: @unchecked Sendable {
    private let socket: LoopbackSocket
    private var received: [UInt8] = []
    private var parsed = 0

    /// Connects (a `socket` error of EMFILE means RLIMIT_NOFILE needs raising: `raiseOpenFileLimit`).
    init(port: Int, receiveTimeout seconds: Int = 30) throws {
        socket = try LoopbackSocket(port: port, receiveTimeout: .seconds(seconds), sendTimeout: .seconds(seconds))
    }

    func close() { socket.close() }

    /// Makes the next `close()` send a reset instead of a FIN.
    func resetOnClose() { socket.resetOnClose() }

    /// Raises this process's soft limit on open files (children such as cache-node inherit it).
    static func raiseOpenFileLimit(to wanted: Int) throws {
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = Int32(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0 else { throw HarnessError(description: "getrlimit failed") }
        guard limit.rlim_cur < rlim_t(wanted) else { return }
        guard limit.rlim_max >= rlim_t(wanted) else {
            throw HarnessError(description: "RLIMIT_NOFILE hard limit \(limit.rlim_max) is below the \(wanted) this test needs")
        }
        limit.rlim_cur = rlim_t(wanted)
        guard setrlimit(resource, &limit) == 0 else { throw HarnessError(description: "setrlimit failed: errno \(errno)") }
    }

    static func encode(_ arguments: [[UInt8]]) -> [UInt8] {
        var bytes = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments {
            bytes += Array("$\(argument.count)\r\n".utf8)
            bytes += argument
            bytes += [13, 10]
        }
        return bytes
    }

    func send(_ text: String) throws { try socket.send(text) }

    func send(_ bytes: [UInt8]) throws { try socket.send(bytes) }

    /// Sends one command and returns its reply.
    func command(_ arguments: [[UInt8]]) throws -> RESPReply? {
        try send(Self.encode(arguments))
        return try readReplies(1).first
    }

    func command(_ arguments: String...) throws -> RESPReply? { try command(arguments.map { Array($0.utf8) }) }

    func command(_ arguments: [String]) throws -> RESPReply? { try command(arguments.map { Array($0.utf8) }) }

    func command(_ arguments: [UInt8]...) throws -> RESPReply? { try command(arguments) }

    /// Reads until `count` replies have arrived (throws on timeout or close).
    func readReplies(_ count: Int) throws -> [RESPReply] {
        var replies: [RESPReply] = []
        replies.reserveCapacity(count)
        while replies.count < count {
            if let (reply, next) = try RESPReply.parse(received, at: parsed) {
                replies.append(reply)
                parsed = next
                continue
            }
            guard try receiveMore() else {
                throw HarnessError(description: "connection closed after \(replies.count) of \(count) replies")
            }
        }
        compact()
        return replies
    }

    /// Reads every reply until the server closes the connection; `closed` is false on timeout.
    func readRepliesUntilClosed() throws -> ([RESPReply], closed: Bool) {
        var replies: [RESPReply] = []
        while true {
            if let (reply, next) = try RESPReply.parse(received, at: parsed) {
                replies.append(reply)
                parsed = next
                continue
            }
            do {
                guard try receiveMore() else { return (replies, true) }
            } catch {
                return (replies, false)
            }
        }
    }

    /// Writes `bytes` from another thread while reading `replies` replies here.
    func sendConcurrentlyAndRead(_ bytes: [UInt8], replies: Int) throws -> [RESPReply] {
        let writer = DispatchGroup()
        let failure = WriteFailure()
        DispatchQueue.global().async(group: writer) {
            do { try self.send(bytes) } catch { failure.set(error) }
        }
        let result = try readReplies(replies)
        writer.wait()
        if let error = failure.error { throw error }
        return result
    }

    /// `connected_clients` from INFO clients.
    func connectedClients() throws -> Int {
        guard case .bulk(let text)? = try command("INFO", "clients") else { throw HarnessError(description: "INFO failed") }
        let info = String(decoding: text, as: UTF8.self)
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("connected_clients:") }),
            let value = Int(line.dropFirst("connected_clients:".count))
        else { throw HarnessError(description: "no connected_clients in INFO: \(info)") }
        return value
    }

    /// Receives more bytes; `false` when the peer closed (or reset) the connection, throws on a receive timeout.
    private func receiveMore() throws -> Bool {
        do {
            let chunk = try socket.receive(maxBytes: 256 * 1024)
            received += chunk
            return !chunk.isEmpty
        } catch let error as LoopbackSocketError where error.code == ECONNRESET {
            return false
        }
    }

    private func compact() {
        if parsed == received.count {
            received.removeAll(keepingCapacity: true)
            parsed = 0
        }
    }
}

/// The error of a background write, handed back to the reading thread.
private final class WriteFailure: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: (any Error)?
    var error: (any Error)? { lock.withLock { stored } }
    func set(_ error: any Error) { lock.withLock { stored = error } }
}
