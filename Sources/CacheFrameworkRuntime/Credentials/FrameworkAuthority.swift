// The framework's cluster authority: a ReplicationSec authority key pair kept in the framework's data directory
// (created on first start, mode 0600), which issues every cache-node member its identity (node id = task id, role
// cache-node) just before the member is launched. Members get the files through `--node-identity` and
// `--cluster-authority` (see `TaskTemplate`), so replication between them runs over the secure channel.

public import CacheFramework
import Foundation
import ReplicationSec

/// Writes the credentials a member needs before it is launched.
public protocol MemberCredentialIssuer: Sendable {
    /// The directory `MemberCredentials.under(_:taskID:)` points into.
    var directory: String { get }
    /// Writes the identity of `taskID` to `credentials.identityPath` (the authority's public key is already there).
    func issue(taskID: TaskID, credentials: MemberCredentials) throws
}

/// Why the framework's authority could not be created or used.
public struct FrameworkAuthorityError: Error, CustomStringConvertible, Sendable {
    /// What failed.
    public var message: String
    public var description: String { message }
}

/// A `MemberCredentialIssuer` backed by a ReplicationSec `ClusterAuthority` in a directory.
public struct FrameworkAuthority: MemberCredentialIssuer {
    public let directory: String
    /// How long issued identities are valid.
    public var validity: Int64
    private let authority: ClusterAuthority

    /// Loads `<directory>/authority.key`, or creates the authority (key and `authority.pub`) on first start.
    public init(directory: String, validityDays: Int = 365) throws {
        self.directory = directory
        self.validity = Int64(validityDays) * 86_400
        let keyPath = directory + "/authority.key"
        let manager = FileManager.default
        do {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if manager.fileExists(atPath: keyPath) {
                authority = try KeyFiles.decodeAuthority(try String(contentsOfFile: keyPath, encoding: .utf8))
            } else {
                authority = ClusterAuthority()
                try Self.writeSecret(KeyFiles.encodeAuthority(authority), to: keyPath)
            }
            try KeyFiles.encodeAuthorityPublicKey(authority.publicKey)
                .write(toFile: directory + "/authority.pub", atomically: true, encoding: .utf8)
        } catch let error as FrameworkAuthorityError {
            throw error
        } catch {
            throw FrameworkAuthorityError(
                message: "cannot load or create the cluster authority in \(directory): \(error); check the directory's permissions")
        }
    }

    public func issue(taskID: TaskID, credentials: MemberCredentials) throws {
        let now = Int64(Date().timeIntervalSince1970)
        do {
            let identity = try authority.issueIdentity(
                nodeID: taskID.value, role: .cacheNode, notBefore: now - 300, notAfter: now + validity)
            try Self.writeSecret(KeyFiles.encodeIdentity(identity), to: credentials.identityPath)
        } catch let error as FrameworkAuthorityError {
            throw error
        } catch {
            throw FrameworkAuthorityError(message: "cannot issue the identity of \(taskID): \(error)")
        }
    }

    private static func writeSecret(_ text: String, to path: String) throws {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]),
            rename(temporary, path) == 0
        else { throw FrameworkAuthorityError(message: "cannot write \(path)") }
    }
}
