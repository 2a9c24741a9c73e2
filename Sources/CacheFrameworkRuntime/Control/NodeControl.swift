// The seam between the framework and the cache members it runs: PING for readiness, REPLICAOF to wire and promote
// replicas, INFO replication for offsets and ROLE. `RESPNodeControl` speaks standard redis commands over one short
// connection per call, so it works with redis-server today and with cache-node as its replication and cluster
// commands land; for cluster-mode cache-node members, CLUSTER MYID and the topology push
// (`CLUSTER TOPOLOGY SET <epoch> <payload>`) and slot migration for resharding (`SlotMigrator`: one connection to each
// side, the batch handed over with cache-node's `CLUSTER SETSLOTSRANGE`, GETKEYSINSLOT and MIGRATE pipelined).
// A member whose endpoint has a `securePort` (a cache-node of a cluster with secure replication; the driver sets it,
// `SchedulerStateMachine.controlEndpoint`) is reached there through ReplicationSec with the framework's identity
// (`ControlSecurity`), and the same RESP runs inside; such a member accepts topology pushes only that way.

public import CacheFramework
import NIOCore
import NIOPosix
import ReplicationSec

/// A reply to a RESP command (RESP2 types).
public enum RESPReply: Hashable, Sendable {
    case simple(String)
    case error(String)
    case integer(Int64)
    case bulk(String?)
    case array([RESPReply]?)
}

/// Why a node could not be controlled.
public struct NodeControlError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What failed, including the node's address.
    public var message: String
    public var description: String { message }
}

/// A member's replication state as INFO replication reports it.
public struct ReplicationInfo: Hashable, Sendable {
    /// `master` or `slave`.
    public var role: String
    /// `master_repl_offset` (a replica's copy of its primary's offset).
    public var offset: UInt64
    /// For a replica: `master_host:master_port`.
    public var primary: String?
    /// For a replica: `master_link_status` is `up`.
    public var linkUp: Bool

    /// Creates replication info.
    public init(role: String, offset: UInt64, primary: String?, linkUp: Bool) {
        self.role = role
        self.offset = offset
        self.primary = primary
        self.linkUp = linkUp
    }
}

/// Commands the framework sends to cache members.
public protocol CacheNodeControl: Sendable {
    /// Whether the member answers PING with PONG.
    func ping(_ endpoint: TaskEndpoint) async -> Bool
    /// `REPLICAOF host port`, or `REPLICAOF NO ONE` when `primary` is nil.
    func replicaOf(_ replica: TaskEndpoint, primary: TaskEndpoint?) async throws(NodeControlError)
    /// INFO replication, parsed.
    func replicationInfo(_ endpoint: TaskEndpoint) async throws(NodeControlError) -> ReplicationInfo
    /// `CLUSTER MYID`: the member's cluster node id.
    func clusterNodeID(_ endpoint: TaskEndpoint) async throws(NodeControlError) -> String
    /// `CLUSTER TOPOLOGY SET <epoch> <payload>`.
    func pushTopology(_ topology: SlotTopology, to endpoint: TaskEndpoint) async throws(NodeControlError)
    /// `CONFIG SET revocation-list <path>`: the member re-reads the signed list and installs it.
    func pushRevocationList(_ path: String, to endpoint: TaskEndpoint) async throws(NodeControlError)
    /// Moves a batch of slots between two primaries (see ``SchedulerAction/migrateSlots(cluster:_:)``); returns how
    /// many keys moved.
    func migrateSlots(_ migration: SlotMigration) async throws(NodeControlError) -> Int
    /// INFO memory and stats, for autoscaling (see `MemberLoad.swift`).
    func memberLoad(_ endpoint: TaskEndpoint) async throws(NodeControlError) -> MemberLoad
    /// This control reaching members whose endpoint has a `securePort` through the secure channel as `security`'s
    /// identity (the driver calls it with its authority's framework identity).
    func securing(with security: ControlSecurity) -> any CacheNodeControl
}

extension CacheNodeControl {
    /// Default for controls without a secure path (test doubles): unchanged.
    public func securing(with security: ControlSecurity) -> any CacheNodeControl { self }

    /// Default for controls without cluster mode: refuses.
    public func clusterNodeID(_ endpoint: TaskEndpoint) async throws(NodeControlError) -> String {
        throw NodeControlError(message: "\(endpoint) cannot be asked for its cluster node id by this control")
    }

    /// Default for controls that cannot push revocation lists: refuses.
    public func pushRevocationList(_ path: String, to endpoint: TaskEndpoint) async throws(NodeControlError) {
        throw NodeControlError(message: "\(endpoint) cannot be sent a revocation list by this control")
    }

    /// Default for controls without cluster mode: refuses.
    public func migrateSlots(_ migration: SlotMigration) async throws(NodeControlError) -> Int {
        throw NodeControlError(message: "\(migration.source) cannot migrate slots with this control")
    }

    /// Default for controls without cluster mode: refuses.
    public func pushTopology(_ topology: SlotTopology, to endpoint: TaskEndpoint) async throws(NodeControlError) {
        throw NodeControlError(message: "\(endpoint) cannot be sent a topology by this control")
    }
}

/// `CacheNodeControl` over RESP, one connection per call.
public struct RESPNodeControl: CacheNodeControl {
    /// Connect and reply timeout.
    public var timeout: Duration
    /// Reply timeout of a topology push (a member applies the whole topology before it answers).
    public var topologyTimeout: Duration
    /// Keys per GETKEYSINSLOT / MIGRATE during slot migration.
    public var migrationKeysPerRound = 500
    /// The framework's identity for members reached through the secure channel (endpoints with a `securePort`);
    /// `nil`: such endpoints are refused with an error saying so.
    public var security: ControlSecurity?
    private let group: any EventLoopGroup

    /// Creates a controller on NIO's shared event loop group.
    public init(timeout: Duration = .seconds(2), topologyTimeout: Duration = .seconds(5), security: ControlSecurity? = nil) {
        self.group = MultiThreadedEventLoopGroup.singleton
        self.timeout = timeout
        self.topologyTimeout = max(timeout, topologyTimeout)
        self.security = security
    }

    public func securing(with security: ControlSecurity) -> any CacheNodeControl {
        var secured = self
        secured.security = security
        return secured
    }

    public func ping(_ endpoint: TaskEndpoint) async -> Bool {
        (try? await command(["PING"], to: endpoint)) == .simple("PONG")
    }

    public func replicaOf(_ replica: TaskEndpoint, primary: TaskEndpoint?) async throws(NodeControlError) {
        let arguments = primary.map { ["REPLICAOF", $0.hostname, String($0.port)] } ?? ["REPLICAOF", "NO", "ONE"]
        let reply = try await command(arguments, to: replica)
        if case .error(let message) = reply {
            throw NodeControlError(message: "\(replica.hostname):\(replica.port) refused \(arguments.joined(separator: " ")): \(message)")
        }
    }

    public func replicationInfo(_ endpoint: TaskEndpoint) async throws(NodeControlError) -> ReplicationInfo {
        let reply = try await command(["INFO", "replication"], to: endpoint)
        guard case .bulk(let text?) = reply else {
            throw NodeControlError(message: "\(endpoint.hostname):\(endpoint.port) answered INFO replication with \(reply)")
        }
        return Self.parseReplicationInfo(text)
    }

    public func clusterNodeID(_ endpoint: TaskEndpoint) async throws(NodeControlError) -> String {
        let reply = try await command(["CLUSTER", "MYID"], to: endpoint)
        switch reply {
        case .bulk(let id?) where !id.isEmpty: return id
        case .simple(let id) where !id.isEmpty: return id
        default: throw NodeControlError(message: "\(endpoint.hostname):\(endpoint.port) answered CLUSTER MYID with \(reply)")
        }
    }

    public func pushTopology(_ topology: SlotTopology, to endpoint: TaskEndpoint) async throws(NodeControlError) {
        let reply = try await command(topology.command, to: endpoint, timeout: topologyTimeout)
        guard reply == .simple("OK") else {
            throw NodeControlError(
                message: "\(endpoint.hostname):\(endpoint.port) refused topology epoch \(topology.epoch): \(reply)")
        }
    }

    public func pushRevocationList(_ path: String, to endpoint: TaskEndpoint) async throws(NodeControlError) {
        let reply = try await command(["CONFIG", "SET", "revocation-list", path], to: endpoint)
        guard reply == .simple("OK") else {
            throw NodeControlError(message: "\(endpoint.hostname):\(endpoint.port) refused the revocation list \(path): \(reply)")
        }
    }

    public func migrateSlots(_ migration: SlotMigration) async throws(NodeControlError) -> Int {
        try await withConnection(to: migration.target) { target throws(NodeControlError) in
            try await withConnection(to: migration.source) { source throws(NodeControlError) in
                var migrator = SlotMigrator(
                    migration: migration, source: source, target: target, timeout: timeout, keysPerRound: migrationKeysPerRound)
                return try await migrator.run()
            }
        }
    }

    /// Runs `body` with one connection to `endpoint` (several commands, one after the other).
    func withConnection<Result: Sendable>(
        to endpoint: TaskEndpoint, _ body: (inout ControlConnection) async throws(NodeControlError) -> Result
    ) async throws(NodeControlError) -> Result {
        let address = Self.address(of: endpoint)
        let channel = try await connect(to: endpoint, timeout: timeout)
        let outcome: Swift.Result<Result, NodeControlError>
        do {
            outcome = try await channel.executeThenClose { inbound, outbound in
                var connection = ControlConnection(address: address, inbound: inbound.makeAsyncIterator(), outbound: outbound)
                do throws(NodeControlError) {
                    return .success(try await body(&connection))
                } catch {
                    return .failure(error)
                }
            }
        } catch {
            throw NodeControlError(message: "connection to \(address) failed: \(error)")
        }
        return try outcome.get()
    }

    /// `host:port` of `endpoint`, naming the secure port when the member is reached through it.
    static func address(of endpoint: TaskEndpoint) -> String {
        "\(endpoint.hostname):\(endpoint.port)" + (endpoint.securePort.map { " (secure port \($0))" } ?? "")
    }

    /// Opens a connection to `endpoint`: plain RESP to its client port, or, with a `securePort`, the secure channel to
    /// that port, authenticated as the framework and expecting the member's node id (its task id) and role cache-node.
    private func connect(
        to endpoint: TaskEndpoint, timeout: Duration
    ) async throws(NodeControlError) -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        let address = Self.address(of: endpoint)
        let connectTimeout = TimeAmount.nanoseconds(
            timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        guard let securePort = endpoint.securePort else {
            do {
                return try await bootstrap.connect(host: endpoint.hostname, port: Int(endpoint.port)) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            } catch {
                throw NodeControlError(message: "cannot reach \(address): \(error)")
            }
        }
        guard let security else {
            throw NodeControlError(
                message: "\(address) is controlled through the secure channel, but this control has no framework identity: "
                    + "give the driver the framework's authority (FrameworkAuthority) or the control a ControlSecurity")
        }
        let configuration = security.configuration(for: endpoint, handshakeTimeout: timeout)
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        let handshake: EventLoopFuture<NodeCertificate>
        do {
            (channel, handshake) = try await bootstrap.connect(host: endpoint.hostname, port: Int(securePort)) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try SecureChannel.addHandlers(
                        to: channel.pipeline.syncOperations, role: .client, configuration: configuration, eventLoop: channel.eventLoop)
                    return (try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel), handler.handshakeCompleted)
                }
            }
        } catch {
            throw NodeControlError(message: "cannot reach \(address): \(error)")
        }
        do {
            _ = try await handshake.get()
            return channel
        } catch {
            try? await channel.channel.close()
            throw NodeControlError(
                message: "the secure channel to \(address) failed (expected node \(endpoint.taskID.value), role cache-node): \(error)")
        }
    }

    /// Parses the text of `INFO replication`.
    public static func parseReplicationInfo(_ text: String) -> ReplicationInfo {
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        let role = fields["role"] ?? "master"
        let primary = fields["master_host"].map { host in "\(host):\(fields["master_port"] ?? "")" }
        let offset = UInt64(fields["master_repl_offset"] ?? fields["slave_repl_offset"] ?? "0") ?? 0
        return ReplicationInfo(role: role, offset: offset, primary: primary, linkUp: fields["master_link_status"] == "up")
    }

    /// Sends one command and returns its reply.
    public func command(_ arguments: [String], to endpoint: TaskEndpoint) async throws(NodeControlError) -> RESPReply {
        try await command(arguments, to: endpoint, timeout: timeout)
    }

    /// Sends one command and returns its reply, waiting up to `timeout`.
    public func command(
        _ arguments: [String], to endpoint: TaskEndpoint, timeout: Duration
    ) async throws(NodeControlError) -> RESPReply {
        let address = Self.address(of: endpoint)
        let channel = try await connect(to: endpoint, timeout: timeout)
        do {
            return try await channel.executeThenClose { inbound, outbound in
                var request = ByteBuffer()
                request.writeString("*\(arguments.count)\r\n")
                for argument in arguments {
                    request.writeString("$\(argument.utf8.count)\r\n\(argument)\r\n")
                }
                try await outbound.write(request)
                return try await withThrowingTaskGroup(of: RESPReply.self) { group in
                    group.addTask {
                        var buffer = ByteBuffer()
                        for try await chunk in inbound {
                            buffer.writeImmutableBuffer(chunk)
                            var view = buffer
                            if let reply = try RESPReplyParser.parse(&view) { return reply }
                        }
                        throw NodeControlError(message: "\(address) closed the connection before replying")
                    }
                    group.addTask {
                        try await Task.sleep(for: timeout)
                        throw NodeControlError(message: "\(address) did not reply within \(timeout)")
                    }
                    defer { group.cancelAll() }
                    return try await group.next()!
                }
            }
        } catch let error as NodeControlError {
            throw error
        } catch {
            throw NodeControlError(message: "cannot reach \(address): \(error)")
        }
    }
}

/// A small RESP2 reply parser for control replies.
enum RESPReplyParser {
    struct Malformed: Error {}

    /// Parses one reply from `buffer`, consuming it; `nil` if more bytes are needed.
    static func parse(_ buffer: inout ByteBuffer) throws -> RESPReply? {
        guard let line = readLine(&buffer) else { return nil }
        guard let type = line.first else { throw Malformed() }
        let rest = String(line.dropFirst())
        switch type {
        case "+": return .simple(rest)
        case "-": return .error(rest)
        case ":":
            guard let value = Int64(rest) else { throw Malformed() }
            return .integer(value)
        case "$":
            guard let length = Int(rest) else { throw Malformed() }
            if length < 0 { return .bulk(nil) }
            guard buffer.readableBytes >= length + 2, let text = buffer.readString(length: length) else { return nil }
            buffer.moveReaderIndex(forwardBy: 2)
            return .bulk(text)
        case "*":
            guard let count = Int(rest) else { throw Malformed() }
            if count < 0 { return .array(nil) }
            var items: [RESPReply] = []
            for _ in 0..<count {
                guard let item = try parse(&buffer) else { return nil }
                items.append(item)
            }
            return .array(items)
        default:
            throw Malformed()
        }
    }

    private static func readLine(_ buffer: inout ByteBuffer) -> String? {
        guard let view = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let length = view - buffer.readerIndex
        guard let line = buffer.readString(length: length + 1) else { return nil }
        // "\r\n" is one Character in Swift: dropping the last Character removes "\r\n" (or a bare "\n").
        return String(line.dropLast())
    }
}

extension CacheNodeControl {
    /// A `LocalBackend` readiness check: the member answers PING on the `--bind`/`--port` of its command line (at its
    /// own address under namespace isolation, `LocalBackend.addressLabel`).
    public func pingReadiness() -> LocalBackend.ReadinessCheck {
        { info in
            let arguments = info.command.arguments
            func value(_ flag: String) -> String? {
                arguments.firstIndex(of: flag).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
            }
            guard let port = value("--port").flatMap(UInt64.init) else { return false }
            let host = info.labels[LocalBackend.addressLabel] ?? value("--bind") ?? "127.0.0.1"
            return await self.ping(TaskEndpoint(taskID: info.taskID, hostname: host, port: port))
        }
    }
}

/// One control connection carrying several commands in turn (slot migration).
struct ControlConnection {
    let address: String
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var buffer = ByteBuffer()

    init(address: String, inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.address = address
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Sends one command and reads its reply.
    mutating func send(_ arguments: [String]) async throws(NodeControlError) -> RESPReply {
        try await pipeline([arguments])[0]
    }

    /// Sends commands in one write and reads their replies, in order.
    mutating func pipeline(_ commands: [[String]]) async throws(NodeControlError) -> [RESPReply] {
        guard !commands.isEmpty else { return [] }
        var request = ByteBuffer()
        for arguments in commands {
            request.writeString("*\(arguments.count)\r\n")
            for argument in arguments { request.writeString("$\(argument.utf8.count)\r\n\(argument)\r\n") }
        }
        let what = commands[0].prefix(3).joined(separator: " ")
        do {
            try await outbound.write(request)
            var replies: [RESPReply] = []
            replies.reserveCapacity(commands.count)
            while replies.count < commands.count {
                var view = buffer
                if let reply = try RESPReplyParser.parse(&view) {
                    buffer = view
                    buffer.discardReadBytes()
                    replies.append(reply)
                    continue
                }
                guard let chunk = try await inbound.next() else {
                    throw NodeControlError(message: "\(address) closed the connection before replying to \(what)")
                }
                buffer.writeImmutableBuffer(chunk)
            }
            return replies
        } catch let error as NodeControlError {
            throw error
        } catch {
            throw NodeControlError(message: "\(address) failed during \(what): \(error)")
        }
    }
}

/// Moves the slots of a `SlotMigration` with the steps of `redis-cli --cluster reshard` (`clusterManagerMoveSlot`),
/// a round of up to `slotsPerRound` slots at a time instead of a slot at a time. For each round:
/// 1. the target imports the round — one `CLUSTER SETSLOTSRANGE first last IMPORTING <source>` (cache-node's
///    batched SETSLOT) — then the source migrates it (`SETSLOTSRANGE … MIGRATING <target>`);
/// 2. keys move: one pipelined write of `GETKEYSINSLOT` per slot, then one of `MIGRATE … KEYS` per slot that still
///    has keys (keys of one slot per MIGRATE: it is routed like any keyed command), repeated for the slots that
///    returned a full count. A slot is empty once GETKEYSINSLOT returns fewer keys than asked and their MIGRATE
///    succeeded: a MIGRATING slot gains no keys on the source (writes of missing keys go to the target with -ASK);
/// 3. the target takes the round (`SETSLOTSRANGE … NODE <target>`), then the source gives it away (same command; it
///    refuses while it still holds a key of the round). Target before source, so a MOVED from the source never points
///    at a node that does not serve the slot yet.
/// Handing over per round rather than per batch keeps the time a moved key is reached through -ASK (two round trips
/// for the client) to one round; the other nodes learn the new owners from the topology pushed after the batch, and
/// until then send clients to the source, which answers -MOVED to the target.
///
/// Every step is idempotent, so a batch interrupted anywhere (framework restart, node error) is simply sent again: a
/// target that already owns some slots of the batch, or a source that already gave some away, refuses the range form,
/// and that step is redone per slot with redis's single-slot SETSLOT, skipping the slots that are done (also the path
/// for nodes without SETSLOTSRANGE). A key the target already holds (`BUSYKEY`: a source that crashed between the
/// target's acknowledgement and its own delete) is resolved as `redis-cli --cluster fix` does: the two values are
/// compared (DUMP on both sides) and the key is moved again with `REPLACE`. The source's value wins when they differ:
/// while a key exists on a MIGRATING source, every client command on it is served by the source (the target serves a
/// slot it imports only to ASKING clients, which the source sends only for keys it does not hold), so the source's
/// value is the one clients were reading and writing.
struct SlotMigrator {
    let migration: SlotMigration
    var source: ControlConnection
    var target: ControlConnection
    let timeout: Duration
    /// Keys per GETKEYSINSLOT / MIGRATE (redis-cli's default pipeline is 10; larger batches cost fewer round trips,
    /// and MIGRATE holds the keys' stripe lock for one round trip to the target either way).
    let keysPerRound: Int
    /// Slots whose GETKEYSINSLOT and MIGRATE go in one pipelined write.
    let slotsPerRound = 128
    /// Keys the target already held whose value differed from the source's (replaced; see the type's comment).
    private(set) var replacedDifferingKeys = 0
    /// Keys the target already held with the source's value (moved again with REPLACE).
    private(set) var replacedSameKeys = 0

    init(migration: SlotMigration, source: ControlConnection, target: ControlConnection, timeout: Duration, keysPerRound: Int = 500) {
        self.migration = migration
        self.source = source
        self.target = target
        self.timeout = timeout
        self.keysPerRound = max(1, keysPerRound)
    }

    /// Runs the batch, `slotsPerRound` slots at a time; returns the number of keys moved.
    mutating func run() async throws(NodeControlError) -> Int {
        let slots = Array(migration.slots.closedRange)
        var moved = 0
        for start in stride(from: 0, to: slots.count, by: slotsPerRound) {
            let round = Array(slots[start..<min(slots.count, start + slotsPerRound)])
            // 1. The target imports; slots it owns already were finished before a retry: only SETSLOT NODE remains.
            let pending = try await importing(round)
            // 2. The source migrates (a source that no longer owns a slot gave it away with no keys left).
            try await migrating(pending)
            // 3. Keys move until every slot is empty on the source.
            moved += try await moveKeys(pending)
            // 4. Both sides record the new owner, the target first.
            try await assign(round, on: \.target)
            try await assign(round, on: \.source)
        }
        return moved
    }

    /// `CLUSTER SETSLOTSRANGE` for `slots` (consecutive runs) with `action`.
    private func range(_ slots: [Int], _ action: [String]) -> [String] {
        var arguments = ["CLUSTER", "SETSLOTSRANGE"]
        var start = 0
        for index in slots.indices where index == slots.count - 1 || slots[index + 1] != slots[index] + 1 {
            arguments += [String(slots[start]), String(slots[index])]
            start = index + 1
        }
        return arguments + action
    }

    /// Step 1; returns the slots the target does not own yet.
    private mutating func importing(_ slots: [Int]) async throws(NodeControlError) -> [Int] {
        let action = ["IMPORTING", migration.sourceNodeID]
        if case .error = try await target.send(range(slots, action)) {
            // Some slot is owned already (a retried batch), or no SETSLOTSRANGE: per slot, skipping owned ones.
            var pending: [Int] = []
            let replies = try await target.pipeline(slots.map { ["CLUSTER", "SETSLOT", String($0)] + action })
            for (slot, reply) in zip(slots, replies) {
                if case .error(let message) = reply {
                    guard message.contains("already the owner") else { throw refused(target, "SETSLOT \(slot) IMPORTING", message) }
                } else {
                    pending.append(slot)
                }
            }
            return pending
        }
        return slots
    }

    /// Step 2.
    private mutating func migrating(_ slots: [Int]) async throws(NodeControlError) {
        guard !slots.isEmpty else { return }
        let action = ["MIGRATING", migration.targetNodeID]
        guard case .error = try await source.send(range(slots, action)) else { return }
        let replies = try await source.pipeline(slots.map { ["CLUSTER", "SETSLOT", String($0)] + action })
        for (slot, reply) in zip(slots, replies) {
            if case .error(let message) = reply, !message.contains("not the owner") {
                throw refused(source, "SETSLOT \(slot) MIGRATING", message)
            }
        }
    }

    /// Step 3 for one round of slots: until each is empty on the source. Returns the keys moved.
    private mutating func moveKeys(_ round: [Int]) async throws(NodeControlError) -> Int {
        let timeoutMS = String(max(1_000, timeout.components.seconds * 1_000))
        let host = migration.target.hostname
        let port = String(migration.target.port)
        var moved = 0
        var pending = round
        var replacing = Set<Int>()
        while !pending.isEmpty {
            let listed = try await source.pipeline(pending.map { ["CLUSTER", "GETKEYSINSLOT", String($0), String(keysPerRound)] })
            var batches: [(slot: Int, keys: [String])] = []
            for (slot, reply) in zip(pending, listed) {
                guard case .array(let items?) = reply else { throw refused(source, "GETKEYSINSLOT \(slot)", "\(reply)") }
                let keys = items.compactMap { item -> String? in if case .bulk(let key?) = item { key } else { nil } }
                if !keys.isEmpty { batches.append((slot, keys)) }
            }
            let answers = try await source.pipeline(batches.map { batch in
                ["MIGRATE", host, port, "", "0", timeoutMS] + (replacing.contains(batch.slot) ? ["REPLACE"] : []) + ["KEYS"] + batch.keys
            })
            var next: [Int] = []
            for (batch, answer) in zip(batches, answers) {
                switch answer {
                case .error(let message) where message.contains("BUSYKEY") && !replacing.contains(batch.slot):
                    // The keys the target acknowledged moved; the busy ones are still here: compare, then REPLACE.
                    try await compareBusyKeys(batch.keys)
                    replacing.insert(batch.slot)
                    next.append(batch.slot)
                case .error(let message):
                    throw refused(source, "MIGRATE of slot \(batch.slot)", message)
                default:
                    moved += batch.keys.count
                    if batch.keys.count >= keysPerRound { next.append(batch.slot) }
                }
            }
            pending = next
        }
        return moved
    }

    /// BUSYKEY: counts which of `keys` the target holds with the same value as the source, and which differ.
    private mutating func compareBusyKeys(_ keys: [String]) async throws(NodeControlError) {
        let dumps = keys.map { ["DUMP", $0] }
        let mine = try await source.pipeline(dumps)
        // The target imports the slot: it answers for it only after ASKING (one command each).
        let theirs = try await target.pipeline(keys.flatMap { [["ASKING"], ["DUMP", $0]] }).enumerated()
            .filter { $0.offset % 2 == 1 }.map(\.element)
        for (own, other) in zip(mine, theirs) {
            guard case .bulk(let ownValue?) = own, case .bulk(let otherValue?) = other else { continue }
            if ownValue == otherValue { replacedSameKeys += 1 } else { replacedDifferingKeys += 1 }
        }
    }

    /// Step 4 on one side.
    private mutating func assign(_ slots: [Int], on side: WritableKeyPath<SlotMigrator, ControlConnection>) async throws(NodeControlError) {
        let action = ["NODE", migration.targetNodeID]
        if case .error(let message) = try await self[keyPath: side].send(range(slots, action)) {
            // Without SETSLOTSRANGE: per slot. Refusals name their slot (e.g. keys still on the source).
            guard message.contains("nknown subcommand") else { throw refused(self[keyPath: side], "SETSLOTSRANGE … NODE", message) }
            let replies = try await self[keyPath: side].pipeline(slots.map { ["CLUSTER", "SETSLOT", String($0)] + action })
            for (slot, reply) in zip(slots, replies) {
                if case .error(let message) = reply { throw refused(self[keyPath: side], "SETSLOT \(slot) NODE", message) }
            }
        }
    }

    private func refused(_ connection: ControlConnection, _ what: String, _ message: String) -> NodeControlError {
        NodeControlError(message: "\(connection.address) refused \(what): \(message)")
    }
}
