// How a member slot becomes a Mesos `TaskInfo`: its resources, ports, command line and labels.

/// Where a member finds its replication credentials (files the framework writes before the launch).
public struct MemberCredentials: Hashable, Sendable {
    /// The member's identity file (private key + certificate, node id = task id, role cache-node).
    public var identityPath: String
    /// The cluster authority's public key file.
    public var authorityPath: String
    /// The authority's signed revocation list, which a member loads at start (later lists are pushed to it).
    public var revocationListPath: String?

    /// Creates the paths.
    public init(identityPath: String, authorityPath: String, revocationListPath: String? = nil) {
        self.identityPath = identityPath
        self.authorityPath = authorityPath
        self.revocationListPath = revocationListPath
    }

    /// The conventional layout under a credentials directory: `<dir>/<task id>.identity`, `<dir>/authority.pub` and
    /// `<dir>/revoked.list`.
    public static func under(_ directory: String, taskID: TaskID) -> MemberCredentials {
        MemberCredentials(
            identityPath: "\(directory)/\(taskID.value).identity", authorityPath: "\(directory)/authority.pub",
            revocationListPath: "\(directory)/revoked.list")
    }
}

/// Builds the `TaskInfo` of a cluster member.
public enum TaskTemplate {
    /// The label that tells the driver a task needs its identity written to `MemberCredentials.identityPath`.
    public static let identityLabel = "identity"
    /// The label naming the persistent volume a member of a cluster with `persistence` keeps its data on (a backend
    /// with volumes, Mesos, reserves and creates it on first launch and relaunches the member on it).
    public static let volumeLabel = "volume"

    /// The persistence id of the volume of `slot`: `<cluster>.s<shard>.m<member>`, stable across relaunches.
    public static func volumeID(of slot: MemberSlot) -> String { "\(slot.cluster).s\(slot.shard).m\(slot.member)" }

    /// The task for `record` of cluster `spec`, running `executable`.
    ///
    /// The command line uses redis-server's flags (`--port`, `--bind`, `--maxmemory`, `--maxmemory-policy`,
    /// `--appendonly`, and `--save ""` without persistence). cache-node members run in cluster mode
    /// (`--cluster-enabled yes`; the scheduler pushes the topology) and replicate securely: with `credentials` they get
    /// `--node-identity`, `--cluster-authority`, `--replication-port` (their second port) and `--revocation-list` (the
    /// authority's current list, so a member started after a revocation refuses the revoked identity at once); a spec with
    /// `secureReplication` off gets `--replication-plaintext yes` instead. Replication is configured after launch
    /// (`SchedulerAction.replicate`), because a replica may start before its primary.
    public static func taskInfo(
        for record: TaskRecord, spec: ClusterSpec, executable: String, credentials: MemberCredentials? = nil
    ) -> TaskInfo {
        var arguments = [
            "--port", "\(record.ports.first ?? 0)",
            "--bind", record.hostname,
            "--maxmemory", "\(spec.memoryMBPerNode)mb",
            "--maxmemory-policy", spec.evictionPolicy.rawValue,
            "--appendonly", spec.persistence ? "yes" : "no",
        ]
        if !spec.persistence { arguments += ["--save", ""] }
        // redis-server waits 5 s by default before a diskless full sync, which would delay every new replica.
        if spec.engine == .redisServer { arguments += ["--repl-diskless-sync-delay", "0"] }
        // Bound to every address of its own namespace (IP-per-task isolation), redis-server's protected mode would
        // refuse every peer that is not on its loopback.
        if spec.engine == .redisServer && record.hostname == "0.0.0.0" { arguments += ["--protected-mode", "no"] }
        var labels = [
            "cluster": spec.name, "shard": "\(record.slot.shard)", "member": "\(record.slot.member)",
            "role": record.role.rawValue, "slots": ClusterPlan.slots(shard: record.slot.shard, of: spec.shardCount).description,
        ]
        if spec.persistence { labels[volumeLabel] = volumeID(of: record.slot) }
        if spec.engine == .cacheNode {
            arguments += ["--cluster-enabled", "yes"]
            if !spec.secureReplication {
                arguments += ["--replication-plaintext", "yes"]
            } else if let credentials {
                arguments += [
                    "--node-identity", credentials.identityPath,
                    "--cluster-authority", credentials.authorityPath,
                    "--replication-port", "\(record.ports.dropFirst().first ?? 0)",
                ]
                if let list = credentials.revocationListPath { arguments += ["--revocation-list", list] }
                labels[identityLabel] = credentials.identityPath
            }
        }
        return TaskInfo(
            name: record.slot.description,
            taskID: record.taskID,
            agentID: record.agentID,
            resources: ResourceQuantities(
                cpus: spec.cpusPerNode, memMB: spec.taskMemoryMB, ports: RangeSet.of(record.ports)
            ).resources,
            command: CommandInfo(value: executable, arguments: arguments),
            labels: labels
        )
    }
}
