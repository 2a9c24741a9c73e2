// IdentityCommand: `cachectl identity init|issue|revoke` — create the cluster authority, issue node identities,
// and maintain the signed revocation list.
import ArgumentParser
import Foundation
import ReplicationSec

extension Cachectl {
    struct IdentityCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "identity",
            abstract: "Manage the cluster authority, node identities and the revocation list.",
            subcommands: [Init.self, Issue.self, Revoke.self]
        )
    }
}

extension Cachectl.IdentityCommand {
    /// Creates the authority key pair.
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the cluster authority: <dir>/authority.key (private) and <dir>/authority.pub.")

        @Option(help: "Directory to write the authority files into.")
        var directory: String = "."

        @Flag(help: "Overwrite an existing authority.")
        var force = false

        func run() async throws {
            let keyPath = "\(directory)/authority.key"
            if FileManager.default.fileExists(atPath: keyPath), !force {
                throw ValidationError("\(keyPath) exists; pass --force to replace the authority")
            }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let authority = ClusterAuthority()
            try writeSecret(KeyFiles.encodeAuthority(authority), to: keyPath)
            try KeyFiles.encodeAuthorityPublicKey(authority.publicKey)
                .write(toFile: "\(directory)/authority.pub", atomically: true, encoding: .utf8)
            print("authority created: \(keyPath), \(directory)/authority.pub")
        }
    }

    /// Issues a node identity.
    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a node identity (private key + certificate).")

        @Option(name: .customLong("authority-key"), help: "The authority private key file.")
        var authorityKeyPath: String

        @Option(name: .customLong("node-id"), help: "The node id to bind (1–255 bytes).")
        var nodeID: String

        @Option(help: "The node role: cache-node, framework or vnf.")
        var role: String

        @Option(name: .customLong("valid-days"), help: "Validity period in days, starting now.")
        var validDays: Int = 365

        @Option(name: .customLong("out"), help: "Identity file to write (default: <node-id>.identity).")
        var outputPath: String?

        func validate() throws {
            guard NodeRole(name: role) != nil else { throw ValidationError("unknown role '\(role)'; use cache-node, framework or vnf") }
            guard !nodeID.isEmpty, nodeID.utf8.count <= 255 else { throw ValidationError("--node-id must be 1–255 bytes") }
            guard validDays > 0 else { throw ValidationError("--valid-days must be positive") }
        }

        func run() async throws {
            let authority = try KeyFiles.decodeAuthority(try String(contentsOfFile: authorityKeyPath, encoding: .utf8))
            let now = WallClock.system.now()
            let identity = try authority.issueIdentity(
                nodeID: nodeID, role: NodeRole(name: role)!, notBefore: now - 300,
                notAfter: now + Int64(validDays) * 86_400)
            let path = outputPath ?? "\(nodeID).identity"
            try writeSecret(KeyFiles.encodeIdentity(identity), to: path)
            print("issued \(path): node-id \(nodeID), role \(role), serial \(identity.certificate.serial)")
        }
    }

    /// Adds certificates to the revocation list.
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add certificate serials to the signed revocation list (creating it if needed).")

        @Option(name: .customLong("authority-key"), help: "The authority private key file.")
        var authorityKeyPath: String

        @Option(name: .customLong("revocation-list"), help: "The revocation list file to update.")
        var revocationListPath: String

        @Option(help: "A certificate serial to revoke (repeatable).")
        var serial: [UInt64] = []

        @Option(name: .customLong("identity"), help: "An identity file whose certificate to revoke (repeatable).")
        var identityPaths: [String] = []

        func validate() throws {
            guard !serial.isEmpty || !identityPaths.isEmpty else { throw ValidationError("give --serial or --identity") }
        }

        func run() async throws {
            let authority = try KeyFiles.decodeAuthority(try String(contentsOfFile: authorityKeyPath, encoding: .utf8))
            var serials = Set(serial)
            for path in identityPaths {
                serials.insert(try KeyFiles.decodeIdentity(try String(contentsOfFile: path, encoding: .utf8)).certificate.serial)
            }
            var sequence: UInt64 = 1
            if let existing = try? String(contentsOfFile: revocationListPath, encoding: .utf8) {
                let list = try KeyFiles.decodeRevocationList(existing, authority: authority.publicKey)
                serials.formUnion(list.serials)
                sequence = list.sequence + 1
            }
            let list = try authority.revocationList(sequence: sequence, issuedAt: WallClock.system.now(), serials: serials)
            try KeyFiles.encodeRevocationList(list).write(toFile: revocationListPath, atomically: true, encoding: .utf8)
            print("revocation list \(revocationListPath): sequence \(sequence), \(serials.count) serial(s)")
        }
    }
}

/// Writes a private file with mode 0600.
func writeSecret(_ text: String, to path: String) throws {
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
    else { throw ValidationError("cannot write \(path)") }
    try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
}
