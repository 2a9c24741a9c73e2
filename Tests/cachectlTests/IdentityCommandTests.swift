// IdentityCommandTests: `cachectl identity init|issue|revoke` parsing, validation and the files they write.
import ArgumentParser
import Foundation
import ReplicationSec
import Testing
@testable import cachectl

struct IdentityCommandTests {
    @Test func issueRejectsUnknownRole() {
        #expect(throws: (any Error).self) {
            _ = try Cachectl.parseAsRoot(["identity", "issue", "--authority-key", "a.key", "--node-id", "n1", "--role", "db"])
        }
    }

    @Test func revokeNeedsASerialOrIdentity() {
        #expect(throws: (any Error).self) {
            _ = try Cachectl.parseAsRoot(["identity", "revoke", "--authority-key", "a.key", "--revocation-list", "r"])
        }
    }

    @Test func initIssueRevokeProduceVerifiableFiles() async throws {
        let directory = try TemporaryDirectory()
        try await CLI.run(["identity", "init", "--directory", directory.path])
        #expect(try FileManager.default.attributesOfItem(atPath: directory.file("authority.key"))[.posixPermissions] as? Int == 0o600)
        await #expect(throws: (any Error).self) { try await CLI.run(["identity", "init", "--directory", directory.path]) }

        try await CLI.run([
            "identity", "issue", "--authority-key", directory.file("authority.key"), "--node-id", "shard-1",
            "--role", "cache-node", "--out", directory.file("shard-1.identity"),
        ])
        let authority = try KeyFiles.decodeAuthorityPublicKey(try String(contentsOfFile: directory.file("authority.pub"), encoding: .utf8))
        let identity = try KeyFiles.decodeIdentity(try String(contentsOfFile: directory.file("shard-1.identity"), encoding: .utf8))
        let store = TrustStore(authority: authority)
        let now = WallClock.system.now()
        #expect(try store.verify(identity.certificate, expecting: .node("shard-1", role: .cacheNode), now: now).nodeID == "shard-1")

        for _ in 0..<2 {
            try await CLI.run([
                "identity", "revoke", "--authority-key", directory.file("authority.key"),
                "--revocation-list", directory.file("revoked.list"), "--identity", directory.file("shard-1.identity"),
                "--serial", "42",
            ])
        }
        let list = try KeyFiles.decodeRevocationList(try String(contentsOfFile: directory.file("revoked.list"), encoding: .utf8), authority: authority)
        #expect(list.sequence == 2)
        #expect(list.serials == [identity.certificate.serial, 42])
        try store.install(list)
        #expect(throws: SecureChannelError.certificateRevoked) {
            try store.verify(identity.certificate, expecting: .node("shard-1", role: .cacheNode), now: now)
        }
    }
}

/// Runs cachectl commands in-process.
enum CLI {
    static func run(_ arguments: [String]) async throws {
        var command = try Cachectl.parseAsRoot(arguments)
        if var asyncCommand = command as? any AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
    }
}

/// A scratch directory removed when the value is released.
final class TemporaryDirectory: Sendable {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "cachectl-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
