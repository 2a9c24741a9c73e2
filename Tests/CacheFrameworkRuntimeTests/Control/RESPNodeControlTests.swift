// RESPNodeControl against real redis-server processes: PING, REPLICAOF host port / NO ONE, INFO replication parsing,
// error replies, and an unreachable node.

import CacheFramework
import CacheFrameworkRuntime
import Foundation
import Testing

@Suite(.serialized)
struct RESPNodeControlTests {
    let control = RESPNodeControl(timeout: .seconds(1))

    /// Starts redis-server on a free port in `directory`; returns its endpoint and pid.
    func startRedis(_ directory: String, name: String) async throws -> (TaskEndpoint, Int32) {
        for _ in 0..<5 {
            let port = UInt64.random(in: 29_000..<32_000)
            guard LocalProcess.isPortFree(port) else { continue }
            let sandbox = directory + "/" + name
            try FileManager.default.createDirectory(atPath: sandbox, withIntermediateDirectories: true)
            let pid = try LocalProcess.spawn(
                executable: "/usr/bin/redis-server", arguments: ["--port", "\(port)", "--bind", "127.0.0.1", "--save", ""],
                environment: [:], directory: sandbox)
            let endpoint = TaskEndpoint(taskID: TaskID(name), hostname: "127.0.0.1", port: port)
            for _ in 0..<200 {
                if await control.ping(endpoint) { return (endpoint, pid) }
                if LocalProcess.reap(pid) != nil { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            LocalProcess.signalGroup(pid, SIGKILL)
            _ = LocalProcess.reap(pid)
        }
        throw FixtureError(description: "redis-server did not start")
    }

    func stop(_ pid: Int32) {
        LocalProcess.signalGroup(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    @Test func pingReplicaOfAndInfoReplication() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (primary, primaryPID) = try await startRedis(directory, name: "primary")
        defer { stop(primaryPID) }
        let (replica, replicaPID) = try await startRedis(directory, name: "replica")
        defer { stop(replicaPID) }

        #expect(await control.ping(primary))
        #expect(try await control.replicationInfo(primary).role == "master")
        try await control.replicaOf(replica, primary: primary)
        try await FrameworkFixture.waitUntil("the replica's link is up") {
            (try? await control.replicationInfo(replica))?.linkUp == true
        }
        let info = try await control.replicationInfo(replica)
        #expect(info.role == "slave")
        #expect(info.primary == "127.0.0.1:\(primary.port)")
        #expect(try await control.command(["SET", "a", "1"], to: primary) == .simple("OK"))
        try await FrameworkFixture.waitUntil("the replica has the key") {
            try await control.command(["GET", "a"], to: replica) == .bulk("1")
        }
        #expect(try await control.replicationInfo(replica).offset > 0)

        try await control.replicaOf(replica, primary: nil)
        #expect(try await control.replicationInfo(replica).role == "master")

        #expect(try await control.command(["NOSUCHCOMMAND"], to: primary) == .error("ERR unknown command 'NOSUCHCOMMAND', with args beginning with: "))
        #expect(try await control.command(["MGET", "a", "b"], to: primary) == .array([.bulk("1"), .bulk(nil)]))
    }

    @Test func unreachableNodeIsATypedError() async throws {
        var port: UInt64 = 0
        repeat { port = UInt64.random(in: 29_000..<32_000) } while !LocalProcess.isPortFree(port)
        let endpoint = TaskEndpoint(taskID: TaskID("gone"), hostname: "127.0.0.1", port: port)
        #expect(await control.ping(endpoint) == false)
        await #expect(throws: NodeControlError.self) { try await control.replicaOf(endpoint, primary: nil) }
    }

    @Test func parsesInfoReplication() {
        let text = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7000\r\nmaster_link_status:up\r\nslave_repl_offset:42\r\nmaster_repl_offset:42\r\n"
        let info = RESPNodeControl.parseReplicationInfo(text)
        #expect(info == ReplicationInfo(role: "slave", offset: 42, primary: "127.0.0.1:7000", linkUp: true))
    }
}
