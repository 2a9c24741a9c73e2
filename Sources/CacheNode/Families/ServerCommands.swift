// Server commands (redis server.c, config.c): INFO with redis's section and field names, CONFIG, COMMAND
// (generated from the command table), TIME, MEMORY, SHUTDOWN. (LASTSAVE lives in PersistenceCommands.swift.)
import CProcessStats
import CacheStore
import Foundation
import Logging
import RESPServer
import Synchronization

extension CommandTable {
    static let serverCommands: [CommandSpec] = [
        // INFO [section [section ...]]
        CommandSpec("info", arity: -1, flags: [.loading, .stale], group: .server,
                    summary: "Returns information and statistics about the server.") { context, reply throws(CommandError) in
            var sections: [String] = []
            for index in 1..<max(1, context.arguments.count) { sections.append(context.arguments.lowercased(index)) }
            // Only the keyspace and memory sections read the stripes; monitoring that polls other sections (e.g.
            // INFO persistence during a BGSAVE) must not queue behind a stripe being captured for a snapshot.
            // Inside EXEC every stripe is locked already.
            let readsStripes = !context.inTransaction && (sections.isEmpty
                || sections.contains { ["default", "all", "everything", "memory", "keyspace"].contains($0) })
            if readsStripes { context.keyspace.lockAll(capturing: false) }
            reply.verbatim(ServerInfo.render(sections: sections, context: context))
            if readsStripes { context.keyspace.unlockAll() }
        },
        // CONFIG GET|SET|RESETSTAT|REWRITE|HELP
        CommandSpec("config", arity: -2, flags: [.noScript, .admin, .loading, .stale], group: .server,
                    summary: "A container for server configuration commands.", since: "2.0.0",
                    subcommands: ["get", "set", "resetstat", "rewrite", "help"].map { name in
                        CommandSpec("config|\(name)", arity: -2, flags: [.noScript, .admin, .loading, .stale], group: .server,
                                    summary: "CONFIG \(name.uppercased())", since: "2.0.0") { _, _ throws(CommandError) in }
                    }) { context, reply throws(CommandError) in
            try ServerFamily.config(&context, &reply)
        },
        // COMMAND [COUNT | INFO name... | DOCS name... | LIST | GETKEYS command args...]
        CommandSpec("command", arity: -1, flags: [.loading, .stale], group: .server,
                    summary: "Returns detailed information about all commands.", since: "2.8.13") { context, reply throws(CommandError) in
            try ServerFamily.command(&context, &reply)
        },
        // TIME
        CommandSpec("time", arity: 1, flags: [.fast, .loading, .stale], group: .server,
                    summary: "Returns the server time.", since: "2.6.0") { context, reply throws(CommandError) in
            // The command's time, read when it started: in a script or EXEC, that of the script or EXEC (redis's
            // cached time), so a script sees one time throughout.
            let microseconds = context.startMicroseconds > 0 ? context.startMicroseconds : context.node.clock.nowMicroseconds()
            reply.arrayHeader(2)
            reply.bulk(String(microseconds / 1_000_000))
            reply.bulk(String(microseconds % 1_000_000))
        },
        // MEMORY USAGE key [SAMPLES count] | MEMORY STATS | MEMORY DOCTOR | MEMORY HELP
        CommandSpec("memory", arity: -2, flags: [.readonly], keys: .custom({ $0.count > 2 && $0.matches(1, "usage") ? [2] : [] }),
                    group: .server, summary: "A container for memory diagnostics commands.", since: "4.0.0",
                    subcommands: CommandSpec.subcommands(of: "memory", group: .server, since: "4.0.0", [
                        ("doctor", 2, [.readonly], "Outputs a memory problems report."),
                        ("malloc-stats", 2, [.readonly], "Returns the allocator statistics."),
                        ("purge", 2, [.readonly], "Asks the allocator to release memory."),
                        ("stats", 2, [.readonly], "Returns details about memory usage."),
                        ("usage", -3, [.readonly], "Estimates the memory usage of a key."),
                        ("help", 2, [.readonly], "Returns helpful text about the different subcommands."),
                    ])) { context, reply throws(CommandError) in
            let arguments = context.arguments
            if arguments.matches(1, "usage") && arguments.count >= 3 {
                guard let value = context.db.peek(context.key(2)) else {
                    reply.null()
                    return
                }
                let key = context.key(2)
                reply.integer(MemoryLayout<Entry>.stride + 16 + key.bytes.heapSize + value.heapSize)
            } else if arguments.matches(1, "help") && arguments.count == 2 {
                let lines = [
                    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "DOCTOR", "    Return memory problems reports.",
                    "STATS", "    Return information about the memory usage of the server.",
                    "USAGE <key> [SAMPLES <count>]", "    Return memory in bytes used by <key> and its value.",
                    "HELP", "    Print this help.",
                ]
                reply.simpleStringLines(lines)
            } else if arguments.matches(1, "doctor") {
                reply.verbatim("Sam, I detected no memory problems in this instance.")
            } else if arguments.matches(1, "stats") {
                let usage = ProcessMemory.current()
                reply.mapHeader(4)
                reply.bulk("peak.allocated"); reply.integer(usage.heap)
                reply.bulk("total.allocated"); reply.integer(usage.heap)
                reply.bulk("startup.allocated"); reply.integer(context.node.baselineMemory.load(ordering: .relaxed))
                reply.bulk("dataset.bytes"); reply.integer(context.keyspace.estimatedBytes(locked: false))
            } else {
                throw .unknownSubcommand(arguments.string(1), of: "memory")
            }
        },
        // MONITOR: from now on, every command the node runs is sent to this client as a line (see MonitorFeed).
        CommandSpec("monitor", arity: 1, flags: [.noScript, .admin, .noMulti, .loading, .stale], group: .server,
                    summary: "Listens for all requests received by the server in real-time.", since: "1.0.0") { context, reply throws(CommandError) in
            context.node.monitors.add(context.session)
            reply.ok()
        },
        // SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
        CommandSpec("shutdown", arity: -1, flags: [.noScript, .admin, .noAuth, .noMulti, .loading, .stale, .allowBusy], group: .server,
                    summary: "Synchronously saves the database(s) to disk and shuts down the Redis server.") { context, reply throws(CommandError) in
            guard context.session.isAuthenticated || context.node.configuration.requirePass == nil else { throw .noAuth }
            try ServerFamily.shutdown(&context)
        },
    ]
}

/// Shared implementations of the server commands.
enum ServerFamily {
    /// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: a final save as the modifiers and save rules ask, then the
    /// node stops. A failed save keeps the node running (unless FORCE) and says so, as redis does.
    static func shutdown(_ context: inout CommandContext) throws(CommandError) {
        let arguments = context.arguments
        var mode = ShutdownSave.whenRulesConfigured
        var force = false
        var abort = false
        for index in 1..<max(1, arguments.count) {
            switch arguments.lowercased(index) {
            case "nosave":
                guard mode != .always else { throw .syntax }
                mode = .never
            case "save":
                guard mode != .never else { throw .syntax }
                mode = .always
            case "now": break  // no replica wait to skip: shutdown never waits for replicas here
            case "force": force = true
            case "abort": abort = true
            default: throw .syntax
            }
        }
        if abort {
            guard arguments.count == 2 else { throw .syntax }
            throw CommandError("No shutdown in progress.")
        }
        let node = context.node
        // A busy script: only SHUTDOWN NOSAVE, which stops it whatever it wrote and drops its writes.
        if node.busyScript.isBusy {
            guard mode == .never else { throw node.busyScript.refusal }
            node.busyScript.abandon()
            node.scripts.forceKill()
            node.functions.forceKill()
        }
        do throws(PersistenceError) {
            if let outcome = try node.persistence.saveForShutdown(mode, node: node) {
                Logger(label: "cache-node.persistence").notice("Saved \(outcome.records) keys before shutting down (SHUTDOWN)")
            }
        } catch {
            Logger(label: "cache-node.persistence").error("Error trying to save the DB before shutting down: \(error.message)")
            guard force else { throw CommandError("Errors trying to SHUTDOWN. Check logs.") }
        }
        node.appendOnly.flushForShutdown(now: node.clock.nowMilliseconds())
        node.requestShutdown()
        context.closesConnection = true
    }

    static func config(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let node = context.node
        switch arguments.lowercased(1) {
        case "get":
            guard arguments.count >= 3 else { throw .wrongArity("config|get") }
            let configuration = node.configuration
            var pairs: [(String, String)] = []
            for index in 2..<arguments.count {
                let pattern = arguments.lowercased(index)
                for parameter in ConfigParameter.all {
                    for name in [parameter.name] + parameter.aliases where GlobPattern.matches(pattern, name) {
                        if !pairs.contains(where: { $0.0 == name }) { pairs.append((name, parameter.get(configuration))) }
                    }
                }
            }
            reply.mapHeader(pairs.count)
            for (name, value) in pairs {
                reply.bulk(name)
                reply.bulk(value)
            }
        case "set":
            guard arguments.count >= 4 && arguments.count % 2 == 0 else { throw .wrongArity("config|set") }
            var changes: [(ConfigParameter, String)] = []
            var named = Set<String>()
            for index in stride(from: 2, to: arguments.count, by: 2) {
                let name = arguments.string(index)
                guard let parameter = ConfigParameter.named(name) else {
                    throw CommandError("Unknown option or number of arguments for CONFIG SET - '\(name)'")
                }
                let value = arguments.string(index + 1)
                guard !named.contains(parameter.name) else {
                    throw CommandError("CONFIG SET failed (possibly related to argument '\(name)') - duplicate parameter")
                }
                named.insert(parameter.name)
                guard parameter.mutable else {
                    // Setting one this node fixes at start-up (port, bind: redis can change them live) to the value
                    // it has is a no-op, so scripts that re-apply a whole configuration work; another value is refused.
                    var unchanged = node.configuration
                    let current = parameter.get(unchanged)
                    if (try? parameter.set(&unchanged, value)) != nil && parameter.get(unchanged) == current { continue }
                    throw CommandError("CONFIG SET failed (possibly related to argument '\(name)') - can't set immutable config")
                }
                changes.append((parameter, value))
            }
            // A pushed revocation list (the framework revoked identities): verify and install it before recording it.
            for (parameter, value) in changes where parameter.name == "revocation-list" && !value.isEmpty {
                do { try node.replication.installRevocationList(at: value) } catch { throw CommandError(error.message) }
            }
            do {
                try node.updateConfiguration { (configuration: inout NodeConfiguration) throws(ConfigurationError) in
                    for (parameter, value) in changes {
                        do {
                            try parameter.set(&configuration, value)
                        } catch {
                                        throw ConfigurationError("CONFIG SET failed (possibly related to argument '\(parameter.name)') - \(error)")
                        }
                    }
                }
            } catch {
                throw CommandError(error.message)
            }
            // A new maxmemory takes effect now, as in redis (which evicts before replying): the stripes' sizes, kept
            // current only while a limit is set, are published and what is over the limit is evicted. Inside EXEC,
            // which holds every stripe, EXEC's unlocking publishes them and the next write command evicts.
            // A lower tracking-table-max-keys takes effect now too (redis enforces it before its next sleep).
            if !context.inTransaction && changes.contains(where: { $0.0.name == "tracking-table-max-keys" }) {
                node.enforceTrackingLimit()
            }
            if !context.inTransaction && changes.contains(where: { $0.0.name == "maxmemory" }) && node.keyspace.maxMemory > 0 {
                node.keyspace.publishSizes()
                _ = node.keyspace.evictIfNeeded(now: context.now, baseline: node.baselineMemory.load(ordering: .relaxed))
            }
            reply.ok()
        case "resetstat":
            node.stats.reset()
            node.keyspace.lazyFree.resetFreedCount()
            node.resetErrorReplyCounts()
            node.acl.resetDeniedCounts()
            node.rejectedConnections.store(0, ordering: .relaxed)
            node.queryBufferLimitDisconnections.store(0, ordering: .relaxed)
            node.outputBufferLimitDisconnections.store(0, ordering: .relaxed)
            node.replication.outputLimitDisconnections.store(0, ordering: .relaxed)
            reply.ok()
        case "rewrite":
            let configuration = node.configuration
            guard let path = configuration.configFile else { throw CommandError("The server is running without a config file") }
            var text = "# Rewritten by cache-node CONFIG REWRITE\n"
            text += "bind \(configuration.bind.joined(separator: " "))\n"
            for parameter in ConfigParameter.all where parameter.name != "bind" {
                let value = parameter.get(configuration)
                if parameter.name == "replicaof" {
                    // `replicaof host port` when replicating; otherwise no line (redis writes none either).
                    if !value.isEmpty { text += "replicaof \(value)\n" }
                    continue
                }
                // A setting that is unset (an empty replication-port) reads back only as no line at all.
                var scratch = NodeConfiguration()
                if (try? parameter.set(&scratch, value)) == nil { continue }
                text += "\(parameter.name) \(NodeConfiguration.quotedConfigValue(value))\n"
            }
            // Without an ACL file the users live in the config file, as `user` lines (redis rewriteConfigUserOption).
            if configuration.aclFile == nil {
                for name in node.acl.userNames {
                    if let user = node.acl.user(named: name) { text += AccessControl.describe(user) + "\n" }
                }
            }
            do {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw CommandError("Rewriting config file: \(error.localizedDescription)")
            }
            reply.ok()
        case "help":
            let lines = [
                "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
                "RESETSTAT", "    Reset statistics reported by the INFO command.",
                "REWRITE", "    Rewrite the configuration file.", "HELP", "    Print this help.",
            ]
            reply.simpleStringLines(lines)
        default:
            throw .unknownSubcommand(arguments.string(1), of: "config")
        }
    }

    static func command(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let table = context.node.commands
        if arguments.count == 1 {
            reply.arrayHeader(table.commands.count)
            for spec in table.commands { writeInfo(spec, &reply) }
            return
        }
        switch arguments.lowercased(1) {
        case "count":
            reply.integer(table.commands.count)
        case "list":
            reply.arrayHeader(table.commands.count)
            for spec in table.commands { reply.bulk(spec.name) }
        case "info":
            if arguments.count == 2 {
                reply.arrayHeader(table.commands.count)
                for spec in table.commands { writeInfo(spec, &reply) }
                return
            }
            reply.arrayHeader(arguments.count - 2)
            for index in 2..<arguments.count {
                if let spec = lookup(arguments.lowercased(index), in: table) { writeInfo(spec, &reply) } else { reply.nullArray() }
            }
        case "docs":
            let specs = arguments.count == 2
                ? table.commands
                : (2..<arguments.count).compactMap { lookup(arguments.lowercased($0), in: table) }
            reply.mapHeader(specs.count)
            for spec in specs { writeDocs(spec, &reply) }
        case "getkeys":
            guard arguments.count >= 3 else { throw .wrongArity("command|getkeys") }
            let inner = arguments.dropping(first: 2)
            guard let spec = table.lookup(inner) else { throw CommandError("Invalid command specified") }
            guard spec.acceptsArgumentCount(inner.count) else { throw CommandError("Invalid number of arguments specified for command") }
            let positions = spec.keys.positions(in: inner)
            guard !positions.isEmpty else { throw CommandError("The command has no key arguments") }
            reply.arrayHeader(positions.count)
            for position in positions { reply.bulk(inner.buffer(position)) }
        case "help":
            let lines = ["COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "(no subcommand)",
                         "    Return details about all commands.", "COUNT", "INFO [<command-name> ...]", "DOCS [<command-name> ...]",
                         "GETKEYS <full-command>", "LIST", "HELP"]
            reply.simpleStringLines(lines)
        default:
            throw .unknownSubcommand(arguments.string(1), of: "command")
        }
    }

    private static func lookup(_ name: String, in table: CommandTable) -> CommandSpec? {
        if let spec = table.command(named: name) { return spec }
        let parts = name.split(separator: "|")
        guard parts.count == 2, let container = table.command(named: String(parts[0])) else { return nil }
        return container.subcommands.first { $0.name == name }
    }

    /// One COMMAND INFO entry: name, arity, flags, first key, last key, step, ACL categories, tips, key specs,
    /// subcommands (redis 7 shape).
    static func writeInfo(_ spec: CommandSpec, _ reply: inout ReplyWriter) {
        reply.arrayHeader(10)
        reply.bulk(spec.name)
        reply.integer(spec.arity)
        var flags = spec.flags.names
        if spec.keys.isMovable { flags.append("movablekeys") }
        reply.setHeader(flags.count)
        for flag in flags { reply.simpleString(flag) }
        let (first, last, step) = spec.keys.legacyTriple
        reply.integer(first)
        reply.integer(last)
        reply.integer(step)
        let categories = AccessControl.categories(of: spec).map { "@" + $0 }
        reply.setHeader(categories.count)
        for category in categories { reply.simpleString(category) }
        reply.arrayHeader(0)
        reply.arrayHeader(0)
        reply.arrayHeader(spec.subcommands.count)
        for sub in spec.subcommands { writeInfo(sub, &reply) }
    }

    /// One COMMAND DOCS entry: name → {summary, since, group, complexity, subcommands}.
    static func writeDocs(_ spec: CommandSpec, _ reply: inout ReplyWriter) {
        reply.bulk(spec.name)
        reply.mapHeader(spec.subcommands.isEmpty ? 4 : 5)
        reply.bulk("summary"); reply.bulk(spec.summary)
        reply.bulk("since"); reply.bulk(spec.since)
        reply.bulk("group"); reply.bulk(spec.group.rawValue)
        reply.bulk("complexity"); reply.bulk(spec.flags.contains(.fast) ? "O(1)" : "O(N)")
        if !spec.subcommands.isEmpty {
            reply.bulk("subcommands")
            reply.mapHeader(spec.subcommands.count)
            for sub in spec.subcommands { writeDocs(sub, &reply) }
        }
    }
}

/// Memory figures of this process, from the allocator and the kernel (not estimates).
struct ProcessMemory {
    /// Bytes allocated on the heap (glibc mallinfo2: in-use arena bytes plus mmapped blocks).
    var heap: Int
    /// Resident set size.
    var resident: Int

    static func current() -> ProcessMemory {
        let heap = Int(cps_heap_allocated_bytes())
        var resident = 0
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = statm.split(separator: " ")
            if fields.count > 1, let pages = Int(fields[1]) { resident = pages * Int(sysconf(Int32(_SC_PAGESIZE))) }
        }
        return ProcessMemory(heap: heap, resident: resident)
    }
}
