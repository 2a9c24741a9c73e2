// The server family: CONFIG REWRITE writes a file that reads back as the configuration it was written from (unset
// settings, values with spaces, quotes and backslashes, redis.conf's per-class lines); MONITOR's lines, in redis's
// format, for the commands that ran, without administrative commands or passwords; INFO commandstats.
@testable import CacheNode
import CacheNodeTestSupport
import Foundation
import NIOCore
import RESPServer
import Testing

struct ServerCommandsTests {
    @Test func configRewriteWritesAFileThatReadsBackAsTheRunningConfiguration() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rewrite-\(UInt64.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("node.conf").path
        try """
            # a node
            port 7000
            save 900 1 300 10
            requirepass "pa ss\\"wo\\\\rd"
            client-output-buffer-limit normal 0 0 0
            client-output-buffer-limit pubsub 16mb 4mb 30

            """.write(toFile: file, atomically: true, encoding: .utf8)
        let configuration = try NodeConfiguration.parse(arguments: [file])
        #expect(configuration.requirePass == #"pa ss"wo\rd"#)
        let node = TestNode(configuration: configuration)
        let client = try node.connect()
        #expect(try client.send("AUTH", #"pa ss"wo\rd"#) == .simple("OK"))
        #expect(try client.send("CONFIG", "SET", "maxmemory", "100mb") == .simple("OK"))
        #expect(try client.send("CONFIG", "SET", "client-output-buffer-limit", "replica 1gb 512mb 120") == .simple("OK"))
        #expect(try client.send("CONFIG", "SET", "hash-max-ziplist-entries", "256") == .simple("OK"))
        #expect(try client.send("CONFIG", "SET", "oom-score-adj-values", "0 100 900") == .simple("OK"))
        #expect(try client.send("CONFIG", "SET", "notify-keyspace-events", "Kx$") == .simple("OK"))
        #expect(try client.send("ACL", "SETUSER", "ops", "on", ">pw", "~*", "+@read") == .simple("OK"))
        #expect(try client.send("CONFIG", "REWRITE") == .simple("OK"))

        let reread = try NodeConfiguration.parse(arguments: [file])
        let running = node.state.configuration
        for parameter in ["port", "save", "requirepass", "maxmemory", "client-output-buffer-limit", "replicaof",
                          "replication-port", "dir", "logfile", "node-identity", "bind", "hash-max-listpack-entries", "oom-score-adj-values",
                          "pidfile", "notify-keyspace-events"] {
            guard case .array(let pair) = try client.send("CONFIG", "GET", parameter), pair.count == 2 else {
                Issue.record("CONFIG GET \(parameter)")
                continue
            }
            let rereadNode = TestNode(configuration: reread)
            let rereadClient = try rereadNode.connect()
            _ = try rereadClient.send("AUTH", #"pa ss"wo\rd"#)
            #expect(try rereadClient.send("CONFIG", "GET", parameter) == .array(pair), "\(parameter) did not read back")
        }
        #expect(reread.clientOutputBufferLimits == running.clientOutputBufferLimits)
        #expect(reread.clientOutputBufferLimits.replica == OutputLimit(hard: 1 << 30, soft: 512 << 20, softSeconds: 120))
        #expect(reread.maxMemory == 100 * 1024 * 1024)
        #expect(reread.replicaOf == nil)
        // Users are written as `user` lines and come back at start-up, the default user's password with them.
        #expect(reread.users.map { $0.first } == ["default", "ops"])
        let withUsers = TestNode(configuration: reread)
        try withUsers.state.loadUsersAtStartup()
        let ops = try withUsers.connect()
        #expect(try ops.send("AUTH", "ops", "pw") == .simple("OK"))
        #expect(try ops.send("SET", "k", "v").text?.hasPrefix("NOPERM") == true)
        #expect(try ops.send("AUTH", #"pa ss"wo\rd"#) == .simple("OK"))
    }

    // redis's introspection unit sets every parameter CONFIG GET lists to its own value; port and bind, which redis
    // changes live, are fixed at start-up here: their current value is accepted (nothing changes), another refused.
    @Test func settingAParameterFixedAtStartUpToItsValueIsANoOp() throws {
        let client = try TestNode().connect()
        let port = try #require(client.send("CONFIG", "GET", "port").strings?.last)
        #expect(try client.send("CONFIG", "SET", "port", port, "maxclients", "50") == .simple("OK"))
        #expect(try client.send("CONFIG", "GET", "maxclients").strings?.last == "50")
        #expect(try client.send("CONFIG", "SET", "port", String((Int(port) ?? 0) + 1)) == .error(
            "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config"))
        #expect(try client.send("CONFIG", "SET", "port", "x").isError)
        #expect(try client.send("CONFIG", "GET", "port").strings?.last == port)
        // Every parameter set to its own value, as redis's CONFIG sanity test does (it skips replicaof, a command).
        let all = try #require(client.send("CONFIG", "GET", "*").strings)
        for index in stride(from: 0, to: all.count - 1, by: 2) where !["replicaof", "slaveof"].contains(all[index]) {
            #expect(try client.send("CONFIG", "SET", all[index], all[index + 1]) == .simple("OK"), "\(all[index]) \(all[index + 1])")
        }
        #expect(try client.send("CONFIG", "GET", "*").strings == all)
    }

    // redis's introspection unit: a parameter named twice (also through an alias) is refused, and a failed CONFIG SET
    // changes nothing; maxmemory-clients takes a percentage of maxmemory.
    @Test func configSetRefusesDuplicatesAndRollsBackOnAnError() throws {
        let client = try TestNode().connect()
        #expect(try client.send("CONFIG", "SET", "maxmemory", "10000001", "maxmemory", "10000002") == .error(
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter"))
        #expect(try client.send("CONFIG", "SET", "replica-read-only", "yes", "slave-read-only", "no").text?.hasSuffix("duplicate parameter") == true)
        #expect(try client.send("CONFIG", "SET", "maxmemory", "10000002") == .simple("OK"))
        #expect(try client.send("CONFIG", "SET", "maxmemory", "10000001", "maxmemory-clients", "200%", "client-query-buffer-limit", "invalid") == .error(
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100"))
        #expect(try client.send("CONFIG", "GET", "maxmemory").strings?.last == "10000002")
        #expect(try client.send("CONFIG", "GET", "maxmemory-clients").strings?.last == "0")
        #expect(try client.send("CONFIG", "SET", "maxmemory-clients", "10%") == .simple("OK"))
        #expect(try client.send("CONFIG", "GET", "maxmemory-clients").strings?.last == "10%")
    }

    @Test func configValuesAreQuotedOnlyWhenTheyMustBe() throws {
        for value in ["plain", "", "two words", #"quote""#, "it's", #"back\slash"#, "tab\there", "line\nbreak", "\u{01}"] {
            let line = "requirepass " + NodeConfiguration.quotedConfigValue(value)
            #expect(try NodeConfiguration.splitConfigLine(line) == ["requirepass", value], "\(line)")
        }
        #expect(NodeConfiguration.quotedConfigValue("plain") == "plain")
    }

    @Test func monitorShowsEveryCommandThatRanInRedisFormat() throws {
        let node = TestNode()
        let monitor = try node.connect()
        let client = try node.connect()
        #expect(try monitor.send("MONITOR") == .simple("OK"))
        #expect(try client.send("SET", "k", "a b\"c\\\n\u{01}") == .simple("OK"))
        #expect(try client.send("SELECT", "2") == .simple("OK"))
        _ = try client.send("GET", "k")
        _ = try client.send("AUTH", "secret")  // fails (no password set) but ran: shown, redacted
        _ = try client.send("HELLO", "2", "AUTH", "default", "secret", "SETNAME", "n")
        _ = try client.send("CONFIG", "GET", "maxmemory")  // administrative: not shown
        _ = try client.send("NOSUCHCOMMAND")  // never ran: not shown
        _ = try client.send("MULTI")
        _ = try client.send("INCR", "n")
        _ = try client.send("EXEC")
        // A script shows itself first, then the commands it runs as `lua` (redis's order).
        _ = try client.send("EVAL", "return redis.call('set', KEYS[1], ARGV[1])", "1", "s", "v")
        // The manual clock's time, in microseconds; the database after the command; the client's address.
        let address = node.state.client(id: 2)?.connection.remoteAddress ?? "none"
        func line(_ database: Int, _ arguments: String, from client: String? = nil) -> RESPValue {
            .simple("1700000000.000000 [\(database) \(client ?? address)] \(arguments)")
        }
        let shown = try monitor.allReplies()
        #expect(shown == [
            line(0, #""SET" "k" "a b\"c\\\n\x01""#),
            line(2, #""SELECT" "2""#),
            line(2, #""GET" "k""#),
            line(2, #""AUTH" "(redacted)""#),
            line(2, #""HELLO" "2" "AUTH" "(redacted)" "(redacted)" "SETNAME" "n""#),
            line(2, #""MULTI""#),
            line(2, #""INCR" "n""#),
            line(2, #""EXEC""#),
            line(2, #""EVAL" "return redis.call('set', KEYS[1], ARGV[1])" "1" "s" "v""#),
            line(2, #""set" "s" "v""#, from: "lua"),
        ], "\(shown)")
        guard case .bulk(let list) = try client.send("CLIENT", "LIST") else {
            Issue.record("no CLIENT LIST")
            return
        }
        #expect(String(decoding: list, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("id=1 ") }?.contains(" flags=O ") == true)
    }

    @Test func resetOrClosingEndsMonitorModeAndMonitorIsRefusedInsideMulti() throws {
        let node = TestNode()
        let monitor = try node.connect()
        let client = try node.connect()
        #expect(try monitor.send("MULTI") == .simple("OK"))
        #expect(try monitor.send("MONITOR") == .error("ERR Command not allowed inside a transaction"))
        _ = try monitor.send("DISCARD")
        #expect(try monitor.send("MONITOR") == .simple("OK"))
        #expect(node.state.monitors.isActive)
        #expect(try monitor.send("RESET") == .simple("RESET"))
        #expect(!node.state.monitors.isActive)
        _ = try client.send("SET", "unseen", "1")
        #expect(try monitor.allReplies().isEmpty)
        #expect(try monitor.send("MONITOR") == .simple("OK"))
        try monitor.channel.close().wait()
        #expect(!node.state.monitors.isActive)
    }

    @Test func monitorQuotesArgumentsAsRedisSdscatreprDoes() {
        var line = ByteBuffer()
        let bytes: [UInt8] = Array("a\\\"\r\t".utf8) + [0x07, 0x08, 0x7F, 0xFF, 0x20, 0x7E]
        bytes.withUnsafeBytes { MonitorFeed.writeQuoted($0, into: &line) }
        #expect(String(buffer: line) == #""a\\\"\r\t\a\b\x7f\xff ~""#)
    }

    @Test func infoCommandstatsCountsCallsFailuresAndRejections() throws {
        let node = TestNode()
        let client = try node.connect()
        func commandstats() throws -> [String: String] {
            guard case .bulk(let text) = try client.send("INFO", "commandstats") else { return [:] }
            var lines: [String: String] = [:]
            for line in String(decoding: text, as: UTF8.self).split(separator: "\r\n") where line.hasPrefix("cmdstat_") {
                let parts = line.split(separator: ":", maxSplits: 1)
                lines[String(parts[0])] = String(parts[1])
            }
            return lines
        }
        try client.send("SET", "a", "1")
        try client.send("GET", "a")
        try client.send("GET", "b")
        #expect(try client.send("HGET", "a", "f") == .error("WRONGTYPE Operation against a key holding the wrong kind of value"))
        #expect(try client.send("GET") == .error("ERR wrong number of arguments for 'get' command"))
        try client.send("MULTI")
        try client.send("GET", "a")
        try client.send("EXEC")
        let stats = try commandstats()
        // The manual clock stands still: no time passes.
        #expect(stats["cmdstat_get"] == "calls=3,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0")
        #expect(stats["cmdstat_set"] == "calls=1,usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls=0")
        #expect(stats["cmdstat_hget"] == "calls=1,usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls=1")
        #expect(stats["cmdstat_exec"]?.hasPrefix("calls=1,") == true)
        #expect(stats["cmdstat_hset"] == nil)
        // INFO and INFO default leave the section out; INFO all and everything include it.
        for (arguments, included) in [(["INFO"], false), (["INFO", "default"], false), (["INFO", "all"], true), (["INFO", "everything"], true)] {
            guard case .bulk(let text) = try client.send(arguments: arguments.map { Array($0.utf8) }) else { continue }
            #expect(String(decoding: text, as: UTF8.self).contains("# Commandstats") == included, "\(arguments)")
        }
        try client.send("CONFIG", "RESETSTAT")
        #expect(try commandstats().keys.sorted() == ["cmdstat_config"])
    }

    @Test func memoryHelpListsItsSubcommands() throws {
        let node = TestNode()
        let client = try node.connect()
        guard case .array(let lines) = try client.send("MEMORY", "HELP") else {
            Issue.record("MEMORY HELP did not answer with an array")
            return
        }
        #expect(lines.first == .simple("MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"))
        #expect(lines.contains(.simple("USAGE <key> [SAMPLES <count>]")))
    }
}
