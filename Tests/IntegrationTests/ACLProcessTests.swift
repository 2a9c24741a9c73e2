// ACL users against the real cache-node binary: users saved with ACL SAVE to the `aclfile` come back after a
// restart, `user` directives in a config file define users at start-up, and a bad ACL file stops the start.
import Foundation
import Testing

@Suite(.serialized)
struct ACLProcessTests {
    private func scratchDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "cache-node-acl-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func usersSurviveARestartThroughTheACLFile() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let aclFile = directory + "/users.acl"
        let first = try CacheNodeProcess(arguments: ["--aclfile", aclFile])
        #expect(try redisCLI(first.port, ["ACL", "SETUSER", "app", "on", ">s3cret", "~app:*", "+@read", "+@write", "-@dangerous"]) == "OK")
        #expect(try redisCLI(first.port, ["ACL", "SAVE"]) == "OK")
        first.stop()

        let second = try CacheNodeProcess(arguments: ["--aclfile", aclFile])
        defer { second.stop() }
        let asApp = ["--user", "app", "--pass", "s3cret", "--no-auth-warning"]
        #expect(try redisCLI(second.port, ["SET", "app:1", "v"], extra: asApp) == "OK")
        #expect(try redisCLI(second.port, ["GET", "other"], extra: asApp).hasPrefix("NOPERM"))
        #expect(try redisCLI(second.port, ["FLUSHALL"], extra: asApp).hasPrefix("NOPERM"))
        #expect(try redisCLI(second.port, ["ACL", "WHOAMI"]) == "default")
    }

    @Test func userDirectivesInTheConfigFileAndABadACLFile() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/node.conf"
        try "user reader on >r ~* +@read\nuser default on >admin ~* &* +@all\n".write(toFile: config, atomically: true, encoding: .utf8)
        let node = try CacheNodeProcess(leading: [config])
        #expect(try redisCLI(node.port, ["GET", "k"]).hasPrefix("NOAUTH"))
        #expect(try redisCLI(node.port, ["GET", "k"], extra: ["--user", "reader", "--pass", "r", "--no-auth-warning"]) == "")
        #expect(try redisCLI(node.port, ["SET", "k", "v"], extra: ["--user", "reader", "--pass", "r", "--no-auth-warning"]).hasPrefix("NOPERM"))
        #expect(try redisCLI(node.port, ["SET", "k", "v"], extra: ["--pass", "admin", "--no-auth-warning"]) == "OK")
        node.stop()

        let aclFile = directory + "/bad.acl"
        try "user broken on +nosuchcommand\n".write(toFile: aclFile, atomically: true, encoding: .utf8)
        let started = try runProgram(PackagePaths.cacheNodeBinary, ["--bind", "127.0.0.1", "--port", "0", "--save", "", "--aclfile", aclFile], timeout: 20)
        #expect(started.status != 0)
        #expect(started.output.contains("bad.acl:1: Unknown command or category name in ACL"), "\(started.output)")
    }
}
