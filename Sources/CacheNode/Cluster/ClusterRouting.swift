// Where a keyed command may run in cluster mode (redis cluster.c getNodeByQuery): all keys in one slot
// (-CROSSSLOT), the slot assigned (-CLUSTERDOWN Hash slot not served) and the cluster healthy (-CLUSTERDOWN The
// cluster is down), served here, by our primary for a READONLY client, or redirected (-MOVED). Slots being
// migrated need to know whether the keys exist, which is only stable with their stripes locked: those commands get
// a ClusterLockedCheck that the dispatcher runs under the locks, just before the handler (-ASK, -TRYAGAIN).
import CacheStore
import RESPServer

/// An immutable snapshot of the slot map, published after every topology change and read once per keyed command.
final class ClusterRouting: Sendable {
    /// Per slot, an index into ``addresses``, or -1 when unassigned.
    let owners: [Int16]
    /// `ip:port` of the nodes referenced by ``owners`` and ``migratingTo``.
    let addresses: [String]
    /// This node's index in ``addresses``.
    let myIndex: Int16
    /// Our primary's index when this node is a replica, else -1.
    let myPrimaryIndex: Int16
    /// Slots this node migrates → target index.
    let migratingTo: [Int: Int16]
    /// Slots this node imports.
    let importing: Set<Int>
    /// `cluster_state:ok`.
    let isHealthy: Bool

    /// The node ids referenced by ``owners`` (parallel to ``addresses``).
    let ids: [String]
    /// The ids of nodes marked failed (health depends on them).
    let failedIDs: Set<String>

    /// Builds the snapshot from scratch, or from `previous` when that is cheaper:
    /// - `changedSlots` given (CLUSTER SETSLOT[SRANGE]): only those slots' owners are looked up again, provided the
    ///   nodes are the same as in `previous` (ids and addresses); health is re-derived from the changed slots.
    /// - `previous` with the same nodes and slot owners as `topology` (`unchangedSlots`): only the migration state is
    ///   rebuilt.
    /// Anything else scans the 16384 slots.
    init(_ topology: ClusterTopology, reusing previous: ClusterRouting? = nil, unchangedSlots: Bool = false, changedSlots: [Int]? = nil) {
        var indices: [String: Int16] = [:]
        var addresses: [String] = []
        var ids: [String] = []
        var failedIDs = Set<String>()
        for node in topology.nodes.values.sorted(by: { $0.id < $1.id }) {
            indices[node.id] = Int16(addresses.count)
            addresses.append(node.address)
            ids.append(node.id)
            if node.isFailed { failedIDs.insert(node.id) }
        }
        let sameNodes = previous.map { $0.ids == ids && $0.addresses == addresses && $0.failedIDs == failedIDs } ?? false
        if let previous, sameNodes, let changedSlots {
            var owners = previous.owners
            var healthy = previous.isHealthy
            for slot in changedSlots {
                let owner = topology.owners[slot]
                owners[slot] = owner.flatMap { indices[$0] } ?? -1
                if owner == nil || failedIDs.contains(owner!) { healthy = false }
            }
            self.owners = owners
            isHealthy = healthy || (!previous.isHealthy && topology.isHealthy)
        } else if let previous, sameNodes, unchangedSlots {
            owners = previous.owners
            isHealthy = previous.isHealthy
        } else {
            let table = topology.owners.ids.map { indices[$0] ?? -1 }
            owners = topology.owners.slots.map { $0 < 0 ? -1 : table[Int($0)] }
            isHealthy = topology.isHealthy
        }
        self.addresses = addresses
        self.ids = ids
        self.failedIDs = failedIDs
        myIndex = indices[topology.myID]!
        myPrimaryIndex = topology.myself.primaryID.flatMap { indices[$0] } ?? -1
        migratingTo = topology.migrating.compactMapValues { indices[$0] }
        importing = Set(topology.importing.keys)
    }

    /// What to do with a command whose keys are at `positions`.
    func route(
        _ spec: CommandSpec, _ arguments: CommandArguments, positions: [Int], asking: Bool, readOnlyClient: Bool
    ) -> ClusterRoute {
        var slot = -1
        var multipleKeys = false
        for position in positions {
            let keySlot = arguments.withBytes(position) { HashSlot.slot(of: $0) }
            if slot < 0 {
                slot = keySlot
                if owners[slot] < 0 { return .reject(CommandError(code: "CLUSTERDOWN", "Hash slot not served")) }
            } else if keySlot != slot {
                return .reject(CommandError(code: "CROSSSLOT", "Keys in request don't hash to the same slot"))
            } else if !multipleKeys && arguments.bytes(position) != arguments.bytes(positions[0]) {
                multipleKeys = true
            }
        }
        if slot < 0 { return .serve }
        if !isHealthy { return .reject(CommandError(code: "CLUSTERDOWN", "The cluster is down")) }
        let owner = owners[slot]
        if owner == myIndex {
            if let target = migratingTo[slot] {
                if spec.name == "migrate" { return .serve }
                return .check(ClusterLockedCheck(slot: slot, positions: positions, askTarget: addresses[Int(target)]))
            }
            return .serve
        }
        if importing.contains(slot) {
            if spec.name == "migrate" { return .serve }
            if asking || spec.flags.contains(.asking) {
                if multipleKeys { return .check(ClusterLockedCheck(slot: slot, positions: positions, askTarget: nil)) }
                return .serve
            }
        }
        if readOnlyClient && !spec.flags.contains(.write) && myPrimaryIndex >= 0 && owner == myPrimaryIndex {
            return .serve
        }
        return .reject(CommandError(code: "MOVED", "\(slot) \(addresses[Int(owner)])"))
    }

    /// EXEC: where the queued commands may run now. Each was routed when it was queued, but the slot may have
    /// moved since (a reshard between MULTI and EXEC); as redis's getNodeByQuery does for EXEC, all keys of the
    /// transaction are routed together: -CROSSSLOT across slots, -MOVED when the slot is no longer served here,
    /// -ASK/-TRYAGAIN (checked under the locks) when it is migrating and keys are missing. A rejected EXEC discards
    /// the transaction (redis discardTransaction).
    func routeTransaction(_ queued: [QueuedCommand], asking: Bool, readOnlyClient: Bool) -> ClusterRoute {
        var slot = -1
        var keys: [[UInt8]] = []
        var multipleKeys = false
        var writes = false
        var allAsking = true
        for command in queued {
            let positions: [Int]
            switch command.spec.keys {
            case .none: continue
            case .range(1, 1, _): positions = [1]
            default: positions = command.spec.keys.positions(in: command.arguments)
            }
            if positions.isEmpty { continue }
            if command.spec.flags.contains(.write) { writes = true }
            if !command.spec.flags.contains(.asking) { allAsking = false }
            for position in positions {
                let key = command.arguments.bytes(position)
                let keySlot = HashSlot.slot(of: key)
                if slot < 0 {
                    slot = keySlot
                    if owners[slot] < 0 { return .reject(CommandError(code: "CLUSTERDOWN", "Hash slot not served")) }
                } else if keySlot != slot {
                    return .reject(CommandError(code: "CROSSSLOT", "Keys in request don't hash to the same slot"))
                } else if !multipleKeys && key != keys[0] {
                    multipleKeys = true
                }
                keys.append(key)
            }
        }
        if slot < 0 { return .serve }
        if !isHealthy { return .reject(CommandError(code: "CLUSTERDOWN", "The cluster is down")) }
        let owner = owners[slot]
        if owner == myIndex {
            if let target = migratingTo[slot] {
                return .check(ClusterLockedCheck(slot: slot, positions: [], askTarget: addresses[Int(target)], keys: keys))
            }
            return .serve
        }
        if importing.contains(slot) && (asking || allAsking) {
            if multipleKeys { return .check(ClusterLockedCheck(slot: slot, positions: [], askTarget: nil, keys: keys)) }
            return .serve
        }
        if readOnlyClient && !writes && myPrimaryIndex >= 0 && owner == myPrimaryIndex {
            return .serve
        }
        return .reject(CommandError(code: "MOVED", "\(slot) \(addresses[Int(owner)])"))
    }
}

/// The routing verdict for one command.
enum ClusterRoute {
    /// Run it here.
    case serve
    /// Run it here if ``ClusterLockedCheck`` passes with the keys' stripes locked.
    case check(ClusterLockedCheck)
    /// Answer with this error (redirect or refusal).
    case reject(CommandError)
}

/// The part of routing that depends on which keys exist in a slot under migration.
struct ClusterLockedCheck {
    let slot: Int
    let positions: [Int]
    /// Migrating: where missing keys are (ASK); `nil` for a multi-key command on an importing slot.
    let askTarget: String?
    /// EXEC: the keys of every queued command (instead of ``positions`` in the command's own arguments).
    var keys: [[UInt8]]? = nil

    /// Whether this check is for EXEC (a failed check discards the transaction).
    var isTransaction: Bool { keys != nil }

    /// The error to answer instead of running, or `nil` to run. Requires the keys' stripes locked.
    func verify(_ context: CommandContext) -> CommandError? {
        let db = context.node.keyspace.database(0, now: context.now)
        var missing = 0
        var existing = 0
        if let keys {
            for key in keys {
                if key.withUnsafeBytes({ db.exists(KeyRef($0)) }) { existing += 1 } else { missing += 1 }
            }
        } else {
            for position in positions {
                if db.exists(context.key(position)) { existing += 1 } else { missing += 1 }
            }
        }
        guard missing > 0 else { return nil }
        if let askTarget {
            if existing > 0 { return CommandError(code: "TRYAGAIN", "Multiple keys request during rehashing of slot") }
            return CommandError(code: "ASK", "\(slot) \(askTarget)")
        }
        return existing + missing > 1 ? CommandError(code: "TRYAGAIN", "Multiple keys request during rehashing of slot") : nil
    }
}
