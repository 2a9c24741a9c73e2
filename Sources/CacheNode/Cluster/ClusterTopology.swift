// What a cluster node believes about the cluster: the known nodes, which primary owns each of the 16384 slots,
// the slots this node is migrating or importing, and the epochs. A pure value: every mutation (a pushed topology,
// CLUSTER ADDSLOTS/SETSLOT/…) is a method that validates with redis's error wording and changes the value; the
// node wraps it in ClusterState, which publishes a routing snapshot after each change.
//
// The text form is the CLUSTER NODES line format (redis cluster_legacy.c clusterGenNodeDescription), used for the
// reply, for nodes.conf, and as the payload of CLUSTER TOPOLOGY SET:
//   <id> <ip:port@cport[,hostname]> <flags> <primary-id|-> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot>…
// where a slot is `n` or `a-b`, and on the line of the node itself `[n->-target]` (migrating) or `[n-<-source]`
// (importing).

import CacheStore
import Foundation

/// One node as the cluster knows it.
public struct ClusterNodeRecord: Sendable, Hashable {
    /// 40 lowercase hex digits.
    public var id: String
    public var ip: String
    /// The client port.
    public var port: Int
    /// The cluster bus port (reported only: there is no bus; redis convention port + 10000).
    public var busPort: Int
    public var hostname: String
    /// The primary this node replicates, or `nil` for a primary.
    public var primaryID: String?
    /// The configuration epoch of the node's slot claims.
    public var configEpoch: UInt64
    /// Marked failed by the topology source (`fail` flag; its slots count as failed).
    public var isFailed: Bool

    public init(
        id: String, ip: String, port: Int, busPort: Int? = nil, hostname: String = "", primaryID: String? = nil,
        configEpoch: UInt64 = 0, isFailed: Bool = false
    ) {
        self.id = id
        self.ip = ip
        self.port = port
        self.busPort = busPort ?? (port + 10000)
        self.hostname = hostname
        self.primaryID = primaryID
        self.configEpoch = configEpoch
        self.isFailed = isFailed
    }

    /// Whether this node is a primary.
    public var isPrimary: Bool { primaryID == nil }

    /// `ip:port`, as MOVED/ASK name it.
    public var address: String { "\(ip):\(port)" }
}

/// The owner of each of the 16384 slots (a node id or `nil`), stored as indices into a small table of ids so that
/// copying and scanning it touches no strings.
public struct SlotOwners: RandomAccessCollection, Sendable {
    /// Per slot, an index into ``ids``, or -1.
    public private(set) var slots = [Int32](repeating: -1, count: HashSlot.count)
    /// The ids referenced by ``slots``.
    public private(set) var ids: [String] = []
    private var positions: [String: Int32] = [:]

    public init() {}

    public var startIndex: Int { 0 }
    public var endIndex: Int { HashSlot.count }

    public subscript(slot: Int) -> String? {
        get {
            let index = slots[slot]
            return index < 0 ? nil : ids[Int(index)]
        }
        set { slots[slot] = newValue.map { intern($0) } ?? -1 }
    }

    private mutating func intern(_ id: String) -> Int32 {
        if let position = positions[id] { return position }
        let position = Int32(ids.count)
        ids.append(id)
        positions[id] = position
        return position
    }
}

/// One node line parsed from the CLUSTER NODES format.
public struct ClusterNodeLine: Sendable, Hashable {
    public var record: ClusterNodeRecord
    public var isMyself: Bool
    /// Slot ranges this node serves.
    public var slots: [ClosedRange<Int>]
    /// `[slot->-target]` entries.
    public var migrating: [Int: String]
    /// `[slot-<-source]` entries.
    public var importing: [Int: String]
}

/// The cluster as this node sees it.
public struct ClusterTopology: Sendable {
    /// This node's id.
    public private(set) var myID: String
    /// The highest epoch seen (`cluster_current_epoch`).
    public private(set) var currentEpoch: UInt64 = 0
    /// The epoch of the last accepted CLUSTER TOPOLOGY SET (0 = none yet).
    public private(set) var topologyEpoch: UInt64 = 0
    /// Known nodes by id, this node included.
    public private(set) var nodes: [String: ClusterNodeRecord]
    /// The owner of each slot (node id), `nil` when unassigned.
    public private(set) var owners = SlotOwners()
    /// Slots this node is handing to another node (slot → target id).
    public private(set) var migrating: [Int: String] = [:]
    /// Slots this node is receiving (slot → source id).
    public private(set) var importing: [Int: String] = [:]

    /// A topology with only this node, owning nothing.
    public init(myself: ClusterNodeRecord) {
        myID = myself.id
        nodes = [myself.id: myself]
    }

    /// This node's record.
    public var myself: ClusterNodeRecord { nodes[myID]! }

    /// The node this node replicates, if it is a replica.
    public var myPrimary: ClusterNodeRecord? { myself.primaryID.flatMap { nodes[$0] } }

    /// Number of assigned slots.
    public var assignedSlotCount: Int { owners.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    /// Whether every slot is served by a node not marked failed (`cluster_state:ok`, full coverage required).
    public var isHealthy: Bool {
        let failed = owners.ids.map { nodes[$0]?.isFailed ?? true }
        for owner in owners.slots {
            if owner < 0 || failed[Int(owner)] { return false }
        }
        return true
    }

    /// The slot ranges `id` serves, in order.
    public func slotRanges(of id: String) -> [ClosedRange<Int>] {
        var ranges: [ClosedRange<Int>] = []
        var start = -1
        for slot in 0...HashSlot.count {
            let owned = slot < HashSlot.count && owners[slot] == id
            if owned && start < 0 { start = slot }
            if !owned && start >= 0 {
                ranges.append(start...(slot - 1))
                start = -1
            }
        }
        return ranges
    }

    /// Number of slots served by `id`.
    public func slotCount(of id: String) -> Int { owners.reduce(0) { $0 + ($1 == id ? 1 : 0) } }

    /// The replicas of primary `id`, ordered by id.
    public func replicas(of id: String) -> [ClusterNodeRecord] {
        nodes.values.filter { $0.primaryID == id }.sorted { $0.id < $1.id }
    }

    // MARK: local mutations (redis CLUSTER subcommands)

    /// Updates this node's own address (after the listener bound its port, or from `cluster-announce-*`).
    public mutating func setMyAddress(ip: String, port: Int, busPort: Int?) {
        nodes[myID]!.ip = ip
        nodes[myID]!.port = port
        nodes[myID]!.busPort = busPort ?? (port + 10000)
    }

    /// CLUSTER ADDSLOTS / ADDSLOTSRANGE: this node starts serving `slots`.
    public mutating func addSlots(_ slots: [Int]) throws(CommandError) {
        try checkPrimary()
        var seen = Set<Int>()
        for slot in slots {
            if owners[slot] != nil { throw CommandError("Slot \(slot) is already busy") }
            if !seen.insert(slot).inserted { throw CommandError("Slot \(slot) specified multiple times") }
        }
        for slot in slots {
            importing[slot] = nil
            owners[slot] = myID
        }
    }

    /// CLUSTER DELSLOTS / DELSLOTSRANGE: the slots become unassigned here.
    public mutating func deleteSlots(_ slots: [Int]) throws(CommandError) {
        var seen = Set<Int>()
        for slot in slots {
            if owners[slot] == nil { throw CommandError("Slot \(slot) is already unassigned") }
            if !seen.insert(slot).inserted { throw CommandError("Slot \(slot) specified multiple times") }
        }
        for slot in slots {
            owners[slot] = nil
            importing[slot] = nil
            migrating[slot] = nil
        }
    }

    /// CLUSTER FLUSHSLOTS: unassign every slot of this node (`keyCount` must be 0, as redis requires).
    public mutating func flushSlots(keyCount: Int) throws(CommandError) {
        guard keyCount == 0 else { throw CommandError("DB must be empty to perform CLUSTER FLUSHSLOTS.") }
        for slot in 0..<HashSlot.count where owners[slot] == myID { owners[slot] = nil }
        migrating = [:]
        importing = [:]
    }

    /// What CLUSTER SETSLOT asks for.
    public enum SlotAction: Sendable, Hashable {
        case importing(from: String)
        case migrating(to: String)
        case node(String)
        case stable
    }

    /// CLUSTER SETSLOT: the migration state machine of one slot (redis cluster.c clusterCommandSetSlot).
    /// - Parameters:
    ///   - keysInSlot: how many keys this node holds in `slot` (checked when giving the slot away).
    public mutating func setSlot(_ slot: Int, _ action: SlotAction, keysInSlot: Int) throws(CommandError) {
        if myself.primaryID != nil { throw CommandError("Please use SETSLOT only with masters.") }
        switch action {
        case .migrating(let target):
            guard owners[slot] == myID else { throw CommandError("I'm not the owner of hash slot \(slot)") }
            guard let node = nodes[target] else { throw CommandError("I don't know about node \(target)") }
            guard node.isPrimary else { throw CommandError("Target node is not a master") }
            migrating[slot] = target
        case .importing(let source):
            if owners[slot] == myID { throw CommandError("I'm already the owner of hash slot \(slot)") }
            guard let node = nodes[source] else { throw CommandError("I don't know about node \(source)") }
            guard node.isPrimary else { throw CommandError("Target node is not a master") }
            importing[slot] = source
        case .stable:
            importing[slot] = nil
            migrating[slot] = nil
        case .node(let id):
            guard let node = nodes[id] else { throw CommandError("Unknown node \(id)") }
            guard node.isPrimary else { throw CommandError("Target node is not a master") }
            if owners[slot] == myID && id != myID && keysInSlot > 0 {
                throw CommandError(
                    "Can't assign hashslot \(slot) to a different node while I still hold keys for this hash slot.")
            }
            // Handing the slot away with no keys left ends the migration.
            if keysInSlot == 0 && migrating[slot] != nil { migrating[slot] = nil }
            // Taking over a slot we were importing ends the import and claims it with a new epoch, so the
            // topology source (and any node comparing epochs) sees this claim as the newest.
            if id == myID && importing[slot] != nil {
                importing[slot] = nil
                _ = bumpEpoch()
            }
            owners[slot] = id
        }
    }

    /// CLUSTER SETSLOTSRANGE (a cache-node extension): ``setSlot(_:_:keysInSlot:)`` for every slot of `slots`, all or
    /// none — the first slot refused leaves the topology unchanged and its error names that slot, as the single-slot
    /// form would. Claiming imported slots bumps the epoch once for the whole batch.
    /// - Parameters:
    ///   - keysInSlot: how many keys this node holds in a slot (asked only for slots it gives away).
    public mutating func setSlots(
        _ slots: some Sequence<Int>, _ action: SlotAction, keysInSlot: (Int) -> Int
    ) throws(CommandError) {
        var copy = self
        for slot in slots {
            var keys = 0
            if case .node(let id) = action, id != myID, copy.owners[slot] == myID { keys = keysInSlot(slot) }
            try copy.setSlot(slot, action, keysInSlot: keys)
        }
        self = copy
    }

    /// CLUSTER MEET (after the peer answered): learn `node`, or refresh its address.
    public mutating func learn(_ node: ClusterNodeRecord) {
        guard node.id != myID else { return }
        nodes[node.id] = node
    }

    /// CLUSTER FORGET.
    public mutating func forget(_ id: String) throws(CommandError) {
        if id == myID { throw CommandError("I tried hard but I can't forget myself...") }
        guard nodes[id] != nil else { throw CommandError("Unknown node \(id)") }
        if myself.primaryID == id { throw CommandError("Can't forget my master!") }
        nodes[id] = nil
        for slot in 0..<HashSlot.count where owners[slot] == id { owners[slot] = nil }
        migrating = migrating.filter { $0.value != id }
        importing = importing.filter { $0.value != id }
    }

    /// CLUSTER REPLICATE: this node becomes a replica of `primaryID`.
    /// - Parameters:
    ///   - keyCount: keys held here; a primary with keys or slots cannot become a replica (redis's rule).
    public mutating func replicate(_ primaryID: String, keyCount: Int) throws(CommandError) {
        guard let primary = nodes[primaryID] else { throw CommandError("Unknown node \(primaryID)") }
        if primaryID == myID { throw CommandError("Can't replicate myself") }
        guard primary.isPrimary else { throw CommandError("I can only replicate a master, not a replica.") }
        if myself.isPrimary && (slotCount(of: myID) > 0 || keyCount > 0) {
            throw CommandError("To set a master the node must be empty and without assigned slots.")
        }
        nodes[myID]!.primaryID = primaryID
        migrating = [:]
        importing = [:]
    }

    /// CLUSTER FAILOVER (the local half): this replica takes over its primary's slots with a new epoch, and the
    /// old primary becomes its replica. Returns the old primary's id.
    public mutating func takeOver() throws(CommandError) -> String {
        guard let primaryID = myself.primaryID, nodes[primaryID] != nil else {
            throw CommandError("You should send CLUSTER FAILOVER to a replica")
        }
        for slot in 0..<HashSlot.count where owners[slot] == primaryID { owners[slot] = myID }
        nodes[myID]!.primaryID = nil
        for id in Array(nodes.keys) where id == primaryID || nodes[id]!.primaryID == primaryID {
            nodes[id]!.primaryID = myID
        }
        currentEpoch += 1
        nodes[myID]!.configEpoch = currentEpoch
        return primaryID
    }

    /// CLUSTER SET-CONFIG-EPOCH.
    public mutating func setConfigEpoch(_ epoch: UInt64) throws(CommandError) {
        if nodes.count > 1 {
            throw CommandError("The user can assign a config epoch only when the node does not know any other node.")
        }
        if myself.configEpoch != 0 { throw CommandError("Node config epoch is already non-zero") }
        nodes[myID]!.configEpoch = epoch
        currentEpoch = max(currentEpoch, epoch)
    }

    /// CLUSTER BUMPEPOCH: a new config epoch for this node unless it already has the highest. Returns whether it
    /// bumped, and the node's epoch.
    public mutating func bumpEpoch() -> (bumped: Bool, epoch: UInt64) {
        let highest = nodes.values.map(\.configEpoch).max() ?? 0
        if myself.configEpoch == 0 || myself.configEpoch != highest || nodes.values.filter({ $0.configEpoch == highest }).count > 1 {
            currentEpoch += 1
            nodes[myID]!.configEpoch = currentEpoch
            return (true, currentEpoch)
        }
        return (false, myself.configEpoch)
    }

    /// CLUSTER RESET: forget every other node and every slot; a hard reset also takes a new id and zeroes epochs.
    public mutating func reset(hard: Bool, newID: String, keyCount: Int) throws(CommandError) {
        if myself.isPrimary && keyCount > 0 {
            throw CommandError("CLUSTER RESET can't be called with master nodes containing keys")
        }
        var me = myself
        me.primaryID = nil
        if hard {
            me.id = newID
            me.configEpoch = 0
            currentEpoch = 0
            topologyEpoch = 0
        }
        myID = me.id
        nodes = [me.id: me]
        owners = SlotOwners()
        migrating = [:]
        importing = [:]
    }

    // MARK: pushed topology

    /// CLUSTER TOPOLOGY SET: replaces what this node believes with the topology source's view at `epoch`.
    ///
    /// An epoch below the last accepted one is refused (`-STALEEPOCH`); the same epoch is accepted only with the
    /// same content (a retried push). This node keeps its own id and address if the push lacks it (it then serves
    /// nothing); migration brackets on its own line set its migrating/importing slots.
    public mutating func apply(epoch: UInt64, lines: [ClusterNodeLine], previousPayload: String?, payload: String) throws(CommandError) {
        if epoch < topologyEpoch || (epoch == topologyEpoch && topologyEpoch != 0 && payload != previousPayload) {
            throw CommandError(
                code: "STALEEPOCH",
                "topology epoch \(epoch) is not newer than the applied epoch \(topologyEpoch); push a higher epoch")
        }
        var newNodes: [String: ClusterNodeRecord] = [:]
        var newOwners = SlotOwners()
        var newMigrating: [Int: String] = [:]
        var newImporting: [Int: String] = [:]
        for line in lines {
            if newNodes[line.record.id] != nil { throw CommandError("node \(line.record.id) appears twice in the topology") }
            newNodes[line.record.id] = line.record
            for range in line.slots {
                for slot in range {
                    if let other = newOwners[slot] {
                        throw CommandError("slot \(slot) is assigned to both \(other) and \(line.record.id) in the topology")
                    }
                    newOwners[slot] = line.record.id
                }
            }
            if line.record.id == myID {
                newMigrating = line.migrating
                newImporting = line.importing
            }
        }
        for node in newNodes.values {
            if let primary = node.primaryID, newNodes[primary] == nil {
                throw CommandError("node \(node.id) replicates \(primary), which is not in the topology")
            }
            // `ids` holds exactly the owners of a fresh SlotOwners (scanning 16384 slots per replica was seconds).
            if node.primaryID != nil && newOwners.ids.contains(node.id) {
                throw CommandError("replica \(node.id) cannot own slots")
            }
        }
        if newNodes[myID] == nil { newNodes[myID] = myself }
        nodes = newNodes
        owners = newOwners
        migrating = newMigrating
        importing = newImporting
        topologyEpoch = epoch
        currentEpoch = max(currentEpoch, epoch, newNodes.values.map(\.configEpoch).max() ?? 0)
    }

    private func checkPrimary() throws(CommandError) {
        if myself.primaryID != nil { throw CommandError("Please use ADDSLOTS only with masters.") }
    }

    // MARK: text form

    /// CLUSTER NODES: one line per node (redis's format), this node marked `myself`.
    /// - Parameter now: unix ms, reported as the last pong of connected peers.
    public func nodesDescription(now: Int64) -> String {
        var text = ""
        // Pre-compute every node's ranges in one pass over the slots.
        var ranges: [String: [ClosedRange<Int>]] = [:]
        var start = 0
        for slot in 1...HashSlot.count {
            if slot == HashSlot.count || owners.slots[slot] != owners.slots[start] {
                if let owner = owners[start] { ranges[owner, default: []].append(start...(slot - 1)) }
                start = slot
            }
        }
        for node in nodes.values.sorted(by: { $0.id < $1.id }) {
            let isMe = node.id == myID
            var flags: [String] = []
            if isMe { flags.append("myself") }
            flags.append(node.isPrimary ? "master" : "slave")
            if node.isFailed { flags.append("fail") }
            let epoch = node.primaryID.flatMap { nodes[$0]?.configEpoch } ?? node.configEpoch
            var line = "\(node.id) \(node.ip):\(node.port)@\(node.busPort)"
            if !node.hostname.isEmpty { line += ",\(node.hostname)" }
            line += " \(flags.joined(separator: ",")) \(node.primaryID ?? "-") 0 \(isMe ? 0 : now) \(epoch) connected"
            for range in ranges[node.id] ?? [] {
                line += range.count == 1 ? " \(range.lowerBound)" : " \(range.lowerBound)-\(range.upperBound)"
            }
            if isMe {
                for slot in 0..<HashSlot.count {
                    if let target = migrating[slot] {
                        line += " [\(slot)->-\(target)]"
                    } else if let source = importing[slot] {
                        line += " [\(slot)-<-\(source)]"
                    }
                }
            }
            text += line + "\n"
        }
        return text
    }

    /// Parses CLUSTER NODES text (lines as ``nodesDescription(now:)`` writes them; `vars` lines are skipped).
    public static func parseNodes(_ text: String) throws(CommandError) -> [ClusterNodeLine] {
        var result: [ClusterNodeLine] = []
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let fields = rawLine.split(separator: " ").map(String.init)
            if fields.isEmpty || fields[0] == "vars" { continue }
            guard fields.count >= 8 else { throw CommandError("topology line has \(fields.count) fields, expected at least 8: \(rawLine)") }
            let id = fields[0]
            guard isValidNodeID(id) else { throw CommandError("invalid node id '\(id)': expected 40 hex digits") }
            // ip:port@cport[,hostname]
            let addressParts = fields[1].split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false)
            let endpoint = addressParts[0]
            guard let at = endpoint.lastIndex(of: "@"), let colon = endpoint[..<at].lastIndex(of: ":"),
                  let port = Int(endpoint[endpoint.index(after: colon)..<at]), let busPort = Int(endpoint[endpoint.index(after: at)...]),
                  (0...65535).contains(port)
            else { throw CommandError("invalid address '\(fields[1])': expected ip:port@cport") }
            let ip = String(endpoint[..<colon])
            let hostname = addressParts.count > 1 ? String(addressParts[1].split(separator: ",").first ?? "") : ""
            let flags = fields[2].split(separator: ",")
            let isReplica = flags.contains("slave") || flags.contains("replica")
            let primary: String? = fields[3] == "-" ? nil : fields[3]
            if let primary, !isValidNodeID(primary) { throw CommandError("invalid primary id '\(primary)'") }
            guard let epoch = UInt64(fields[6]) else { throw CommandError("invalid config epoch '\(fields[6])'") }
            var record = ClusterNodeRecord(
                id: id, ip: ip, port: port, busPort: busPort, hostname: hostname, primaryID: isReplica ? primary : nil,
                configEpoch: epoch, isFailed: flags.contains("fail"))
            if isReplica && primary == nil { record.primaryID = nil }
            var line = ClusterNodeLine(record: record, isMyself: flags.contains("myself"), slots: [], migrating: [:], importing: [:])
            for field in fields.dropFirst(8) {
                if field.hasPrefix("[") && field.hasSuffix("]") {
                    let inner = field.dropFirst().dropLast()
                    if let arrow = inner.range(of: "->-"), let slot = Int(inner[..<arrow.lowerBound]), (0..<HashSlot.count).contains(slot) {
                        line.migrating[slot] = String(inner[arrow.upperBound...])
                    } else if let arrow = inner.range(of: "-<-"), let slot = Int(inner[..<arrow.lowerBound]), (0..<HashSlot.count).contains(slot) {
                        line.importing[slot] = String(inner[arrow.upperBound...])
                    } else {
                        throw CommandError("invalid migration entry '\(field)'")
                    }
                    continue
                }
                let bounds = field.split(separator: "-", maxSplits: 1)
                guard let low = Int(bounds[0]), let high = bounds.count == 2 ? Int(bounds[1]) : low,
                      low >= 0, high < HashSlot.count, low <= high
                else { throw CommandError("invalid slot range '\(field)'") }
                line.slots.append(low...high)
            }
            result.append(line)
        }
        return result
    }

    /// Whether `id` is 40 hex digits.
    public static func isValidNodeID(_ id: String) -> Bool {
        id.utf8.count == 40 && id.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }
    }

    /// A random node id.
    public static func randomID() -> String {
        (0..<40).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
    }
}
