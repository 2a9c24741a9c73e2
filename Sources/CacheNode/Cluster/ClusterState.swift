// A cluster-mode node's view of the cluster: the ClusterTopology value behind a lock, the routing snapshot the
// dispatcher reads per keyed command (republished after each change), nodes.conf persistence, and the seam through
// which role changes reach replication.
//
// Design: topology is pushed, not gossiped. The scheduler framework (CacheFramework) is the source of truth and
// sends every node the whole topology with a configuration epoch (CLUSTER TOPOLOGY SET); nodes keep the newest
// epoch and refuse older ones. Between pushes, nodes answer from what they were told plus the local redis commands
// that operators and redis-cli --cluster use (ADDSLOTS, SETSLOT…). See the CacheNode docs, "Cluster topology".
import CacheStore
import Foundation
import Logging
import Synchronization

/// A change of this node's replication role decided by the cluster topology (the seam to replication).
public enum ClusterRoleChange: Sendable, Hashable {
    /// Replicate the primary at this address (REPLICAOF host port).
    case replicate(host: String, port: Int)
    /// Stop replicating (REPLICAOF NO ONE).
    case becomePrimary
}

/// Cluster state of a node started with `cluster-enabled yes`.
public final class ClusterState: Sendable {
    private let topologyStorage: Mutex<(topology: ClusterTopology, lastPayload: String?)>
    private let routingStorage: Mutex<ClusterRouting>
    private let peersStorage: Mutex<ClusterPeerPool>
    private let roleHandler = Mutex<(@Sendable (ClusterRoleChange) -> Void)?>(nil)
    /// Where nodes.conf is written (absolute), or `nil` to keep nothing.
    let configFilePath: String?
    let configWriter: ClusterConfigWriter?
    private let announcedIP: String
    private let announcedPort: Int
    private let announcedBusPort: Int
    /// The secure listener's port, announced as the cluster bus port (0 until bound or without an identity).
    private let securePort = Atomic<Int>(0)

    /// Creates the state from the configuration, loading `cluster-config-file` if it exists.
    public init(configuration: NodeConfiguration) {
        let ip = configuration.clusterAnnounceIP.isEmpty ? (configuration.bind.first ?? "127.0.0.1") : configuration.clusterAnnounceIP
        announcedIP = ip == "0.0.0.0" || ip == "*" ? "127.0.0.1" : ip
        announcedPort = configuration.clusterAnnouncePort
        announcedBusPort = configuration.clusterAnnounceBusPort
        let file = configuration.clusterConfigFile
        if file.isEmpty {
            configFilePath = nil
        } else {
            configFilePath = file.hasPrefix("/") ? file : configuration.directory + "/" + file
        }
        let port = announcedPort != 0 ? announcedPort : configuration.port
        var topology = ClusterTopology(
            myself: ClusterNodeRecord(id: ClusterTopology.randomID(), ip: announcedIP, port: port,
                                      busPort: announcedBusPort != 0 ? announcedBusPort : nil))
        if let path = configFilePath, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            topology = Self.load(text, fallback: topology)
        }
        peersStorage = Mutex(ClusterPeerPool(transport: NodePeerTransport(
            policy: configuration.replicationPlaintext ? .plaintext : .refused, logger: Logger(label: "cache-node.cluster"))))
        topologyStorage = Mutex((topology, nil))
        routingStorage = Mutex(ClusterRouting(topology))
        configWriter = configFilePath.map(ClusterConfigWriter.init(path:))
    }

    /// The current topology (a copy).
    public var topology: ClusterTopology { topologyStorage.withLock { $0.topology } }

    /// This node's id.
    public var myID: String { topology.myID }

    /// Connections to other nodes (MIGRATE, MEET): ``NodePeerTransport`` (plaintext only by opt-in; the server
    /// installs the secure one when the node has an identity).
    public var peers: ClusterPeerPool { peersStorage.withLock { $0 } }

    /// Sends node-to-node traffic through `transport` from now on (e.g. ``PeerLinkTransport`` with the node's
    /// secure channel configuration when identities are configured).
    public func usePeerTransport(_ transport: any ClusterPeerTransport) {
        let pool = ClusterPeerPool(transport: transport)
        peersStorage.withLock { $0 = pool }
    }

    /// The snapshot routing reads.
    var routing: ClusterRouting { routingStorage.withLock { $0 } }

    /// Sets who applies role changes (replication connects here; until then they are only recorded).
    public func onRoleChange(_ handler: @escaping @Sendable (ClusterRoleChange) -> Void) {
        roleHandler.withLock { $0 = handler }
    }

    /// The bus port this node announces: `cluster-announce-bus-port`, else its secure listener's port, else the
    /// redis convention (client port + 10000).
    private var myBusPort: Int? {
        if announcedBusPort != 0 { return announcedBusPort }
        let secure = securePort.load(ordering: .relaxed)
        return secure > 0 ? secure : nil
    }

    /// Records the port the listener bound when no `cluster-announce-port` is set.
    public func listenerBound(port: Int) {
        guard announcedPort == 0 else { return }
        let busPort = myBusPort
        _ = try? mutate { (topology: inout ClusterTopology) throws(CommandError) in
            if topology.myself.port != port || (busPort != nil && topology.myself.busPort != busPort) {
                topology.setMyAddress(ip: topology.myself.ip, port: port, busPort: busPort)
            }
        }
    }

    /// Records the secure (replication) listener's port: announced as this node's cluster bus port, where peers
    /// with identities send MIGRATE and MEET (see ``NodePeerTransport``), unless `cluster-announce-bus-port` is set.
    public func secureListenerBound(port: Int) {
        guard announcedBusPort == 0 else { return }
        securePort.store(port, ordering: .relaxed)
        _ = try? mutate { (topology: inout ClusterTopology) throws(CommandError) in
            if topology.myself.busPort != port {
                topology.setMyAddress(ip: topology.myself.ip, port: topology.myself.port, busPort: port)
            }
        }
    }

    /// The secure port and id the topology gives for the node at `host:port` (its bus port), or `nil`.
    public func secureAddress(host: String, port: Int) -> PeerSecureAddress? {
        let topology = self.topology
        guard let record = topology.nodes.values.first(where: { $0.port == port && $0.ip == host && $0.id != topology.myID })
        else { return nil }
        return PeerSecureAddress(port: record.busPort, clusterNodeID: record.id)
    }

    /// Changes the topology, then republishes routing, saves nodes.conf and reports a role change.
    /// - Parameter durable: `true` (the default): nodes.conf is written before this returns (so before the command's
    ///   reply); `false`: the write is coalesced and done off the event loop (see ``ClusterConfigWriter``).
    @discardableResult
    public func mutate<Result>(
        durable: Bool = true, _ body: (inout ClusterTopology) throws(CommandError) -> Result
    ) throws(CommandError) -> Result {
        let (result, before, after) = try topologyStorage.withLock {
            (state: inout (topology: ClusterTopology, lastPayload: String?)) throws(CommandError) -> (Result, ClusterTopology, ClusterTopology) in
            let before = state.topology
            var copy = state.topology
            let result = try body(&copy)
            state.topology = copy
            publishRouting(copy, before: before)
            return (result, before, copy)
        }
        publish(after, before: before, durable: durable)
        return result
    }

    /// CLUSTER SETSLOT / SETSLOTSRANGE: ``ClusterTopology/setSlots(_:_:keysInSlot:)`` with the cheap path a reshard
    /// needs — the routing snapshot is derived from the previous one by looking up only `slots` again, and nodes.conf
    /// is written coalesced, off the event loop (``ClusterConfigWriter``; why that is enough is written there).
    /// - Parameters:
    ///   - keyCounts: the keys this node holds in the slots it gives away (``slotsToCount(_:_:)``), counted before
    ///     the call: stripe locks are never taken under the topology lock (MIGRATE takes them in the other order).
    public func setSlots(
        _ slots: [Int], _ action: ClusterTopology.SlotAction, keyCounts: [Int: Int]
    ) throws(CommandError) {
        let (before, after) = try topologyStorage.withLock {
            (state: inout (topology: ClusterTopology, lastPayload: String?)) throws(CommandError) -> (ClusterTopology, ClusterTopology) in
            let before = state.topology
            var copy = state.topology
            try copy.setSlots(slots, action) { keyCounts[$0] ?? 0 }
            state.topology = copy
            let previous = routingStorage.withLock { $0 }
            let routing: ClusterRouting
            if case .node = action {
                routing = ClusterRouting(copy, reusing: previous, changedSlots: slots)
            } else {
                routing = ClusterRouting(copy, reusing: previous, unchangedSlots: true)
            }
            routingStorage.withLock { $0 = routing }
            return (before, copy)
        }
        publish(after, before: before, durable: false)
    }

    /// CLUSTER TOPOLOGY SET: applies a pushed topology (see ``ClusterTopology/apply(epoch:lines:previousPayload:payload:)``).
    public func applyPush(epoch: UInt64, payload: String) throws(CommandError) {
        let lines = try ClusterTopology.parseNodes(payload)
        let (before, after) = try topologyStorage.withLock {
            (state: inout (topology: ClusterTopology, lastPayload: String?)) throws(CommandError) -> (ClusterTopology, ClusterTopology) in
            let before = state.topology
            var copy = state.topology
            try copy.apply(epoch: epoch, lines: lines, previousPayload: state.lastPayload, payload: payload)
            // This node's own bus port is its secure port, whatever the push says (peers fall back to asking).
            if let busPort = myBusPort, copy.myself.busPort != busPort {
                copy.setMyAddress(ip: copy.myself.ip, port: copy.myself.port, busPort: busPort)
            }
            state.topology = copy
            state.lastPayload = payload
            publishRouting(copy, before: before)
            return (before, copy)
        }
        publish(after, before: before, durable: true)
    }

    /// The slots of `slots` whose keys ``setSlots(_:_:keyCounts:)`` needs counted: with `NODE <other id>`, those this
    /// node serves now (redis refuses to give away a slot that still holds keys).
    public func slotsToCount(_ slots: [Int], _ action: ClusterTopology.SlotAction) -> [Int] {
        guard case .node(let id) = action else { return [] }
        let routing = self.routing
        guard id != routing.ids[Int(routing.myIndex)] else { return [] }
        return slots.filter { routing.owners[$0] == routing.myIndex }
    }

    /// Republishes the routing snapshot; called with the topology lock held, so snapshots follow changes in order.
    private func publishRouting(_ topology: ClusterTopology, before: ClusterTopology) {
        let unchanged = before.owners.slots == topology.owners.slots && before.owners.ids == topology.owners.ids
        let previous = unchanged ? routingStorage.withLock { $0 } : nil
        let routing = ClusterRouting(topology, reusing: previous, unchangedSlots: unchanged)
        routingStorage.withLock { $0 = routing }
    }

    /// After a change: nodes.conf and the replication seam.
    private func publish(_ topology: ClusterTopology, before: ClusterTopology, durable: Bool) {
        if let configWriter {
            if durable { configWriter.write(topology) } else { configWriter.schedule(topology) }
        }
        let oldPrimary = before.myPrimary
        let newPrimary = topology.myPrimary
        if oldPrimary?.address != newPrimary?.address || oldPrimary?.id != newPrimary?.id {
            let change: ClusterRoleChange = newPrimary.map { .replicate(host: $0.ip, port: $0.port) } ?? .becomePrimary
            roleHandler.withLock { $0 }?(change)
        }
    }

    /// Writes nodes.conf now if a coalesced write is pending (CLUSTER SAVECONFIG, shutdown).
    public func flushConfig() {
        configWriter?.flush()
    }

    // MARK: nodes.conf

    /// Rebuilds a topology from nodes.conf text; `fallback` if the file has no `myself` line.
    static func load(_ text: String, fallback: ClusterTopology) -> ClusterTopology {
        guard let lines = try? ClusterTopology.parseNodes(text), let me = lines.first(where: \.isMyself) else { return fallback }
        var topology = ClusterTopology(myself: me.record)
        var epoch: UInt64 = 0
        for line in text.split(separator: "\n") where line.hasPrefix("vars ") {
            let words = line.split(separator: " ")
            if let index = words.firstIndex(of: "topologyEpoch"), index + 1 < words.count { epoch = UInt64(words[index + 1]) ?? 0 }
        }
        var adjusted = lines
        for index in adjusted.indices where adjusted[index].isMyself {
            adjusted[index].record.ip = fallback.myself.ip
        }
        try? topology.apply(epoch: epoch, lines: adjusted, previousPayload: nil, payload: "")
        return topology
    }
}
