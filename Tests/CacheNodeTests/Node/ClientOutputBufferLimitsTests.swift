// client-output-buffer-limit: parsing and CONFIG SET/GET of the three classes, the soft limit's timing, and which
// class the dispatcher applies to a client, on the node's manual clock. The real process closing a client that does
// not read is in IntegrationTests/RobustnessTests.
import CacheNode
import CacheNodeTestSupport
import Foundation
import Synchronization
import Testing

struct ClientOutputBufferLimitsTests {
    @Test func defaultsAreRedisAndConfigGetShowsThemAsRedisDoes() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("CONFIG", "GET", "client-output-buffer-limit") == .array([
            .bulk(Array("client-output-buffer-limit".utf8)),
            .bulk(Array("normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60".utf8)),
        ]))
    }

    @Test func configSetChangesOnlyTheClassesItNames() throws {
        let node = TestNode()
        let client = try node.connect()
        #expect(try client.send("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 512kb 10") == .simple("OK"))
        #expect(node.state.outputBufferLimits.pubsub == OutputLimit(hard: 1 << 20, soft: 512 << 10, softSeconds: 10))
        #expect(node.state.outputBufferLimits.replica == OutputLimit(hard: 256 << 20, soft: 64 << 20, softSeconds: 60))
        #expect(try client.send("CONFIG", "SET", "client-output-buffer-limit", "NORMAL 100 50 2 replica 4k 2k 1") == .simple("OK"))
        #expect(node.state.outputBufferLimits.description == "normal 100 50 2 slave 4000 2000 1 pubsub 1048576 524288 10")
    }

    @Test func redisConfLinesAndFlagsSetOneClassEach() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("obl-\(UInt64.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("redis.conf").path
        // As redis.conf ships them: one class per line.
        try """
            client-output-buffer-limit normal 0 0 0
            client-output-buffer-limit replica 300mb 70mb 70
            client-output-buffer-limit pubsub 16mb 4mb 30

            """.write(toFile: file, atomically: true, encoding: .utf8)
        let fromFile = try NodeConfiguration.parse(arguments: [file])
        #expect(fromFile.clientOutputBufferLimits.description
            == "normal 0 0 0 slave 314572800 73400320 70 pubsub 16777216 4194304 30")
        // A flag after the file changes its class only, whether given as one value or as words.
        let withFlags = try NodeConfiguration.parse(arguments: [file, "--client-output-buffer-limit", "normal", "1mb", "0", "0"])
        #expect(withFlags.clientOutputBufferLimits.description
            == "normal 1048576 0 0 slave 314572800 73400320 70 pubsub 16777216 4194304 30")
        #expect(try NodeConfiguration.parse(arguments: ["--client-output-buffer-limit", "pubsub 1mb 0 0"])
            .clientOutputBufferLimits.pubsub == OutputLimit(hard: 1 << 20, soft: 0, softSeconds: 0))
        #expect(throws: ConfigurationError.self) { try NodeConfiguration.parse(arguments: ["--client-output-buffer-limit", "pubsub 1mb"]) }
    }

    @Test(arguments: [
        ("pubsub 1mb 1mb", "Wrong number of arguments in buffer limit configuration."),
        ("pubsub lots 1mb 60", "Error in hard, soft or soft_seconds setting in buffer limit configuration."),
        ("pubsub 1mb 1mb -1", "Error in hard, soft or soft_seconds setting in buffer limit configuration."),
        ("master 1mb 1mb 60", "Invalid client class specified in buffer limit configuration."),
        ("normal 1 1 1 master 1mb 1mb 60", "Invalid client class specified in buffer limit configuration."),
    ])
    func invalidValuesAreRefusedAndChangeNothing(value: String, message: String) throws {
        let node = TestNode()
        let client = try node.connect()
        guard case .error(let error) = try client.send("CONFIG", "SET", "client-output-buffer-limit", value) else {
            Issue.record("CONFIG SET client-output-buffer-limit '\(value)' was accepted")
            return
        }
        #expect(error.contains("client-output-buffer-limit") && error.hasSuffix(message))
        #expect(node.state.outputBufferLimits == ClientOutputBufferLimits())
    }

    @Test func theSoftLimitClosesAfterItsSecondsAndAReadingUnderItStartsOver() {
        let limit = OutputLimit(hard: 1000, soft: 100, softSeconds: 2)
        var since: Int64? = nil
        #expect(!limit.exceeded(bytes: 50, since: &since, now: 0))
        #expect(!limit.exceeded(bytes: 150, since: &since, now: 10))
        #expect(since == 10)
        #expect(!limit.exceeded(bytes: 150, since: &since, now: 1500))
        #expect(limit.exceeded(bytes: 150, since: &since, now: 2010))
        #expect(limit.exceeded(bytes: 1000, since: &since, now: 0))
        var reset: Int64? = 5
        #expect(!limit.exceeded(bytes: 10, since: &reset, now: 100))
        #expect(reset == nil)
        // No limit at all.
        var none: Int64? = nil
        #expect(!OutputLimit.none.exceeded(bytes: .max, since: &none, now: 0))
    }

    @Test func normalClientsHaveNoLimitUntilOneIsSetAndSubscribersGetThePubSubClass() throws {
        let node = TestNode()
        let dispatcher = NodeDispatcher(node: node.state)
        let normal = try node.connect()
        let subscriber = try node.connect()
        guard case .integer(let normalID) = try normal.send("CLIENT", "ID"),
            case .integer(let subscriberID) = try subscriber.send("CLIENT", "ID"),
            let normalSession = node.state.client(id: normalID), let subscriberSession = node.state.client(id: subscriberID)
        else {
            Issue.record("no sessions")
            return
        }
        _ = try subscriber.send("SUBSCRIBE", "news")
        // Defaults: normal clients unlimited; subscribers closed at 32 MB, or 8 MB held for 60 s.
        #expect(!dispatcher.outputBufferChanged(normalSession, bufferedBytes: 1 << 30))
        #expect(!dispatcher.outputBufferChanged(subscriberSession, bufferedBytes: 9 << 20))
        node.advance(milliseconds: 59_000)
        #expect(!dispatcher.outputBufferChanged(subscriberSession, bufferedBytes: 9 << 20))
        node.advance(milliseconds: 1_000)
        #expect(dispatcher.outputBufferChanged(subscriberSession, bufferedBytes: 9 << 20))
        #expect(dispatcher.outputBufferChanged(subscriberSession, bufferedBytes: 32 << 20))
        #expect(node.state.outputBufferLimitDisconnections.load(ordering: .relaxed) == 2)

        try node.state.updateConfiguration { (configuration: inout NodeConfiguration) throws(ConfigurationError) in
            try configuration.clientOutputBufferLimits.apply("normal 1000 0 0")
        }
        #expect(!dispatcher.outputBufferChanged(normalSession, bufferedBytes: 999))
        #expect(dispatcher.outputBufferChanged(normalSession, bufferedBytes: 1000))
        // CLIENT LIST shows what was last seen.
        guard case .bulk(let list) = try normal.send("CLIENT", "LIST") else {
            Issue.record("no CLIENT LIST")
            return
        }
        let line = String(decoding: list, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("id=\(normalID) ") }
        #expect(line?.contains(" omem=1000 ") == true)
        // INFO counts the disconnections; CONFIG RESETSTAT clears them.
        guard case .bulk(let stats) = try normal.send("INFO", "stats") else {
            Issue.record("no INFO")
            return
        }
        #expect(String(decoding: stats, as: UTF8.self).contains("client_output_buffer_limit_disconnections:3\r\n"))
        _ = try normal.send("CONFIG", "RESETSTAT")
        #expect(node.state.outputBufferLimitDisconnections.load(ordering: .relaxed) == 0)
    }
}
