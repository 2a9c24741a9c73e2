// The chain's virtual links over the secure channel, with real processes: each link between two VNFs runs through a
// recording TCP relay (a capture of the link), traffic still arrives transformed and filtered at the end while the
// payload never appears on the secured links, and does appear on them when the service opts into plaintext links.
// Healing a VNF revokes its old identity: the next VNF refuses a handshake with it (and accepts the new one).

import CacheFramework
import CacheFrameworkNFV
import CacheFrameworkNFVRuntime
import CacheFrameworkRuntime
import Foundation
import LoopbackTestSupport
import NIOCore
import NIOPosix
import ReplicationSec
import Synchronization
import Testing

typealias ByteConnection = NIOAsyncChannel<ByteBuffer, ByteBuffer>

/// A TCP relay on a free loopback port that forwards to `target` unchanged (half-closes too) and records every byte
/// it forwards in either direction: what a capture of the link would show.
final class RecordingRelay: Sendable {
    let endpoint: String
    private let recorded = Mutex<[UInt8]>([])
    private let listener: NIOAsyncChannel<ByteConnection, Never>

    private init(endpoint: String, listener: NIOAsyncChannel<ByteConnection, Never>) {
        self.endpoint = endpoint
        self.listener = listener
    }

    static func start(to target: String) async throws -> RecordingRelay {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture {
                    try ByteConnection(wrappingChannelSynchronously: child, configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
        let relay = RecordingRelay(endpoint: "127.0.0.1:\(listener.channel.localAddress!.port!)", listener: listener)
        let colon = target.lastIndex(of: ":")!
        let host = String(target[..<colon])
        let port = Int(target[target.index(after: colon)...])!
        Task {
            try? await listener.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await client in inbound {
                        group.addTask {
                            guard let upstream = try? await plainConnect(host: host, port: port) else {
                                // Consumed, so its writer is finished before it is released.
                                try? await client.executeThenClose { _, _ in }
                                return
                            }
                            try? await relay.pump(client, upstream)
                        }
                    }
                }
            }
        }
        return relay
    }

    /// Everything forwarded so far.
    var bytes: [UInt8] { recorded.withLock { $0 } }

    func stop() { listener.channel.close(promise: nil) }

    private func pump(_ client: ByteConnection, _ upstream: ByteConnection) async throws {
        try await client.executeThenClose { clientIn, clientOut in
            try await upstream.executeThenClose { upstreamIn, upstreamOut in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await buffer in clientIn {
                            self.recorded.withLock { $0 += buffer.readableBytesView }
                            try await upstreamOut.write(buffer)
                        }
                        upstreamOut.finish()
                    }
                    group.addTask {
                        for try await buffer in upstreamIn {
                            self.recorded.withLock { $0 += buffer.readableBytesView }
                            try await clientOut.write(buffer)
                        }
                        clientOut.finish()
                    }
                    try await group.waitForAll()
                }
            }
        }
    }
}

func plainConnect(host: String, port: Int) async throws -> ByteConnection {
    try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelOption(.allowRemoteHalfClosure, value: true)
        .connect(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try ByteConnection(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
            }
        }
}

/// Connects to `endpoint` over the secure channel as `identity`, sends `message`, half-closes and returns what comes
/// back until the peer closes ("" when the peer refuses the identity and closes).
func secureExchange(_ endpoint: String, identity: NodeIdentity, authority: AuthorityPublicKey, _ message: String) async -> String {
    let colon = endpoint.lastIndex(of: ":")!
    let configuration = SecureChannelConfiguration(
        handshake: HandshakeConfiguration(
            identity: identity, trustStore: TrustStore(authority: authority), peerExpectation: PeerExpectation(roles: [.vnf])))
    do {
        let (connection, handshake) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: String(endpoint[..<colon]), port: Int(endpoint[endpoint.index(after: colon)...])!) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try SecureChannel.addHandlers(
                        to: channel.pipeline.syncOperations, role: .client, configuration: configuration, eventLoop: channel.eventLoop)
                    return (
                        try ByteConnection(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)),
                        handler.handshakeCompleted
                    )
                }
            }
        guard (try? await handshake.get()) != nil else {
            try? await connection.executeThenClose { _, _ in }
            return ""
        }
        return try await connection.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: message))
            outbound.finish()
            var received = ""
            for try await buffer in inbound { received += String(buffer: buffer) }
            return received
        }
    } catch {
        return ""
    }
}

/// The certificate serial of the identity the framework issued to `nodeID`.
func identitySerial(_ framework: NFVFramework, _ nodeID: String) throws -> UInt64 {
    try identity(framework, nodeID).certificate.serial
}

func identity(_ framework: NFVFramework, _ nodeID: String) throws -> NodeIdentity {
    try KeyFiles.decodeIdentity(try String(contentsOfFile: "\(framework.authority.directory)/\(nodeID).identity", encoding: .utf8))
}

/// Relays interposed on a service's links.
final class LinkRelays: Sendable {
    private let relays = Mutex<[RecordingRelay]>([])

    func interpose(_ endpoints: [String]) async throws -> [String] {
        var mapped: [String] = []
        for endpoint in endpoints {
            let relay = try await RecordingRelay.start(to: endpoint)
            relays.withLock { $0.append(relay) }
            mapped.append(relay.endpoint)
        }
        return mapped
    }

    var all: [RecordingRelay] { relays.withLock { $0 } }
    func stop() { for relay in all { relay.stop() } }
}

@Suite(.serialized)
struct SecureLinkTests {
    @Test func linksCarryNoPlaintextAndHealedIdentitiesAreRefused() async throws {
        // Another range than NFVChainTests (suites run in parallel).
        let base = UInt64.random(in: 252..<266) * 100
        let framework = try NFVFramework(firstPort: base)
        let echo = try startEcho(port: Int(base) + 150)
        let secureRelays = LinkRelays()
        let plainRelays = LinkRelays()
        defer {
            secureRelays.stop()
            plainRelays.stop()
            echo.terminate()
            echo.waitUntilExit()
        }
        do {
            let echoEndpoint = "127.0.0.1:\(base + 150)"
            try await waitUntil("the echo target answers") { LoopbackSocket.exchange(endpoint: echoEndpoint, message: "x") == "E:x" }
            let nsd = try loadChain()
            let service = try await NSDeployment.deploy(
                nsd, name: "secure", egress: [echoEndpoint], manager: framework.manager, timeoutSeconds: 30,
                interpose: { try await secureRelays.interpose($0) })
            let ingress = try #require(service.ingress.first)
            #expect(secureRelays.all.count == 2)

            // The chain serves once every secure link's first handshake is done (polled: slow under load).
            try await waitUntil("the secure chain forwards") { LoopbackSocket.exchange(endpoint: ingress, message: "warm-up") == "E:warm-up" }
            // Forwarded and filtered as before; the payload crosses both links but never in plaintext.
            // (Polled too: under CI load one exchange can outlast its 3 s read timeout while both hops handshake.)
            let payload = "secret-payload-\(UUID().uuidString)"
            try await waitUntil("the payload crosses the secure chain", seconds: 15) { LoopbackSocket.exchange(endpoint: ingress, message: payload) == "E:\(payload)" }
            #expect(LoopbackSocket.exchange(endpoint: ingress, message: "please DROP this") == "")
            for relay in secureRelays.all {
                let captured = relay.bytes
                #expect(captured.count > payload.utf8.count, "the link carried the traffic")
                #expect(!contains(captured, Array(payload.utf8)), "plaintext on a secured link")
            }

            // The same chain with plaintext links (explicit opt-in): the same capture shows the payload.
            let plain = try await NSDeployment.deploy(
                nsd, name: "plain", egress: [echoEndpoint], manager: framework.manager, timeoutSeconds: 30, plaintextLinks: true,
                interpose: { try await plainRelays.interpose($0) })
            let plainIngress = try #require(plain.ingress.first)
            try await waitUntil("the plaintext chain forwards") { LoopbackSocket.exchange(endpoint: plainIngress, message: payload) == "E:\(payload)" }
            #expect(plainRelays.all.allSatisfy { contains($0.bytes, Array(payload.utf8)) })

            // Heal the rate limiter: its old identity is revoked, and the load balancer after it refuses a handshake
            // with that identity while it accepts the new one.
            let rlID = service.vnfInstanceIDs[1]
            let lbIngress = try #require(framework.manager.instance(service.vnfInstanceIDs[2])?.endpoints(onLink: "ingress").first)
            let oldTask = try #require(framework.manager.instance(rlID)?.vnfcs["rl.0"]?.taskID)
            let oldIdentity = try identity(framework, oldTask.value)
            let authorityKey = try KeyFiles.decodeAuthorityPublicKey(
                try String(contentsOfFile: framework.authority.authorityPublicKeyPath, encoding: .utf8))
            #expect(await secureExchange(lbIngress, identity: oldIdentity, authority: authorityKey, "probe") == "E:probe")
            let heal = try await framework.manager.submit(.heal(rlID, vnfcs: ["rl.0"]))
            #expect(try await NSDeployment.waitForFinal(heal.operationID!, manager: framework.manager, timeoutSeconds: 30) == .completed)
            #expect(framework.authority.revocationList.serials.contains(oldIdentity.certificate.serial))
            let newTask = try #require(framework.manager.instance(rlID)?.vnfcs["rl.0"]?.taskID)
            #expect(newTask != oldTask)
            try await waitUntil("the load balancer refuses the revoked identity") {
                await secureExchange(lbIngress, identity: oldIdentity, authority: authorityKey, "probe") == ""
            }
            let newIdentity = try identity(framework, newTask.value)
            #expect(await secureExchange(lbIngress, identity: newIdentity, authority: authorityKey, "probe") == "E:probe")
            // An identity of a VNF that is not the lb's neighbour is refused too (node id prefix check).
            let fwTask = try #require(framework.manager.instance(service.vnfInstanceIDs[0])?.vnfcs["fw.0"]?.taskID)
            #expect(await secureExchange(lbIngress, identity: try identity(framework, fwTask.value), authority: authorityKey, "probe") == "")
            try await waitUntil("traffic flows after the heal") { LoopbackSocket.exchange(endpoint: ingress, message: "after heal") == "E:after heal" }

            try await NSDeployment.terminate(service, manager: framework.manager, timeoutSeconds: 30)
            try await NSDeployment.terminate(plain, manager: framework.manager, timeoutSeconds: 30)
            let list = framework.authority.revocationList
            for nodeID in framework.authority.issuedNodeIDs {
                #expect(list.serials.contains(try identitySerial(framework, nodeID)), "\(nodeID) is not revoked")
            }
            #expect(await secureExchange(lbIngress, identity: newIdentity, authority: authorityKey, "probe") == "")
        } catch {
            await framework.stop()
            throw error
        }
        await framework.stop()
    }
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, haystack.count >= needle.count else { return false }
    for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
        return true
    }
    return false
}
