// TunnelTests: end to end through `tunnel connect` → secure channel → `tunnel listen` → redis-server, with
// redis-cli as the client and a redis-server replica replicating through the tunnel. Needs redis-server and
// redis-cli on PATH (apt-get install redis-server redis-tools).
import ArgumentParser
import Foundation
import Logging
import LoopbackTestSupport
import NIOCore
import NIOPosix
import ReplicationSec
import Testing
@testable import cachectl

@Suite(.serialized)
struct TunnelTests {
    @Test func hostPortParsing() throws {
        #expect(try HostPort(parsing: "127.0.0.1:6379") == HostPort(parsing: "127.0.0.1:6379"))
        #expect(try HostPort(parsing: "::1:7000").host == "::1")
        #expect(throws: (any Error).self) { try HostPort(parsing: "localhost") }
        #expect(throws: (any Error).self) { try HostPort(parsing: ":80") }
        #expect(throws: (any Error).self) {
            _ = try Cachectl.parseAsRoot(["tunnel", "listen", "--listen", "nope", "--target", "127.0.0.1:1", "--identity", "i", "--authority", "a"])
        }
    }

    @Test func redisCliAndReplicationThroughTheTunnel() async throws {
        let directory = try TemporaryDirectory()
        try await CLI.run(["identity", "init", "--directory", directory.path])
        for node in ["edge", "origin"] {
            try await CLI.run([
                "identity", "issue", "--authority-key", directory.file("authority.key"), "--node-id", node,
                "--role", "cache-node", "--out", directory.file("\(node).identity"),
            ])
        }
        func options(_ node: String, peer: String) throws -> SecureChannelConfiguration {
            let parsed = try SecureChannelOptions.parse([
                "--identity", directory.file("\(node).identity"), "--authority", directory.file("authority.pub"),
                "--peer-node-id", peer, "--peer-role", "cache-node",
            ])
            return try parsed.configuration(logger: Logger(label: "tunnel-test"))
        }

        let master = try await RedisProcess.start(directory: directory.path, extra: [])
        defer { master.stop() }
        let masterPort = master.port

        let logger = Logger(label: "tunnel-test")
        let secureChannel = try await Tunnel.listenSecure(
            host: "127.0.0.1", port: 0, target: HostPort(parsing: "127.0.0.1:\(masterPort)"),
            configuration: options("origin", peer: "edge"), logger: logger)
        let securePort = try #require(secureChannel.localAddress?.port)
        let plainChannel = try await Tunnel.listenPlain(
            host: "127.0.0.1", port: 0, remote: HostPort(parsing: "127.0.0.1:\(securePort)"),
            configuration: options("edge", peer: "origin"), logger: logger)
        let tunnelPort = try #require(plainChannel.localAddress?.port)

        do {

            // redis-cli through the tunnel.
            #expect(try await redisCLI(port: tunnelPort, ["PING"]) == "PONG")
            #expect(try await redisCLI(port: tunnelPort, ["SET", "greeting", "hello through the tunnel"]) == "OK")
            #expect(try await redisCLI(port: tunnelPort, ["GET", "greeting"]) == "hello through the tunnel")
            #expect(try await redisCLI(port: masterPort, ["GET", "greeting"]) == "hello through the tunnel")
            let big = String(repeating: "v", count: 100_000)
            #expect(try await redisCLI(port: tunnelPort, ["SET", "big", big]) == "OK")
            #expect(try await redisCLI(port: tunnelPort, ["STRLEN", "big"]) == "100000")

            // A replica whose replication link runs through the tunnel.
            let replica = try await RedisProcess.start(directory: directory.path, extra: ["--replicaof", "127.0.0.1", "\(tunnelPort)"])
            defer { replica.stop() }
            let replicaPort = replica.port
            let linked = try await poll { try await redisCLI(port: replicaPort, ["INFO", "replication"]).contains("master_link_status:up") }
            #expect(linked, "replica never reached master_link_status:up through the tunnel")
            #expect(try await redisCLI(port: masterPort, ["SET", "replicated", "yes"]) == "OK")
            let replicated = try await poll { try await redisCLI(port: replicaPort, ["GET", "replicated"]) == "yes" }
            #expect(replicated)
            #expect(try await redisCLI(port: replicaPort, ["GET", "greeting"]) == "hello through the tunnel")

            // A client that sends a pipeline of 10,000 commands at once (the tunnel holds back reading while the
            // other side is not writable) gets every reply, in order.
            let pipelined = try await pipelinedReplies(port: tunnelPort, count: 10_000)
            #expect(pipelined == (0..<10_000).map { ":\($0 + 1)" }, "INCR replies through the tunnel")

            replica.stop()
            master.stop()
        }
        try await secureChannel.close()
        try await plainChannel.close()
    }

    @Test func tunnelRefusesAPeerWithTheWrongNodeID() async throws {
        let directory = try TemporaryDirectory()
        try await CLI.run(["identity", "init", "--directory", directory.path])
        for node in ["edge", "origin"] {
            try await CLI.run([
                "identity", "issue", "--authority-key", directory.file("authority.key"), "--node-id", node,
                "--role", "cache-node", "--out", directory.file("\(node).identity"),
            ])
        }
        let origin = try SecureChannelOptions.parse([
            "--identity", directory.file("origin.identity"), "--authority", directory.file("authority.pub"),
            "--peer-node-id", "someone-else",
        ]).configuration(logger: Logger(label: "tunnel-test"))
        let edge = try SecureChannelOptions.parse([
            "--identity", directory.file("edge.identity"), "--authority", directory.file("authority.pub"),
        ]).configuration(logger: Logger(label: "tunnel-test"))
        let listener = try await SecureChannel.bind(host: "127.0.0.1", port: 0, configuration: origin)
        let port = try #require(listener.channel.localAddress?.port)
        await #expect(throws: (any Error).self) {
            let (channel, _) = try await SecureChannel.connect(host: "127.0.0.1", port: port, configuration: edge)
            // The client may finish its side first; the server's rejection then closes the channel.
            try await channel.executeThenClose { input, _ in
                for try await _ in input {}
            }
        }
        try await listener.channel.close()
    }
}

// MARK: helpers

/// Runs redis-cli on a thread-pool thread (never blocking the concurrency pool) and returns its trimmed output.
func redisCLI(port: Int, _ arguments: [String]) async throws -> String {
    try await NIOThreadPool.singleton.runIfActive { try blockingRedisCLI(port: port, arguments) }
}

func blockingRedisCLI(port: Int, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["redis-cli", "-h", "127.0.0.1", "-p", "\(port)"] + arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Sends `count` `INCR pipelined` commands in one write and returns the `count` reply lines, in order.
func pipelinedReplies(port: Int, count: Int) async throws -> [String] {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
    return try await channel.executeThenClose { inbound, outbound in
        try await outbound.write(ByteBuffer(string: String(repeating: "*2\r\n$4\r\nINCR\r\n$9\r\npipelined\r\n", count: count)))
        var text = ""
        var lines: [String] = []
        for try await chunk in inbound {
            text += String(buffer: chunk)
            while let end = text.range(of: "\r\n") {
                lines.append(String(text[..<end.lowerBound]))
                text.removeSubrange(..<end.upperBound)
            }
            if lines.count >= count { break }
        }
        return lines
    }
}

/// Polls `condition` until true or 60 s pass (waiting on external processes, not on our own timers).
func poll(_ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(100))
    }
    return false
}

/// Why a test's redis-server could not be started.
struct RedisProcessError: Error, CustomStringConvertible {
    let description: String
}

/// A redis-server child process on a loopback port with persistence off.
final class RedisProcess: Sendable {
    let port: Int
    private let process: Process

    init(port: Int, directory: String, extra: [String]) throws {
        self.port = port
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["redis-server", "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", directory, "--dbfilename", "dump-\(port).rdb", "--repl-diskless-sync", "yes",
                             "--repl-diskless-sync-delay", "0"] + extra
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
    }

    /// Starts redis-server on a free port and waits until it answers PING. Other suites pick free ports the same way
    /// at the same time, so the port can be taken before redis-server binds it; the server then exits, and another
    /// port is tried (three in all).
    static func start(directory: String, extra: [String]) async throws -> RedisProcess {
        var failures: [String] = []
        for _ in 0..<3 {
            let server = try RedisProcess(port: try LoopbackSocket.freeLoopbackPort(), directory: directory, extra: extra)
            let settled = try await poll {
                if !server.process.isRunning { return true }
                return try await redisCLI(port: server.port, ["PING"]) == "PONG"
            }
            if settled && server.process.isRunning { return server }
            failures.append(
                server.process.isRunning
                    ? "port \(server.port): no PONG within 60 s"
                    : "port \(server.port): redis-server exited with status \(server.process.terminationStatus)")
            server.stop()
        }
        throw RedisProcessError(description: "redis-server did not start: \(failures.joined(separator: "; "))")
    }

    /// Stops the server: SHUTDOWN NOSAVE, then SIGKILL if it is still running (a signal mask inherited from the
    /// test process can block SIGTERM).
    func stop() {
        guard process.isRunning else { return }
        _ = try? blockingRedisCLI(port: port, ["SHUTDOWN", "NOSAVE"])
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
