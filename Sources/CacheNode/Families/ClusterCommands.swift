// Cluster family: CLUSTER (KEYSLOT, INFO, NODES, SLOTS, SHARDS, MYID, slot assignment, SETSLOT migration states,
// MEET, REPLICATE, FAILOVER, epochs, RESET, and our extensions TOPOLOGY SET/GET for pushed topologies and
// SETSLOTSRANGE for handing over a batch of slots in one call), ASKING, READONLY, READWRITE. Reply shapes follow
// redis 7 (cluster.c, cluster_legacy.c). MIGRATE lives in MigrateCommand.swift.
import CacheStore
import RESPServer

let clusterCommands: [CommandSpec] = [
    // CLUSTER <subcommand> [arguments…]
    CommandSpec("cluster", arity: -2, flags: [.loading, .stale], group: .cluster,
                summary: "A container for Redis Cluster commands.", since: "3.0.0",
                subcommands: ClusterFamily.subcommandNames.map { name in
                    // CLUSTER RESET is refused inside scripts (redis's noscript); the other subcommands are not.
                    CommandSpec("cluster|\(name)", arity: -2, flags: name == "reset" ? [.noScript, .loading, .stale] : [.loading, .stale],
                                group: .cluster,
                                summary: "CLUSTER \(name.uppercased())", since: "3.0.0") { _, _ throws(CommandError) in }
                }) { context, reply throws(CommandError) in
        try ClusterFamily.cluster(&context, &reply)
    },
    // ASKING
    CommandSpec("asking", arity: 1, flags: [.fast], group: .cluster,
                summary: "Signals that a cluster client is following an -ASK redirect.", since: "3.0.0") { context, reply throws(CommandError) in
        guard context.node.cluster != nil else { throw ClusterFamily.disabled }
        context.session.isAsking = true
        reply.ok()
    },
    // READONLY
    CommandSpec("readonly", arity: 1, flags: [.fast, .loading, .stale], group: .cluster,
                summary: "Enables read-only queries for a connection to a Redis Cluster replica node.", since: "3.0.0") { context, reply throws(CommandError) in
        guard context.node.cluster != nil else { throw ClusterFamily.disabled }
        context.session.isReadOnlyClusterClient = true
        reply.ok()
    },
    // READWRITE
    CommandSpec("readwrite", arity: 1, flags: [.fast, .loading, .stale], group: .cluster,
                summary: "Enables read-write queries for a connection to a Reids Cluster replica node.", since: "3.0.0") { context, reply throws(CommandError) in
        guard context.node.cluster != nil else { throw ClusterFamily.disabled }
        context.session.isReadOnlyClusterClient = false
        reply.ok()
    },
]

enum ClusterFamily {
    static let disabled = CommandError("This instance has cluster support disabled")

    static let subcommandNames = [
        "addslots", "addslotsrange", "bumpepoch", "count-failure-reports", "countkeysinslot", "delslots", "delslotsrange",
        "failover", "flushslots", "forget", "getkeysinslot", "help", "info", "keyslot", "links", "meet", "myid",
        "myshardid", "nodes", "replicas", "replicate", "reset", "saveconfig", "set-config-epoch", "setslot", "setslotsrange", "shards",
        "slaves", "slots", "topology",
    ]

    static func cluster(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let subcommand = arguments.lowercased(1)
        if subcommand == "help" {
            let lines = [
                "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "KEYSLOT <key>", "INFO", "MYID", "MYSHARDID", "NODES", "SLOTS", "SHARDS", "COUNTKEYSINSLOT <slot>",
                "GETKEYSINSLOT <slot> <count>", "ADDSLOTS <slot> [<slot> ...]", "ADDSLOTSRANGE <start> <end> [...]",
                "DELSLOTS <slot> [<slot> ...]", "DELSLOTSRANGE <start> <end> [...]", "FLUSHSLOTS",
                "SETSLOT <slot> (IMPORTING <node-id> | MIGRATING <node-id> | STABLE | NODE <node-id>)",
                "SETSLOTSRANGE <start> <end> [<start> <end> ...] (IMPORTING <node-id> | MIGRATING <node-id> | STABLE | NODE <node-id>): SETSLOT for every slot of the ranges, all or none (cache-node extension)",
                "MEET <ip> <port> [<bus-port>]", "FORGET <node-id>", "REPLICATE <node-id>", "REPLICAS <node-id>",
                "FAILOVER [FORCE|TAKEOVER]", "SET-CONFIG-EPOCH <epoch>", "BUMPEPOCH", "RESET [HARD|SOFT]",
                "COUNT-FAILURE-REPORTS <node-id>", "SAVECONFIG", "LINKS",
                "TOPOLOGY SET <epoch> <nodes-lines>: apply a topology pushed by the topology source (CLUSTER NODES format)",
                "TOPOLOGY GET: the applied topology epoch and this node's view", "HELP",
            ]
            reply.simpleStringLines(lines)
            return
        }
        guard let cluster = context.node.cluster else { throw disabled }
        let keyspace = context.keyspace
        func argumentCount(_ count: Int) throws(CommandError) {
            if arguments.count != count { throw .wrongArity("cluster|\(subcommand)") }
        }
        switch subcommand {
        case "keyslot":
            try argumentCount(3)
            reply.integer(arguments.withBytes(2) { HashSlot.slot(of: $0) })
        case "myid":
            try argumentCount(2)
            reply.bulk(cluster.myID)
        case "myshardid":
            try argumentCount(2)
            let topology = cluster.topology
            reply.bulk(topology.myself.primaryID ?? topology.myID)
        case "info":
            try argumentCount(2)
            reply.verbatim(info(cluster.topology))
        case "nodes":
            try argumentCount(2)
            reply.verbatim(cluster.topology.nodesDescription(now: context.now))
        case "slots":
            try argumentCount(2)
            slots(cluster.topology, &reply)
        case "shards":
            try argumentCount(2)
            shards(cluster.topology, &reply)
        case "countkeysinslot":
            try argumentCount(3)
            guard let slot = arguments.integer(2) else { throw .notInteger }
            guard slot >= 0 && slot < HashSlot.count else { throw CommandError("Invalid slot") }
            let stripe = keyspace.stripeIndex(forSlot: slot)
            keyspace.lock(stripe: stripe)
            let count = keyspace.countKeys(inSlot: slot)
            keyspace.unlock(stripe: stripe)
            reply.integer(count)
        case "getkeysinslot":
            try argumentCount(4)
            guard let slot = arguments.integer(2), let count = arguments.integer(3) else { throw .notInteger }
            guard count >= 0 && slot >= 0 && slot < HashSlot.count else { throw CommandError("Invalid slot or number of keys") }
            let stripe = keyspace.stripeIndex(forSlot: slot)
            keyspace.lock(stripe: stripe)
            let keys = keyspace.keys(inSlot: slot, limit: count)
            keyspace.unlock(stripe: stripe)
            reply.arrayHeader(keys.count)
            for key in keys { key.withBytes { reply.bulk($0) } }
        case "addslots", "delslots":
            if arguments.count < 3 { throw .wrongArity("cluster|\(subcommand)") }
            let slots = try (2..<arguments.count).map { (index: Int) throws(CommandError) -> Int in try slotArgument(arguments, index) }
            if subcommand == "addslots" {
                try cluster.mutate { (topology: inout ClusterTopology) throws(CommandError) in try topology.addSlots(slots) }
            } else {
                try cluster.mutate { (topology: inout ClusterTopology) throws(CommandError) in try topology.deleteSlots(slots) }
            }
            reply.ok()
        case "addslotsrange", "delslotsrange":
            if arguments.count < 4 || arguments.count % 2 != 0 { throw .wrongArity("cluster|\(subcommand)") }
            var slots: [Int] = []
            for index in stride(from: 2, to: arguments.count, by: 2) {
                let start = try slotArgument(arguments, index)
                let end = try slotArgument(arguments, index + 1)
                if start > end { throw CommandError("start slot number \(start) is greater than end slot number \(end)") }
                slots.append(contentsOf: start...end)
            }
            if subcommand == "addslotsrange" {
                try cluster.mutate { (topology: inout ClusterTopology) throws(CommandError) in try topology.addSlots(slots) }
            } else {
                try cluster.mutate { (topology: inout ClusterTopology) throws(CommandError) in try topology.deleteSlots(slots) }
            }
            reply.ok()
        case "flushslots":
            try argumentCount(2)
            let keys = keyCount(keyspace)
            try cluster.mutate { (topology: inout ClusterTopology) throws(CommandError) in try topology.flushSlots(keyCount: keys) }
            reply.ok()
        case "setslot":
            if arguments.count < 4 { throw .wrongArity("cluster|setslot") }
            let slot = try slotArgument(arguments, 2)
            let action = try slotAction(arguments, from: 3)
            try setSlots([slot], action, cluster: cluster, keyspace: keyspace)
            reply.ok()
        case "setslotsrange":
            // Extension: CLUSTER SETSLOTSRANGE <start> <end> [<start> <end> …] IMPORTING|MIGRATING|NODE <id> | STABLE
            var slots: [Int] = []
            var index = 2
            while index + 1 < arguments.count, arguments.integer(index) != nil {
                let start = try slotArgument(arguments, index)
                let end = try slotArgument(arguments, index + 1)
                if start > end { throw CommandError("start slot number \(start) is greater than end slot number \(end)") }
                slots.append(contentsOf: start...end)
                index += 2
            }
            if slots.isEmpty || index >= arguments.count { throw .wrongArity("cluster|setslotsrange") }
            if Set(slots).count != slots.count { throw CommandError("Slot ranges overlap: each slot may appear once") }
            let action = try slotAction(arguments, from: index)
            try setSlots(slots, action, cluster: cluster, keyspace: keyspace)
            reply.ok()
        case "meet":
            if arguments.count != 4 && arguments.count != 5 { throw .wrongArity("cluster|meet") }
            guard let port = arguments.integer(3), (1...65535).contains(port) else {
                throw CommandError("Invalid base port specified: \(arguments.string(3))")
            }
            let host = arguments.string(2)
            let record = try meet(host: host, port: port, busPort: arguments.count == 5 ? arguments.integer(4) : nil, cluster: cluster)
            try cluster.mutate { (topology: inout ClusterTopology) in topology.learn(record) }
            reply.ok()
        case "forget":
            try argumentCount(3)
            let id = arguments.string(2)
            try cluster.mutate { (topology: inout ClusterTopology) throws(CommandError) in try topology.forget(id) }
            reply.ok()
        case "replicate":
            try argumentCount(3)
            let id = arguments.string(2)
            let keys = keyCount(keyspace)
            try cluster.mutate { (topology: inout ClusterTopology) throws(CommandError) in try topology.replicate(id, keyCount: keys) }
            reply.ok()
        case "replicas", "slaves":
            try argumentCount(3)
            let topology = cluster.topology
            let id = arguments.string(2)
            guard let node = topology.nodes[id] else { throw CommandError("Unknown node \(id)") }
            guard node.isPrimary else { throw CommandError("The specified node is not a master") }
            let all = topology.nodesDescription(now: context.now).split(separator: "\n")
            let lines = all.filter { line in topology.replicas(of: id).contains { line.hasPrefix($0.id) } }
            reply.arrayHeader(lines.count)
            for line in lines { reply.bulk(String(line)) }
        case "failover":
            if arguments.count > 3 { throw .wrongArity("cluster|failover") }
            if arguments.count == 3 && !["force", "takeover"].contains(arguments.lowercased(2)) { throw .syntax }
            // The local half of a failover (this replica takes its primary's slots with a new epoch); the topology
            // source pushes the result to the other nodes. The role handler turns replication off.
            try cluster.mutate { (topology: inout ClusterTopology) throws(CommandError) in _ = try topology.takeOver() }
            reply.ok()
        case "set-config-epoch":
            try argumentCount(3)
            guard let epoch = arguments.integer(2) else { throw .notInteger }
            guard epoch >= 0 else { throw CommandError("Invalid config epoch specified: \(epoch)") }
            try cluster.mutate { (topology: inout ClusterTopology) throws(CommandError) in try topology.setConfigEpoch(UInt64(epoch)) }
            reply.ok()
        case "bumpepoch":
            try argumentCount(2)
            let (bumped, epoch) = try cluster.mutate { (topology: inout ClusterTopology) in topology.bumpEpoch() }
            reply.simpleString("\(bumped ? "BUMPED" : "STILL") \(epoch)")
        case "reset":
            if arguments.count > 3 { throw .wrongArity("cluster|reset") }
            var hard = false
            if arguments.count == 3 {
                switch arguments.lowercased(2) {
                case "hard": hard = true
                case "soft": hard = false
                default: throw .syntax
                }
            }
            let keys = keyCount(keyspace)
            try cluster.mutate { (topology: inout ClusterTopology) throws(CommandError) in
                try topology.reset(hard: hard, newID: ClusterTopology.randomID(), keyCount: keys)
            }
            reply.ok()
        case "count-failure-reports":
            try argumentCount(3)
            let id = arguments.string(2)
            guard cluster.topology.nodes[id] != nil else { throw CommandError("Unknown node \(id)") }
            // Failure detection belongs to the topology source, not to a bus: nodes never report each other.
            reply.integer(0)
        case "saveconfig":
            try argumentCount(2)
            try cluster.mutate { (_: inout ClusterTopology) in }
            reply.ok()
        case "links":
            try argumentCount(2)
            reply.arrayHeader(0)
        case "topology":
            try topology(arguments, cluster: cluster, context: context, &reply)
        default:
            throw .unknownSubcommand(arguments.string(1), of: "cluster")
        }
    }

    /// CLUSTER TOPOLOGY SET <epoch> <payload> | GET. SET is refused on a node with an identity unless the framework
    /// sends it through the secure channel (see TopologyPushAuthorization.swift).
    private static func topology(
        _ arguments: CommandArguments, cluster: ClusterState, context: CommandContext, _ reply: inout ReplyWriter
    ) throws(CommandError) {
        switch arguments.count >= 3 ? arguments.lowercased(2) : "" {
        case "set":
            guard arguments.count == 5 else { throw .wrongArity("cluster|topology") }
            if let refusal = context.node.replication.topologyPushRefusal(for: context.session.connection) { throw refusal }
            guard let epoch = arguments.integer(3), epoch > 0 else {
                throw CommandError("Invalid topology epoch '\(arguments.string(3))': expected an integer above 0")
            }
            try cluster.applyPush(epoch: UInt64(epoch), payload: arguments.string(4))
            reply.ok()
        case "get":
            guard arguments.count == 3 else { throw .wrongArity("cluster|topology") }
            let topology = cluster.topology
            reply.arrayHeader(2)
            reply.integer(Int(topology.topologyEpoch))
            reply.bulk(topology.nodesDescription(now: 0))
        default:
            throw CommandError("Invalid CLUSTER TOPOLOGY action. Use SET <epoch> <nodes-lines> or GET")
        }
    }

    /// The SETSLOT action at `index` (`IMPORTING <id>`, `MIGRATING <id>`, `NODE <id>`, `STABLE`), the last arguments.
    private static func slotAction(_ arguments: CommandArguments, from index: Int) throws(CommandError) -> ClusterTopology.SlotAction {
        let remaining = arguments.count - index
        switch arguments.lowercased(index) {
        case "importing" where remaining == 2: return .importing(from: arguments.string(index + 1))
        case "migrating" where remaining == 2: return .migrating(to: arguments.string(index + 1))
        case "node" where remaining == 2: return .node(arguments.string(index + 1))
        case "stable" where remaining == 1: return .stable
        default: throw CommandError("Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
        }
    }

    /// SETSLOT / SETSLOTSRANGE: counts the keys of the slots given away (one scan per stripe, outside the topology
    /// lock), then applies the batch all or nothing.
    private static func setSlots(
        _ slots: [Int], _ action: ClusterTopology.SlotAction, cluster: ClusterState, keyspace: Keyspace
    ) throws(CommandError) {
        var counts: [Int: Int] = [:]
        let counted = cluster.slotsToCount(slots, action)
        if !counted.isEmpty {
            for (stripe, stripeSlots) in Dictionary(grouping: counted, by: { keyspace.stripeIndex(forSlot: $0) }) {
                keyspace.lock(stripe: stripe)
                counts.merge(keyspace.countKeys(inSlots: Set(stripeSlots), stripe: stripe)) { $1 }
                keyspace.unlock(stripe: stripe)
            }
        }
        try cluster.setSlots(slots, action, keyCounts: counts)
    }

    /// A slot number argument, or redis's error.
    static func slotArgument(_ arguments: CommandArguments, _ index: Int) throws(CommandError) -> Int {
        guard let slot = arguments.integer(index), slot >= 0, slot < HashSlot.count else {
            throw CommandError("Invalid or out of range slot")
        }
        return slot
    }

    private static func keyCount(_ keyspace: Keyspace) -> Int {
        keyspace.withAllLocked { keyspace.keyCounts()[0].keys }
    }

    /// CLUSTER MEET as a pull: ask the peer for its own line of CLUSTER NODES and learn it at the address we used.
    private static func meet(host: String, port: Int, busPort: Int?, cluster: ClusterState) throws(CommandError) -> ClusterNodeRecord {
        let replies: [PeerReply]
        do {
            replies = try cluster.peers.withConnection(host: host, port: port, timeout: 2000) {
                (connection: any ClusterPeerConnection) throws(ClusterPeerError) -> [PeerReply] in
                try connection.exchange([[Array("CLUSTER".utf8), Array("NODES".utf8)]], timeout: 2000)
            }
        } catch {
            throw CommandError("CLUSTER MEET could not reach \(host):\(port): \(error.message)")
        }
        guard let text = replies.first?.string else {
            if case .error(let message)? = replies.first { throw CommandError("CLUSTER MEET: \(host):\(port) replied \(message)") }
            throw CommandError("CLUSTER MEET: unexpected reply from \(host):\(port)")
        }
        guard let line = try ClusterTopology.parseNodes(text).first(where: \.isMyself) else {
            throw CommandError("CLUSTER MEET: \(host):\(port) did not describe itself")
        }
        var record = line.record
        record.ip = host
        record.port = port
        if let busPort { record.busPort = busPort }
        return record
    }

    // MARK: replies

    static func info(_ topology: ClusterTopology) -> String {
        let failed = Set(topology.nodes.values.filter(\.isFailed).map(\.id))
        var assigned = 0
        var failing = 0
        var servingPrimaries = Set<String>()
        for owner in topology.owners {
            guard let owner else { continue }
            assigned += 1
            if failed.contains(owner) { failing += 1 }
            servingPrimaries.insert(owner)
        }
        let myEpoch = topology.myPrimary?.configEpoch ?? topology.myself.configEpoch
        let fields: [(String, String)] = [
            ("cluster_state", topology.isHealthy ? "ok" : "fail"),
            ("cluster_slots_assigned", String(assigned)),
            ("cluster_slots_ok", String(assigned - failing)),
            ("cluster_slots_pfail", "0"),
            ("cluster_slots_fail", String(failing)),
            ("cluster_known_nodes", String(topology.nodes.count)),
            ("cluster_size", String(servingPrimaries.count)),
            ("cluster_current_epoch", String(topology.currentEpoch)),
            ("cluster_my_epoch", String(myEpoch)),
            ("cluster_stats_messages_sent", "0"),
            ("cluster_stats_messages_received", "0"),
            ("total_cluster_links_buffer_limit_exceeded", "0"),
            ("cluster_topology_epoch", String(topology.topologyEpoch)),
        ]
        return fields.map { "\($0.0):\($0.1)\r\n" }.joined()
    }

    /// CLUSTER SLOTS: per run of slots with one owner, `[start, end, primary, replicas…]`, each node as
    /// `[ip, port, id, {}]` (redis 7 with the ip as preferred endpoint).
    static func slots(_ topology: ClusterTopology, _ reply: inout ReplyWriter) {
        var runs: [(Int, Int, String)] = []
        var start = 0
        for slot in 1...HashSlot.count {
            if slot == HashSlot.count || topology.owners.slots[slot] != topology.owners.slots[start] {
                if let owner = topology.owners[start] { runs.append((start, slot - 1, owner)) }
                start = slot
            }
        }
        reply.arrayHeader(runs.count)
        for (low, high, owner) in runs {
            let primary = topology.nodes[owner]!
            let replicas = topology.replicas(of: owner).filter { !$0.isFailed }
            reply.arrayHeader(3 + replicas.count)
            reply.integer(low)
            reply.integer(high)
            for node in [primary] + replicas {
                reply.arrayHeader(4)
                reply.bulk(node.ip)
                reply.integer(node.port)
                reply.bulk(node.id)
                reply.mapHeader(0)
            }
        }
    }

    /// CLUSTER SHARDS: one map per primary: `slots` as flat start/end pairs and `nodes` with their details.
    static func shards(_ topology: ClusterTopology, _ reply: inout ReplyWriter) {
        let primaries = topology.nodes.values.filter(\.isPrimary).sorted { $0.id < $1.id }
        reply.arrayHeader(primaries.count)
        for primary in primaries {
            reply.mapHeader(2)
            reply.bulk("slots")
            let ranges = topology.slotRanges(of: primary.id)
            reply.arrayHeader(ranges.count * 2)
            for range in ranges {
                reply.integer(range.lowerBound)
                reply.integer(range.upperBound)
            }
            reply.bulk("nodes")
            let members = [primary] + topology.replicas(of: primary.id)
            reply.arrayHeader(members.count)
            for node in members {
                reply.mapHeader(7)
                reply.bulk("id")
                reply.bulk(node.id)
                reply.bulk("port")
                reply.integer(node.port)
                reply.bulk("ip")
                reply.bulk(node.ip)
                reply.bulk("endpoint")
                reply.bulk(node.ip)
                reply.bulk("role")
                reply.bulk(node.isPrimary ? "master" : "replica")
                reply.bulk("replication-offset")
                reply.integer(0)
                reply.bulk("health")
                reply.bulk(node.isFailed ? "fail" : "online")
            }
        }
    }
}
