// The server family's configuration commands: CONFIG REWRITE writes a file that reads back as the configuration it
// was written from (unset settings, values with spaces, quotes and backslashes, redis.conf's per-class lines).
@testable import CacheNode
import CacheNodeTestSupport
import Foundation
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
        #expect(try client.send("CONFIG", "REWRITE") == .simple("OK"))

        let reread = try NodeConfiguration.parse(arguments: [file])
        let running = node.state.configuration
        for parameter in ["port", "save", "requirepass", "maxmemory", "client-output-buffer-limit", "replicaof",
                          "replication-port", "dir", "logfile", "node-identity", "bind"] {
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
    }

    @Test func configValuesAreQuotedOnlyWhenTheyMustBe() throws {
        for value in ["plain", "", "two words", #"quote""#, "it's", #"back\slash"#, "tab\there", "line\nbreak", "\u{01}"] {
            let line = "requirepass " + NodeConfiguration.quotedConfigValue(value)
            #expect(try NodeConfiguration.splitConfigLine(line) == ["requirepass", value], "\(line)")
        }
        #expect(NodeConfiguration.quotedConfigValue("plain") == "plain")
    }
}
