// Secured virtual links: when the framework deploys a sample function inside a network service, the links between
// two VNFs run the ReplicationSec secure channel from this process to the next one (the functions are Swift, so they
// link ReplicationSec directly instead of going through `cachectl tunnel`; the tunnel is for programs that cannot).
// The framework hands the process its identity (role vnf, node id = task id), the authority key, the revocation list
// and the node id prefixes of the VNF instances before and after it through the environment (see
// `VNFTaskTemplate.Environment`). Each end checks the other's certificate (authority, validity, revocation, role vnf)
// and node id prefix. The revocation list file is watched (the framework rewrites it atomically when it revokes): a
// newer list applies to new handshakes at once, and the trust store closes open links whose peer it revokes.
//
// Forwarding in this mode is async (NIOAsyncChannel pumps with half-close in both directions), so the secure channel's
// handshake runs before any byte is forwarded.

import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import ReplicationSec
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

typealias LinkConnection = NIOAsyncChannel<ByteBuffer, ByteBuffer>

/// Why a secured link could not be set up or was refused.
struct LinkSecurityError: Error, CustomStringConvertible {
    var description: String
}

/// The secured-link settings and open secured links of this process.
final class SecureLinks: Sendable {
    /// Environment variable names (the framework's `VNFTaskTemplate.Environment`).
    enum Variable {
        static let ingressPeers = "VNF_SECURE_INGRESS_PEERS"
        static let egressPeers = "VNF_SECURE_EGRESS_PEERS"
        static let identity = "VNF_IDENTITY"
        static let authority = "VNF_AUTHORITY"
        static let revocationList = "VNF_REVOCATION_LIST"
    }

    let configuration: SecureChannelConfiguration
    let trustStore: TrustStore
    /// Node id prefixes accepted inbound; nil: inbound is plaintext.
    let ingressPeers: [String]?
    /// Node id prefixes required outbound; nil: outbound is plaintext.
    let egressPeers: [String]?
    let revocationListPath: String?
    private let admission = HandshakeAdmission()
    private let lastSeen = Mutex<Date?>(nil)

    private init(
        configuration: SecureChannelConfiguration, trustStore: TrustStore, ingressPeers: [String]?, egressPeers: [String]?,
        revocationListPath: String?
    ) {
        self.configuration = configuration
        self.trustStore = trustStore
        self.ingressPeers = ingressPeers
        self.egressPeers = egressPeers
        self.revocationListPath = revocationListPath
    }

    /// The settings in `environment`, or nil when no link of this process is secured.
    static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SecureLinks? {
        func prefixes(_ name: String) -> [String]? {
            environment[name].map { $0.split(separator: ",").map(String.init) }
        }
        let ingress = prefixes(Variable.ingressPeers)
        let egress = prefixes(Variable.egressPeers)
        guard ingress != nil || egress != nil else { return nil }
        guard let identityPath = environment[Variable.identity], let authorityPath = environment[Variable.authority] else {
            throw LinkSecurityError(
                description: "secured links need \(Variable.identity) and \(Variable.authority) (the framework's authority issues them)")
        }
        let identity = try KeyFiles.decodeIdentity(try String(contentsOfFile: identityPath, encoding: .utf8))
        let authority = try KeyFiles.decodeAuthorityPublicKey(try String(contentsOfFile: authorityPath, encoding: .utf8))
        let revocationListPath = environment[Variable.revocationList]
        let list = try revocationListPath.map {
            try KeyFiles.decodeRevocationList(try String(contentsOfFile: $0, encoding: .utf8), authority: authority)
        }
        let trustStore = TrustStore(authority: authority, revocationList: list)
        var logger = Logger(label: "vnf-sample.links")
        logger.logLevel = .error
        let configuration = SecureChannelConfiguration(
            handshake: HandshakeConfiguration(identity: identity, trustStore: trustStore, peerExpectation: PeerExpectation(roles: [.vnf])),
            logger: logger)
        return SecureLinks(
            configuration: configuration, trustStore: trustStore, ingressPeers: ingress, egressPeers: egress,
            revocationListPath: revocationListPath)
    }

    // MARK: connections

    /// Listens on `host:port`, running the secure channel's server side on every connection if inbound is secured.
    func bind(host: String, port: Int) async throws -> NIOAsyncChannel<LinkConnection, Never> {
        let secure = ingressPeers != nil
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { child in
                child.eventLoop.makeCompletedFuture {
                    if secure {
                        let handler = try SecureChannel.addHandlers(
                            to: child.pipeline.syncOperations, role: .server(admission: self.admission),
                            configuration: self.configuration, eventLoop: child.eventLoop)
                        // A peer that leaves before the handshake completes (a TCP health check connects and closes)
                        // sends only a FIN, which half-closure would leave pending: close such a connection.
                        try child.pipeline.syncOperations.addHandler(HandshakeEOFHandler(), name: HandshakeEOFHandler.name, position: .first)
                        handler.handshakeCompleted.whenSuccess { _ in
                            child.pipeline.removeHandler(name: HandshakeEOFHandler.name, promise: nil)
                        }
                    }
                    return try LinkConnection(
                        wrappingChannelSynchronously: child, configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
    }

    /// Checks an accepted connection's peer (inbound secured).
    func authenticateInbound(_ connection: LinkConnection) async throws {
        guard let ingressPeers else { return }
        let peer = try await SecureChannel.authenticatedPeer(of: connection.channel)
        try admit(peer, expected: ingressPeers)
    }

    /// Connects to `address`, securely (checking the peer) if outbound is secured.
    func connect(to address: SocketAddress) async throws -> LinkConnection {
        let secure = egressPeers != nil
        let configuration = configuration
        let (connection, handshake) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(3))
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    var handler: SecureChannelHandler?
                    if secure {
                        handler = try SecureChannel.addHandlers(
                            to: channel.pipeline.syncOperations, role: .client, configuration: configuration,
                            eventLoop: channel.eventLoop)
                    }
                    return (
                        try LinkConnection(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)),
                        handler?.handshakeCompleted
                    )
                }
            }
        if let handshake, let egressPeers {
            do {
                try admit(try await handshake.get(), expected: egressPeers)
            } catch {
                await connection.discard()
                throw error
            }
        }
        return connection
    }

    private func admit(_ peer: NodeCertificate, expected prefixes: [String]) throws {
        guard prefixes.contains(where: { peer.nodeID.hasPrefix($0) }) else {
            throw LinkSecurityError(description: "peer '\(peer.nodeID)' is not one of \(prefixes.joined(separator: ", "))")
        }
    }

    // MARK: revocation

    /// Re-reads the revocation list file whenever it changes (the framework rewrites it atomically when it revokes).
    func watchRevocations() async {
        guard let revocationListPath else { return }
        while !Task.isCancelled {
            reloadIfChanged(revocationListPath)
            do { try await Task.sleep(for: .milliseconds(250)) } catch { return }
        }
    }

    private func reloadIfChanged(_ path: String) {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let modified = attributes[.modificationDate] as? Date
        else { return }
        guard lastSeen.withLock({ seen in
            defer { seen = modified }
            return seen != modified
        }) else { return }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let list = try? KeyFiles.decodeRevocationList(text, authority: trustStore.authority)
        else { return }
        // Installing closes the open links whose peer the list revokes (the trust store tracks established sessions).
        if (try? trustStore.install(list)) != nil {
            print("vnf-sample: installed revocation list \(list.sequence) (\(list.serials.count) revoked)")
            fflush(nil)
        }
    }
}

extension Proxy {
    /// The proxy with secured links: every accepted connection is authenticated (inbound secured), admitted by the
    /// policy, and pumped to an upstream connection (secured outbound) until both directions are finished.
    static func runLinked(
        bind host: String, port: Int, upstreams: Upstreams, policy: ProxyPolicy, name: String, links: SecureLinks
    ) async throws {
        let listener = try await links.bind(host: host, port: port)
        let drain = Drain.onSIGTERM(close: listener.channel)
        defer { drain.cancel() }
        print(
            "vnf-sample \(name): listening on \(host):\(listener.channel.localAddress?.port ?? port), upstreams \(upstreams.addresses)"
                + " (secured: ingress \(links.ingressPeers != nil), egress \(links.egressPeers != nil))")
        fflush(nil)
        try await listener.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await links.watchRevocations() }
                for try await connection in inbound {
                    ConnectionStats.shared.opened(connection.channel)
                    group.addTask {
                        do {
                            try await links.authenticateInbound(connection)
                            let channel = connection.channel
                            guard policy.admit(channel.remoteAddress, channel.localAddress?.port) else {
                                await connection.discard()
                                return
                            }
                            let upstream: LinkConnection
                            do {
                                guard let target = upstreams.pick() else {
                                    await connection.discard()
                                    return
                                }
                                upstream = try await links.connect(to: target)
                            } catch {
                                await connection.discard()
                                return
                            }
                            try? await pump(connection, upstream, denyPatterns: policy.denyPatterns)
                        } catch {
                            await connection.discard()
                        }
                    }
                }
                // The listener closed (SIGTERM): let open connections finish, then stop watching revocations.
                await Drain.waitForConnections()
                group.cancelAll()
            }
        }
    }

    /// Copies bytes both ways; each direction's end is passed on as a half-close. A denied pattern in the client's
    /// bytes closes both sides before the bytes that contain it are forwarded.
    static func pump(_ client: LinkConnection, _ upstream: LinkConnection, denyPatterns: [[UInt8]]) async throws {
        try await client.executeThenClose { clientIn, clientOut in
            try await upstream.executeThenClose { upstreamIn, upstreamOut in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        var scanner = PatternScanner(patterns: denyPatterns)
                        for try await buffer in clientIn {
                            if scanner.scan(buffer.readableBytesView) { throw LinkSecurityError(description: "denied pattern") }
                            try await upstreamOut.write(buffer)
                        }
                        upstreamOut.finish()
                    }
                    group.addTask {
                        for try await buffer in upstreamIn { try await clientOut.write(buffer) }
                        clientOut.finish()
                    }
                    try await group.waitForAll()
                }
            }
        }
    }
}

extension NIOAsyncChannel where Inbound == ByteBuffer, Outbound == ByteBuffer {
    /// Closes a connection that will not be used; NIOAsyncChannel wants every channel consumed by `executeThenClose`
    /// (its writer finished) before it is released.
    func discard() async {
        try? await executeThenClose { _, _ in }
    }
}

/// Closes a secured connection whose peer half-closes before the handshake completed (removed once it has).
final class HandshakeEOFHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    static let name = "vnf-sample.handshake-eof"

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

@available(*, unavailable)
extension HandshakeEOFHandler: Sendable {}
