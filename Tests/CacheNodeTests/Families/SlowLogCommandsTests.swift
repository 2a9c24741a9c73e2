// SLOWLOG, ported from redis 7.2's unit/slowlog.tcl: the threshold (DEBUG SLEEP moves the manual clock, so a
// command "runs" for exactly as long as it says without the test waiting), the length limit, GET's count, RESET,
// trimmed and redacted arguments, EXEC's commands logged instead of EXEC, blocking commands logged once served.
@testable import CacheNode
import CacheNodeTestSupport
import Testing

struct SlowLogCommandsTests {
    /// SLOWLOG GET's entries, newest first: (id, unix seconds, microseconds, arguments, address, name).
    private func entries(_ client: TestClient, _ count: String? = nil) throws -> [(id: Int, time: Int, micros: Int, arguments: [String], address: String, name: String)] {
        let reply = try count.map { try client.send("SLOWLOG", "GET", $0) } ?? client.send("SLOWLOG", "GET")
        guard let list = reply.elements else {
            Issue.record("SLOWLOG GET replied \(reply)")
            return []
        }
        return list.compactMap { entry in
            guard let fields = entry.elements, fields.count == 6, case .integer(let id) = fields[0],
                  case .integer(let time) = fields[1], case .integer(let micros) = fields[2],
                  let arguments = fields[3].strings, let address = fields[4].text, let name = fields[5].text else {
                Issue.record("malformed entry \(entry)")
                return nil
            }
            return (id, time, micros, arguments, address, name)
        }
    }

    @Test func onlyCommandsReachingTheThresholdAreLoggedWithTheirTimeAndClient() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("SLOWLOG", "LEN") == .integer(0))
        #expect(try client.send("CONFIG", "SET", "slowlog-log-slower-than", "100000") == .simple("OK"))
        #expect(try client.send("PING") == .simple("PONG"))
        #expect(try client.send("DEBUG", "SLEEP", "0.099") == .simple("OK"))
        #expect(try client.send("SLOWLOG", "LEN") == .integer(0))
        #expect(try client.send("CLIENT", "SETNAME", "foobar") == .simple("OK"))
        #expect(try client.send("DEBUG", "SLEEP", "0.2") == .simple("OK"))
        #expect(try client.send("SLOWLOG", "LEN") == .integer(1))
        let logged = try entries(client)
        #expect(logged.count == 1)
        guard let entry = logged.first else { return }
        #expect(entry.id == 0)
        #expect(entry.arguments == ["DEBUG", "SLEEP", "0.2"])
        #expect(entry.micros >= 200_000 && entry.micros < 300_000)
        #expect(entry.time == Int(node.clock.nowMilliseconds() / 1000))
        #expect(entry.name == "foobar")
        let info = try #require(client.send("CLIENT", "INFO").text)
        #expect(info.contains("addr=\(entry.address) "), "\(info) does not name \(entry.address)")
    }

    @Test func theLogKeepsTheNewestEntriesUpToItsLengthAndGetTakesACount() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("CONFIG", "SET", "slowlog-log-slower-than", "0") == .simple("OK"))
        #expect(try client.send("CONFIG", "SET", "slowlog-max-len", "10") == .simple("OK"))
        for index in 0..<100 { _ = try client.send("ECHO", "\(index)") }
        #expect(try client.send("SLOWLOG", "LEN") == .integer(10))
        #expect(try entries(client, "5").count == 5)
        #expect(try entries(client, "-1").count == 10)
        #expect(try entries(client, "20").count == 10)
        #expect(try entries(client, "0").isEmpty)
        // Newest first; ids count every logged command (the two CONFIG SETs were 0 and 1, the last ECHO 101).
        let all = try entries(client, "-1")
        #expect(all.first?.arguments.first == "SLOWLOG")
        #expect(all.map(\.id) == Array((all.last!.id...all.first!.id).reversed()))
        #expect(all.contains { $0.arguments == ["ECHO", "99"] && $0.id == 101 })
        // The default count is 10; a shorter maximum drops the oldest.
        #expect(try entries(client).count == 10)
        #expect(try client.send("CONFIG", "SET", "slowlog-max-len", "3") == .simple("OK"))
        #expect(try client.send("SLOWLOG", "LEN") == .integer(3))
        for bad in ["-2", "-222", "x"] {
            #expect(try client.send("SLOWLOG", "GET", bad) == .error("ERR count should be greater than or equal to -1"))
        }
        #expect(try client.send("SLOWLOG", "LEN", "x") == .error("ERR wrong number of arguments for 'slowlog|len' command"))
        #expect(try client.send("SLOWLOG", "NOPE").isError)
        #expect(try client.send("SLOWLOG", "RESET") == .simple("OK"))
        // RESET itself is logged after it cleared the log; ids go on counting.
        let afterReset = try entries(client)
        #expect(afterReset.map(\.arguments) == [["SLOWLOG", "RESET"]])
        #expect((afterReset.first?.id ?? 0) > 101)
    }

    @Test func aNegativeThresholdTurnsTheLogOff() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("CONFIG", "SET", "slowlog-log-slower-than", "1") == .simple("OK"))
        #expect(try client.send("DEBUG", "SLEEP", "0.2") == .simple("OK"))
        #expect(try client.send("SLOWLOG", "LEN") == .integer(1))
        #expect(try client.send("CONFIG", "SET", "slowlog-log-slower-than", "-1") == .simple("OK"))
        #expect(try client.send("SLOWLOG", "RESET") == .simple("OK"))
        #expect(try client.send("DEBUG", "SLEEP", "0.2") == .simple("OK"))
        #expect(try client.send("SLOWLOG", "LEN") == .integer(0))
        #expect(try client.send("CONFIG", "GET", "slowlog-log-slower-than") == .array([.string("slowlog-log-slower-than"), .string("-1")]))
    }

    @Test func longCommandsAreTrimmedAndPasswordsRedacted() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("CONFIG", "SET", "slowlog-log-slower-than", "0") == .simple("OK"))
        _ = try client.send(arguments: [Array("SADD".utf8), Array("set".utf8)] + (3...33).map { Array(String($0).utf8) })
        #expect(try entries(client, "1").first?.arguments == ["SADD", "set"] + (3...31).map(String.init) + ["... (2 more arguments)"])
        _ = try client.send("SADD", "set", "foo", String(repeating: "A", count: 129))
        #expect(try entries(client, "1").first?.arguments == ["SADD", "set", "foo", String(repeating: "A", count: 128) + "... (1 more bytes)"])
        _ = try client.send("SADD", "set", String(repeating: "B", count: 128))
        #expect(try entries(client, "1").first?.arguments == ["SADD", "set", String(repeating: "B", count: 128)])

        #expect(try client.send("CONFIG", "SET", "requirepass", "secret") == .simple("OK"))
        #expect(try client.send("AUTH", "secret") == .simple("OK"))
        #expect(try client.send("AUTH", "default", "secret") == .simple("OK"))
        #expect(try client.send("HELLO", "2", "AUTH", "default", "secret", "SETNAME", "me").elements != nil)
        #expect(try client.send("CONFIG", "SET", "maxclients", "100", "requirepass", "") == .simple("OK"))
        let logged = try entries(client, "5").map(\.arguments)
        #expect(logged == [
            ["CONFIG", "SET", "maxclients", "100", "requirepass", "(redacted)"],
            ["HELLO", "2", "AUTH", "(redacted)", "(redacted)", "SETNAME", "me"],
            ["AUTH", "(redacted)", "(redacted)"],
            ["AUTH", "(redacted)"],
            ["CONFIG", "SET", "requirepass", "(redacted)"],
        ])
    }

    @Test func execIsNotLoggedButTheCommandsItRanAre() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("CONFIG", "SET", "slowlog-log-slower-than", "100000") == .simple("OK"))
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("DEBUG", "SLEEP", "0.2") == .simple("QUEUED"))
        #expect(try client.send("SET", "k", "v") == .simple("QUEUED"))
        #expect(try client.send("EXEC") == .array([.simple("OK"), .simple("OK")]))
        #expect(try entries(client).map(\.arguments) == [["DEBUG", "SLEEP", "0.2"]])
        // With every command logged, EXEC's commands are, and EXEC is not.
        #expect(try client.send("CONFIG", "SET", "slowlog-log-slower-than", "0") == .simple("OK"))
        #expect(try client.send("SLOWLOG", "RESET") == .simple("OK"))
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("INCR", "n") == .simple("QUEUED"))
        #expect(try client.send("GET", "n") == .simple("QUEUED"))
        #expect(try client.send("EXEC") == .array([.integer(1), .string("1")]))
        #expect(try entries(client).map(\.arguments) == [["GET", "n"], ["INCR", "n"], ["MULTI"], ["SLOWLOG", "RESET"]])
        // DEBUG's digests run inside EXEC under the locks it holds; RELOAD is refused there.
        #expect(try client.send("MULTI") == .simple("OK"))
        #expect(try client.send("DEBUG", "DIGEST-VALUE", "n") == .simple("QUEUED"))
        #expect(try client.send("DEBUG", "RELOAD") == .simple("QUEUED"))
        let replies = try #require(client.send("EXEC").elements)
        #expect(replies.count == 2)
        #expect(replies.last == .error("ERR DEBUG RELOAD is not allowed inside a transaction"))
        #expect(try replies.first == client.send("DEBUG", "DIGEST-VALUE", "n"))
    }

    @Test func aBlockingCommandIsLoggedOnlyOnceServed() throws {
        let node = TestNode()
        let client = try node.connect()
        let blocked = try node.connect()
        #expect(try client.send("CONFIG", "SET", "slowlog-log-slower-than", "0") == .simple("OK"))
        #expect(try client.send("SLOWLOG", "RESET") == .simple("OK"))
        try blocked.write("BLPOP", "mylist", "0")
        #expect(try blocked.nextReply() == nil)
        #expect(try client.blockedClients() == 1)
        #expect(try !entries(client, "-1").contains { $0.arguments.first == "BLPOP" })
        #expect(try client.send("LPUSH", "mylist", "1") == .integer(1))
        #expect(try blocked.nextReply() == .array([.string("mylist"), .string("1")]))
        #expect(try entries(client, "-1").filter { $0.arguments == ["BLPOP", "mylist", "0"] }.count == 1)
    }

    @Test func commandsAreLoggedAsTheClientSentThemNotAsReplicated() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("SADD", "set", "a", "b", "c", "d", "e") == .integer(5))
        #expect(try client.send("CONFIG", "SET", "slowlog-log-slower-than", "0") == .simple("OK"))
        _ = try client.send("SPOP", "set", "10")
        _ = try client.send("GEOADD", "cool-cities", "-122.33207", "47.60621", "Seattle")
        _ = try client.send("GETSET", "a", "5")
        _ = try client.send("INCRBYFLOAT", "A", "1.0")
        #expect(try entries(client, "4").map(\.arguments) == [
            ["INCRBYFLOAT", "A", "1.0"], ["GETSET", "a", "5"], ["GEOADD", "cool-cities", "-122.33207", "47.60621", "Seattle"],
            ["SPOP", "set", "10"],
        ])
    }
}
