// How a member slot becomes a Mesos `TaskInfo`: its resources, ports, command line and labels.

/// Builds the `TaskInfo` of a cluster member.
public enum TaskTemplate {
    /// The task for `record` of cluster `spec`, running `executable`.
    ///
    /// The command line uses redis-server's flags (`--port`, `--bind`, `--maxmemory`, `--maxmemory-policy`,
    /// `--appendonly`, and `--save ""` without persistence); with `replicationFlags`, cache-node members also get
    /// `--replication-port` and `--secure-replication` (off until cache-node knows them). Replication is configured
    /// after launch (`SchedulerAction.replicate`), because a replica may start before its primary.
    public static func taskInfo(
        for record: TaskRecord, spec: ClusterSpec, executable: String, replicationFlags: Bool = true
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
        if spec.engine == .cacheNode && replicationFlags {
            arguments += [
                "--replication-port", "\(record.ports.dropFirst().first ?? 0)",
                "--secure-replication", spec.secureReplication ? "yes" : "no",
            ]
        }
        let slots = ClusterPlan.slots(shard: record.slot.shard, of: spec.shardCount)
        return TaskInfo(
            name: record.slot.description,
            taskID: record.taskID,
            agentID: record.agentID,
            resources: ResourceQuantities(
                cpus: spec.cpusPerNode, memMB: spec.taskMemoryMB, ports: RangeSet.of(record.ports)
            ).resources,
            command: CommandInfo(value: executable, arguments: arguments),
            labels: [
                "cluster": spec.name, "shard": "\(record.slot.shard)", "member": "\(record.slot.member)",
                "role": record.role.rawValue, "slots": slots.description,
            ]
        )
    }
}
