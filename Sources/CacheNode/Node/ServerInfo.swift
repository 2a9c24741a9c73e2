// INFO: the sections and field names redis prints, which monitoring tools and admin scripts parse
// (`used_memory`, `connected_clients`, `keyspace_hits`, `db0:keys=…`). Memory figures come from the allocator
// (what the process really holds), not from estimates; `used_memory_dataset` is the keyspace's own estimate.
import CProcessStats
import CacheStore
import Foundation
import Synchronization

enum ServerInfo {
    static let sectionOrder = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
                               "commandstats", "errorstats", "cluster", "keyspace"]
    /// What INFO and INFO default show: everything but the per-command statistics (as redis).
    static let defaultSections: Set<String> = Set(sectionOrder).subtracting(["commandstats"])

    /// Renders the requested sections (`default`/`all`/`everything` or names) with keyspace counts read under the
    /// caller's locks.
    static func render(sections requested: [String], context: CommandContext) -> String {
        var wanted = Set(requested)
        if wanted.isEmpty || wanted.contains("default") { wanted.formUnion(defaultSections) }
        if wanted.contains("all") || wanted.contains("everything") { wanted.formUnion(sectionOrder) }
        var output = ""
        for section in sectionOrder where wanted.contains(section) {
            let lines = fields(of: section, context: context)
            output += "# \(section.capitalized)\r\n"
            for (name, value) in lines { output += "\(name):\(value)\r\n" }
            output += "\r\n"
        }
        if output.hasSuffix("\r\n\r\n") { output.removeLast() }
        return output
    }

    static func human(_ bytes: Int) -> String {
        let units = ["B", "K", "M", "G", "T"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes)B" : NumberText.fixed(value, decimals: 2) + units[unit]
    }

    static func fields(of section: String, context: CommandContext) -> [(String, String)] {
        let node = context.node
        let configuration = node.configuration
        let now = context.now
        switch section {
        case "server":
            let uptime = max(0, (now - node.startedAt) / 1000)
            var system = utsname()
            uname(&system)
            let osName = withUnsafeBytes(of: system.sysname) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let release = withUnsafeBytes(of: system.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let machine = withUnsafeBytes(of: system.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            return [
                ("redis_version", ConnectionFamily.compatibleRedisVersion), ("redis_git_sha1", "00000000"), ("redis_git_dirty", "0"),
                ("redis_build_id", "0"), ("redis_mode", node.cluster == nil ? "standalone" : "cluster"), ("server_name", "cache-node"),
                ("cache_node_version", CacheNodeVersion.current), ("os", "\(osName) \(release) \(machine)"),
                ("arch_bits", "64"), ("monotonic_clock", "POSIX clock_gettime"), ("multiplexing_api", "epoll"),
                ("atomicvar_api", "c11-builtin"), ("gcc_version", "0.0.0"), ("process_id", String(getpid())),
                ("process_supervised", "no"), ("run_id", node.runID), ("tcp_port", String(node.boundPort.load(ordering: .relaxed))),
                ("server_time_usec", String(now * 1000)), ("uptime_in_seconds", String(uptime)),
                ("uptime_in_days", String(uptime / 86400)), ("hz", String(configuration.hz)),
                ("configured_hz", String(configuration.hz)), ("lru_clock", String((now / 1000) & 0xFFFFFF)),
                ("executable", CommandLine.arguments.first ?? ""), ("config_file", configuration.configFile ?? ""),
                ("io_threads_active", "0"), ("event_loop_threads", String(node.eventLoopThreads.load(ordering: .relaxed))),
            ]
        case "clients":
            return [
                ("connected_clients", String(node.stats.total { $0.connectedClients.load(ordering: .relaxed) })),
                ("cluster_connections", "0"), ("maxclients", String(configuration.maxClients)),
                ("client_recent_max_input_buffer", "0"), ("client_recent_max_output_buffer", "0"),
                ("blocked_clients", String(node.stats.total { $0.blockedClients.load(ordering: .relaxed) } + node.clientPause.postponedCount)),
                ("tracking_clients", String(node.tracking.clientCount)), ("clients_in_timeout_table", "0"),
                ("total_blocking_keys", String(node.blocking.blockedKeyCount)), ("total_blocking_keys_on_nokey", String(node.blocking.blockedKeyOnNoKeyCount)),
            ]
        case "memory":
            let memory = ProcessMemory.current()
            let baseline = node.baselineMemory.load(ordering: .relaxed)
            let dataset = context.keyspace.estimatedBytes(locked: true)
            let peak = node.recordPeakMemory(memory.heap)
            let scripts = node.scripts.memory
            let functions = node.functions.memory
            var total = 0
            if let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
               let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
               let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") {
                total = kilobytes * 1024
            }
            return [
                ("used_memory", String(memory.heap)), ("used_memory_human", human(memory.heap)),
                ("used_memory_rss", String(memory.resident)), ("used_memory_rss_human", human(memory.resident)),
                ("used_memory_peak", String(peak)), ("used_memory_peak_human", human(peak)),
                ("used_memory_peak_perc", NumberText.fixed(peak > 0 ? Double(memory.heap) * 100 / Double(peak) : 100, decimals: 2) + "%"),
                ("used_memory_overhead", String(max(0, memory.heap - dataset))), ("used_memory_startup", String(baseline)),
                ("used_memory_dataset", String(dataset)),
                ("used_memory_dataset_perc", NumberText.fixed(memory.heap > 0 ? Double(dataset) * 100 / Double(memory.heap) : 0, decimals: 2) + "%"),
                ("used_memory_lua", String(scripts.lua)), ("used_memory_vm_eval", String(scripts.lua)),
                ("used_memory_lua_human", human(scripts.lua)), ("used_memory_scripts_eval", String(scripts.bodyBytes)),
                ("number_of_cached_scripts", String(scripts.scripts)), ("number_of_functions", String(functions.functions)),
                ("number_of_libraries", String(functions.libraries)), ("used_memory_vm_functions", String(functions.lua)),
                ("used_memory_vm_total", String(scripts.lua + functions.lua)),
                ("used_memory_vm_total_human", human(scripts.lua + functions.lua)),
                ("used_memory_functions", String(functions.codeBytes)),
                ("used_memory_scripts", String(scripts.bodyBytes + functions.codeBytes)),
                ("used_memory_scripts_human", human(scripts.bodyBytes + functions.codeBytes)),
                ("total_system_memory", String(total)), ("total_system_memory_human", human(total)),
                ("maxmemory", String(configuration.maxMemory)), ("maxmemory_human", human(configuration.maxMemory)),
                ("maxmemory_policy", configuration.maxMemoryPolicy.name),
                ("mem_fragmentation_ratio", NumberText.fixed(memory.heap > 0 ? Double(memory.resident) / Double(memory.heap) : 0, decimals: 2)),
                // What maxmemory does not count: everything but the dataset's estimate and the start-up baseline.
                ("mem_not_counted_for_evict", String(max(0, memory.heap - dataset - baseline))),
                ("mem_allocator", "libc"),
                ("lazyfree_pending_objects", String(node.keyspace.lazyFree.pendingObjects)),
                ("lazyfreed_objects", String(node.keyspace.lazyFree.freedObjects)),
            ]
        case "persistence":
            let persistence = node.persistence.current
            let aof = node.appendOnly.status
            let now = node.clock.nowMilliseconds()
            return [
                ("loading", persistence.loading ? "1" : "0"), ("async_loading", "0"), ("current_cow_peak", "0"),
                ("rdb_changes_since_last_save", String(node.changesSinceSave)),
                ("rdb_bgsave_in_progress", persistence.backgroundSaveInProgress ? "1" : "0"),
                ("rdb_last_save_time", String(node.lastSave.load(ordering: .relaxed))),
                ("rdb_last_bgsave_status", persistence.lastBackgroundSaveOK ? "ok" : "err"),
                ("rdb_last_bgsave_time_sec", String(persistence.lastBackgroundSaveSeconds)),
                ("rdb_current_bgsave_time_sec",
                 persistence.backgroundSaveInProgress ? String((now - persistence.backgroundSaveStartedAt) / 1000) : "-1"),
                ("rdb_saves", String(persistence.saves)), ("rdb_last_cow_size", "0"),
                ("rdb_last_load_keys_expired", String(persistence.lastLoadKeysExpired)),
                ("rdb_last_load_keys_loaded", String(persistence.lastLoadKeysLoaded)),
                ("aof_enabled", aof.enabled ? "1" : "0"),
                ("aof_rewrite_in_progress", aof.rewriteInProgress ? "1" : "0"),
                ("aof_rewrite_scheduled", aof.rewriteScheduled ? "1" : "0"),
                ("aof_last_rewrite_time_sec", String(aof.lastRewriteSeconds)),
                ("aof_last_bgrewrite_status", aof.lastRewriteOK ? "ok" : "err"),
                ("aof_last_write_status", aof.lastWriteOK ? "ok" : "err"),
                ("aof_rewrites", String(aof.rewrites)),
                ("aof_current_size", String(aof.currentSize)), ("aof_base_size", String(aof.baseSize)),
            ]
        case "stats":
            let stats = node.stats
            return [
                ("total_connections_received", String(stats.total { $0.connectionsReceived.load(ordering: .relaxed) })),
                ("total_commands_processed", String(stats.total { $0.commandsProcessed.load(ordering: .relaxed) })),
                ("instantaneous_ops_per_sec", String(node.instantaneousOpsPerSecond.load(ordering: .relaxed))),
                ("total_net_input_bytes", String(stats.total { $0.netInputBytes.load(ordering: .relaxed) })),
                ("total_net_output_bytes", String(stats.total { $0.netOutputBytes.load(ordering: .relaxed) })),
                ("rejected_connections", String(node.rejectedConnections.load(ordering: .relaxed))),
                ("expired_keys", String(context.keyspace.expiredKeys.load(ordering: .relaxed))),
                ("evicted_keys", String(context.keyspace.evictedKeys.load(ordering: .relaxed))),
                ("keyspace_hits", String(stats.total { $0.keyspaceHits.load(ordering: .relaxed) })),
                ("keyspace_misses", String(stats.total { $0.keyspaceMisses.load(ordering: .relaxed) })),
                ("pubsub_channels", String(node.pubsub.channelCount)), ("pubsub_patterns", String(node.pubsub.patternCount)),
                ("pubsub_shardchannels", String(node.pubsub.shardChannelCount)),
                ("tracking_total_keys", String(context.keyspace.trackedKeyCount)),
                ("tracking_total_items", String(context.keyspace.trackedItemCount)),
                ("tracking_total_prefixes", String(node.tracking.prefixCount)),
                ("total_error_replies", String(stats.total { $0.errorReplies.load(ordering: .relaxed) })),
                ("rejected_commands_oom", String(stats.total { $0.rejectedCommandsOOM.load(ordering: .relaxed) })),
                ("sync_full", String(node.replication.syncFull.load(ordering: .relaxed))),
                ("sync_partial_ok", String(node.replication.syncPartialOK.load(ordering: .relaxed))),
                ("sync_partial_err", String(node.replication.syncPartialErr.load(ordering: .relaxed))),
                ("client_query_buffer_limit_disconnections",
                 String(node.queryBufferLimitDisconnections.load(ordering: .relaxed))),
                ("client_output_buffer_limit_disconnections",
                 String(node.outputBufferLimitDisconnections.load(ordering: .relaxed)
                        + node.replication.outputLimitDisconnections.load(ordering: .relaxed))),
                ("acl_access_denied_auth", String(node.acl.deniedCount("auth"))),
                ("acl_access_denied_cmd", String(node.acl.deniedCount("command"))),
                ("acl_access_denied_key", String(node.acl.deniedCount("key"))),
                ("acl_access_denied_channel", String(node.acl.deniedCount("channel"))),
            ]
        case "replication":
            return ReplicationFamily.infoFields(node)
        case "cpu":
            var user = 0.0
            var system = 0.0
            cps_cpu_seconds(&user, &system)
            return [("used_cpu_sys", NumberText.fixed(system, decimals: 6)), ("used_cpu_user", NumberText.fixed(user, decimals: 6))]
        case "commandstats":
            // redis's cmdstat lines, for the commands used since start or CONFIG RESETSTAT. A command's time runs
            // from its start to the next command's of the same client batch, or to the batch's end.
            let table = node.commands.commands
            return table.indices.compactMap { index -> (String, String)? in
                let calls = node.stats.total(.calls, of: index)
                let rejected = node.stats.total(.rejected, of: index)
                guard calls > 0 || rejected > 0 else { return nil }
                let microseconds = node.stats.total(.microseconds, of: index)
                let failed = node.stats.total(.failed, of: index)
                let perCall = NumberText.fixed(calls > 0 ? Double(microseconds) / Double(calls) : 0, decimals: 2)
                return ("cmdstat_\(table[index].name)",
                        "calls=\(calls),usec=\(microseconds),usec_per_call=\(perCall),rejected_calls=\(rejected),failed_calls=\(failed)")
            }
        case "errorstats":
            return node.errorReplyCountsByCode.map { ("errorstat_\($0.0)", "count=\($0.1)") }
        case "cluster":
            return [("cluster_enabled", node.cluster == nil ? "0" : "1")]
        case "keyspace":
            return context.keyspace.keyCounts().enumerated().compactMap { database, counts in
                counts.keys == 0 ? nil : ("db\(database)", "keys=\(counts.keys),expires=\(counts.volatile),avg_ttl=0")
            }
        default:
            return []
        }
    }
}

/// The cache-node release.
public enum CacheNodeVersion {
    public static let current = "0.1.0"
}
