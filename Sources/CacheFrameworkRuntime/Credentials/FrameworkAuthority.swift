// The framework's cluster authority: a ReplicationSec authority key pair kept in the framework's data directory
// (created on first start, mode 0600), which issues every cache-node member its identity (node id = task id, role
// cache-node) just before the member is launched. Members get the files through `--node-identity` and
// `--cluster-authority` (see `TaskTemplate`), so replication between them runs over the secure channel.
// The framework has an identity of its own too (`<dir>/framework.identity`, node id `framework`, role framework),
// issued on load when missing, revoked, or near its expiry: with it the driver reaches secure members through the
// secure channel (`ControlSecurity`), the only way such a member accepts a topology push.

public import CacheFramework
import Foundation
public import ReplicationSec
import Synchronization

/// Writes the credentials a member needs before it is launched.
public protocol MemberCredentialIssuer: Sendable {
    /// The directory `MemberCredentials.under(_:taskID:)` points into.
    var directory: String { get }
    /// Writes the identity of `taskID` to `credentials.identityPath` (the authority's public key is already there).
    func issue(taskID: TaskID, credentials: MemberCredentials) throws
    /// Revokes every identity issued to `taskID`; returns the new revocation list's path, or nil when nothing changed
    /// (nothing was issued to it, or it was revoked already).
    func revoke(taskID: TaskID) throws -> String?
    /// The framework's own identity and trust, for control connections to members through the secure channel; nil
    /// when the issuer has none.
    func controlSecurity() throws -> ControlSecurity?
}

extension MemberCredentialIssuer {
    /// Issuers without a revocation list revoke nothing.
    public func revoke(taskID: TaskID) throws -> String? { nil }
    /// Issuers without a framework identity: members are controlled in plaintext.
    public func controlSecurity() throws -> ControlSecurity? { nil }
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
    private let shared: Shared

    /// Serials issued per node id, and the current list.
    struct Ledger {
        var issued: [String: [UInt64]]
        var list: RevocationList
    }

    /// A reference so copies of the struct share one ledger, the framework's identity and its trust store.
    private final class Shared: Sendable {
        let ledger: Mutex<Ledger>
        let frameworkIdentity = Mutex<NodeIdentity?>(nil)
        /// Members are verified against it; revocations are installed into it.
        let trustStore: TrustStore
        init(_ ledger: Ledger, trustStore: TrustStore) {
            self.ledger = Mutex(ledger)
            self.trustStore = trustStore
        }
    }

    /// The framework's node id in its certificate.
    public static let frameworkNodeID = "framework"

    /// The signed revocation list file (`revoked.list`) members and VNFs are pointed at.
    public var revocationListPath: String { directory + "/revoked.list" }
    /// The authority public key file.
    public var authorityPublicKeyPath: String { directory + "/authority.pub" }
    /// The framework's identity file (role framework).
    public var frameworkIdentityPath: String { directory + "/framework.identity" }
    private var issuedPath: String { directory + "/issued.json" }

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
            var issued: [String: [UInt64]] = [:]
            if let data = manager.contents(atPath: directory + "/issued.json") {
                issued = try JSONDecoder().decode([String: [UInt64]].self, from: data)
            }
            let list: RevocationList
            if manager.fileExists(atPath: directory + "/revoked.list") {
                list = try KeyFiles.decodeRevocationList(
                    try String(contentsOfFile: directory + "/revoked.list", encoding: .utf8), authority: authority.publicKey)
            } else {
                list = try authority.revocationList(sequence: 1, issuedAt: Int64(Date().timeIntervalSince1970), serials: [])
                try Self.writeSecret(KeyFiles.encodeRevocationList(list), to: directory + "/revoked.list", mode: 0o644)
            }
            shared = Shared(Ledger(issued: issued, list: list), trustStore: TrustStore(authority: authority.publicKey, revocationList: list))
        } catch let error as FrameworkAuthorityError {
            throw error
        } catch {
            throw FrameworkAuthorityError(
                message: "cannot load or create the cluster authority in \(directory): \(error); check the directory's permissions")
        }
        _ = try frameworkIdentity()
    }

    /// The framework's identity (node id `framework`, role framework): the one in `frameworkIdentityPath`, or a new one
    /// written there when that is missing, unreadable, from another authority, revoked, or within 30 days (half the
    /// validity, if shorter) of its expiry. Checked on load and whenever the driver starts.
    public func frameworkIdentity() throws -> NodeIdentity {
        let now = Int64(Date().timeIntervalSince1970)
        let revoked = revocationList.serials
        let margin = min(Int64(30 * 86_400), validity / 2)
        return try shared.frameworkIdentity.withLock { cached throws -> NodeIdentity in
            if let identity = cached ?? (try? KeyFiles.decodeIdentity(String(contentsOfFile: frameworkIdentityPath, encoding: .utf8))),
                identity.certificate.role == .framework, identity.certificate.nodeID == Self.frameworkNodeID,
                identity.certificate.authorityKeyID == authority.publicKey.keyID, !revoked.contains(identity.certificate.serial),
                identity.certificate.notAfter - now > margin
            {
                cached = identity
                return identity
            }
            let identity = try issue(nodeID: Self.frameworkNodeID, role: .framework, identityPath: frameworkIdentityPath)
            cached = identity
            return identity
        }
    }

    /// The framework's identity and this authority's trust store (kept current with revocations).
    public func controlSecurity() throws -> ControlSecurity? {
        ControlSecurity(identity: try frameworkIdentity(), trustStore: shared.trustStore)
    }

    public func issue(taskID: TaskID, credentials: MemberCredentials) throws {
        try issue(nodeID: taskID.value, role: .cacheNode, identityPath: credentials.identityPath)
    }

    /// Issues the identity of VNF instance task `taskID` (node id = task id, role vnf) to
    /// `<directory>/<task id>.identity`; returns the paths of the identity and the authority public key.
    public func issueVNF(taskID: TaskID) throws -> MemberCredentials {
        let credentials = MemberCredentials.under(directory, taskID: taskID)
        try issue(nodeID: taskID.value, role: .vnf, identityPath: credentials.identityPath)
        return credentials
    }

    /// The current signed revocation list.
    public var revocationList: RevocationList { shared.ledger.withLock { $0.list } }

    /// Node ids the authority issued member and VNF identities to (not the framework's own).
    public var issuedNodeIDs: Set<String> { shared.ledger.withLock { Set($0.issued.keys) } }

    /// Revokes every identity issued to `nodeID`: the list gets the next sequence, is signed and written to
    /// `revocationListPath`. Returns the new list, or nil when nothing was issued to `nodeID` or it is revoked already.
    @discardableResult
    public func revoke(nodeID: String) throws -> RevocationList? {
        try shared.ledger.withLock { ledger throws -> RevocationList? in
            let serials = Set(ledger.issued[nodeID] ?? [])
            guard !serials.isSubset(of: ledger.list.serials) else { return nil }
            do {
                let list = try authority.revocationList(
                    sequence: ledger.list.sequence + 1, issuedAt: Int64(Date().timeIntervalSince1970),
                    serials: ledger.list.serials.union(serials))
                try Self.writeSecret(KeyFiles.encodeRevocationList(list), to: revocationListPath, mode: 0o644)
                ledger.list = list
                // Also drops the framework's open control connections to the revoked node.
                try? shared.trustStore.install(list)
                return list
            } catch let error as FrameworkAuthorityError {
                throw error
            } catch {
                throw FrameworkAuthorityError(message: "cannot revoke the identity of \(nodeID): \(error)")
            }
        }
    }

    public func revoke(taskID: TaskID) throws -> String? {
        try revoke(nodeID: taskID.value).map { _ in revocationListPath }
    }

    /// Issues an identity and writes it to `identityPath`; a member's or VNF's is recorded in the ledger first (the
    /// framework's own is not: it is not a member, and a new one is issued on load when it expires or is revoked).
    @discardableResult
    private func issue(nodeID: String, role: NodeRole, identityPath: String) throws -> NodeIdentity {
        let now = Int64(Date().timeIntervalSince1970)
        do {
            let identity = try authority.issueIdentity(
                nodeID: nodeID, role: role, notBefore: now - 300, notAfter: now + validity)
            // Recorded before the identity is written: an identity on disk is always revocable.
            if role != .framework {
                try shared.ledger.withLock { ledger in
                    ledger.issued[nodeID, default: []].append(identity.certificate.serial)
                    let data = try JSONEncoder().encode(ledger.issued)
                    try Self.writeSecret(String(decoding: data, as: UTF8.self), to: issuedPath)
                }
            }
            try Self.writeSecret(KeyFiles.encodeIdentity(identity), to: identityPath)
            return identity
        } catch let error as FrameworkAuthorityError {
            throw error
        } catch {
            throw FrameworkAuthorityError(message: "cannot issue the identity of \(nodeID): \(error)")
        }
    }

    private static func writeSecret(_ text: String, to path: String, mode: Int = 0o600) throws {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: mode]),
            rename(temporary, path) == 0
        else { throw FrameworkAuthorityError(message: "cannot write \(path)") }
    }
}
