// SecBench: secure channel throughput and handshake rate, side by side with the limits measured in the same run.
//
// Rows, for 1 KiB and 16 KiB records:
//   raw CTR+HMAC      AES-256-CTR + HMAC-SHA256 over the payload, no framing (the ceiling for our record layer)
//   GCM seal+open     swift-crypto AES-GCM-256 seal + open (what an AEAD suite would cost; compare with seal+open)
//   seal+open         RecordSealer.seal + RecordOpener.open in memory: two CTR passes and two HMACs per record,
//                     so its ceiling is half the raw row ("vs raw/2" column)
//   channel loopback  SecureChannel over 127.0.0.1 TCP, one-way bulk transfer
//   plain loopback    the same transfer without the secure channel
// Plus handshakes/s (state machines in memory, and full connects over loopback).
// Run: swift run -c release SecBench [megabytes-per-row]
import Crypto
import Dispatch
import Foundation
import NIOCore
import NIOPosix
import ReplicationSec
import _CryptoExtras

let megabytes = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 256
let totalBytes = megabytes * 1024 * 1024

func measure(_ bytes: Int, _ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return Double(bytes) / seconds / 1e9  // GB/s
}

func measureAsync(_ bytes: Int, _ body: () async throws -> Void) async rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try await body()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return Double(bytes) / seconds / 1e9
}

func format(_ value: Double) -> String {
    let text = String(Int((value * 100).rounded()))
    let padded = String(repeating: "0", count: max(0, 3 - text.count)) + text
    return "\(padded.dropLast(2)).\(padded.suffix(2))"
}

func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }

// MARK: in-memory rows

func rawCTRHMAC(recordSize: Int) throws -> Double {
    let encryptionKey = SymmetricKey(size: .bits256)
    let macTemplate = HMAC<SHA256>(key: SymmetricKey(size: .bits256))  // key absorbed once, as the record layer does
    let payload = [UInt8](repeating: 0x5a, count: recordSize)
    let count = totalBytes / recordSize
    var sink: UInt8 = 0
    let rate = try measure(count * recordSize) {
        for counter in 0..<count {
            let nonce = try AES._CTR.Nonce(nonceBytes: RecordCipher.counterBlock(recordCounter: UInt64(counter)))
            let ciphertext = try AES._CTR.encrypt(payload, using: encryptionKey, nonce: nonce)
            var mac = macTemplate
            mac.update(data: ciphertext)
            sink ^= mac.finalize().withUnsafeBytes { $0[0] }
        }
    }
    if sink == 0xff { print("") }
    return rate
}

func aesGCM(recordSize: Int) throws -> Double {
    let key = SymmetricKey(size: .bits256)
    let payload = [UInt8](repeating: 0x5a, count: recordSize)
    let count = totalBytes / recordSize
    return try measure(count * recordSize) {
        for _ in 0..<count {
            let box = try AES.GCM.seal(payload, using: key)
            _ = try AES.GCM.open(box, using: key)
        }
    }
}

func recordLayer(recordSize: Int) throws -> Double {
    let secret = SymmetricKey(size: .bits256)
    let now = NIODeadline.now()
    var sealer = RecordSealer(trafficSecret: secret, policy: RekeyPolicy(), now: now)
    var opener = RecordOpener(trafficSecret: secret, policy: RekeyPolicy(), ordering: .strictInOrder, now: now)
    let payload = [UInt8](repeating: 0x5a, count: recordSize)
    let count = totalBytes / recordSize
    var frame = ByteBuffer()
    return try measure(count * recordSize) {
        for _ in 0..<count {
            frame.clear()
            try payload.withUnsafeBytes { try sealer.seal($0, now: now, into: &frame) }
            _ = try opener.open(frame, now: now)
        }
    }
}

// MARK: loopback rows

/// Counts received bytes and completes a promise at the target.
final class Counter: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let target: Int
    let done: EventLoopPromise<Void>
    var received = 0
    init(target: Int, done: EventLoopPromise<Void>) { self.target = target; self.done = done }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        if received >= target { done.succeed() }
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

func loopback(recordSize: Int, secure: (client: SecureChannelConfiguration, server: SecureChannelConfiguration)?) async throws -> Double {
    let bytes = totalBytes / 2
    let done = group.next().makePromise(of: Void.self)
    let server = try await ServerBootstrap(group: group)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                if let secure {
                    try SecureChannel.addHandlers(to: channel.pipeline.syncOperations, role: .server(admission: nil),
                                                  configuration: secure.server, eventLoop: channel.eventLoop)
                }
                try channel.pipeline.syncOperations.addHandler(Counter(target: bytes, done: done))
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    let client = try await ClientBootstrap(group: group)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                if let secure {
                    try SecureChannel.addHandlers(to: channel.pipeline.syncOperations, role: .client,
                                                  configuration: secure.client, eventLoop: channel.eventLoop)
                }
            }
        }
        .connect(to: server.localAddress!).get()
    let chunk = ByteBuffer(repeating: 0x5a, count: recordSize)
    let rate = try await measureAsync(bytes) {
        try await client.eventLoop.flatSubmit {
            // Keep the socket busy while bounding memory: write in batches, each waiting for the previous one.
            @Sendable func writeBatch(_ remaining: Int) -> EventLoopFuture<Void> {
                guard remaining > 0 else { return client.eventLoop.makeSucceededVoidFuture() }
                let batch = min(remaining, 64)
                var last: EventLoopFuture<Void>?
                for _ in 0..<batch { last = client.write(chunk) }
                client.flush()
                return last!.flatMap { writeBatch(remaining - batch) }
            }
            return writeBatch(bytes / recordSize)
        }.get()
        try await done.futureResult.get()
    }
    try await client.close()
    try await server.close()
    return rate
}

func handshakesInMemory(count: Int, client: HandshakeConfiguration, server: HandshakeConfiguration) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<count {
        var initiator = HandshakeStateMachine.initiator(client)
        var responder = HandshakeStateMachine.responder(server)
        guard case .send(let hello) = initiator.start(), case .send(let serverHello) = responder.receive(hello),
            case .sendAndComplete(let finish, _) = initiator.receive(serverHello),
            case .complete = responder.receive(finish)
        else { fatalError("benchmark handshake failed") }
    }
    return Double(count) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}

func handshakesOverLoopback(count: Int, client: SecureChannelConfiguration, server: SecureChannelConfiguration) async throws -> Double {
    let listener = try await ServerBootstrap(group: group)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try SecureChannel.addHandlers(to: channel.pipeline.syncOperations, role: .server(admission: nil),
                                              configuration: server, eventLoop: channel.eventLoop)
            }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<count {
        let (channel, _) = try await SecureChannel.connect(host: "127.0.0.1", port: listener.localAddress!.port!,
                                                          configuration: client, group: group)
        try await channel.channel.close()
    }
    let rate = Double(count) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    try await listener.close()
    return rate
}

// MARK: main

let authority = ClusterAuthority()
let now = WallClock.system.now()
let clientIdentity = try authority.issueIdentity(nodeID: "bench-client", role: .cacheNode, notBefore: now - 60, notAfter: now + 3600)
let serverIdentity = try authority.issueIdentity(nodeID: "bench-server", role: .cacheNode, notBefore: now - 60, notAfter: now + 3600)
let trust = TrustStore(authority: authority.publicKey)
let clientHandshake = HandshakeConfiguration(identity: clientIdentity, trustStore: trust, peerExpectation: .node("bench-server", role: .cacheNode))
let serverHandshake = HandshakeConfiguration(identity: serverIdentity, trustStore: trust, peerExpectation: PeerExpectation(roles: [.cacheNode]))

print("SecBench: \(megabytes) MiB per in-memory row, \(megabytes / 2) MiB per loopback row; GB/s (10^9 bytes/s)\n")
print(pad("record", 8) + pad("raw CTR+HMAC", 14) + pad("GCM seal+open", 15) + pad("seal+open", 12)
      + pad("channel loopback", 18) + pad("plain loopback", 16) + pad("seal+open vs raw/2", 20) + "channel vs raw/2")
for recordSize in [1024, 16 * 1024] {
    let raw = try rawCTRHMAC(recordSize: recordSize)
    let gcm = try aesGCM(recordSize: recordSize)
    let layer = try recordLayer(recordSize: recordSize)
    let secure = (
        SecureChannelConfiguration(handshake: clientHandshake, maximumRecordPayload: recordSize),
        SecureChannelConfiguration(handshake: serverHandshake, maximumRecordPayload: recordSize))
    let channel = try await loopback(recordSize: recordSize, secure: secure)
    let plain = try await loopback(recordSize: recordSize, secure: nil)
    print(pad("\(recordSize / 1024) KiB", 8) + pad(format(raw), 14) + pad(format(gcm), 15) + pad(format(layer), 12)
          + pad(format(channel), 18) + pad(format(plain), 16) + pad(format(layer / (raw / 2)), 20) + format(channel / (raw / 2)))
}
let inMemory = handshakesInMemory(count: 2000, client: clientHandshake, server: serverHandshake)
let overLoopback = try await handshakesOverLoopback(
    count: 500, client: SecureChannelConfiguration(handshake: clientHandshake),
    server: SecureChannelConfiguration(handshake: serverHandshake))
print("\nhandshakes/s: \(Int(inMemory)) (both sides in memory, one core), \(Int(overLoopback)) (sequential connects over loopback)")
try await group.shutdownGracefully()
