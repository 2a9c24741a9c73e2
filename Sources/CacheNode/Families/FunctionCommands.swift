// Redis functions (redis functions.c): FCALL, FCALL_RO and FUNCTION LOAD|DELETE|FLUSH|LIST|DUMP|RESTORE|STATS|KILL.
// A function runs as an EVAL script does (every stripe locked, its writes replicated as the commands it ran, in one
// MULTI/EXEC); what differs is where the code comes from: libraries that FUNCTION LOAD registered, kept in snapshots
// and sent to replicas, and that FUNCTION LOAD/DELETE/FLUSH/RESTORE change on replicas and in the append-only file as
// those commands themselves.
import CacheStore
import NIOCore
import RESPServer
import Synchronization

extension CommandTable {
    static let functionCommands: [CommandSpec] = [
        // FCALL function numkeys [key [key ...]] [arg [arg ...]]
        CommandSpec("fcall", arity: -3, flags: [.noScript, .mayReplicate, .wholeKeyspace, .stale, .skipMonitor],
                    keys: .counted(destination: nil, countIndex: 2), group: .scripting,
                    summary: "Invokes a function.", since: "7.0.0") { context, reply throws(CommandError) in
            try FunctionFamily.fcall(&context, &reply, readOnly: false)
        },
        // FCALL_RO function numkeys [key [key ...]] [arg [arg ...]]
        CommandSpec("fcall_ro", arity: -3, flags: [.noScript, .readonly, .wholeKeyspace, .stale, .skipMonitor],
                    keys: .counted(destination: nil, countIndex: 2), group: .scripting,
                    summary: "Invokes a read-only function.", since: "7.0.0") { context, reply throws(CommandError) in
            try FunctionFamily.fcall(&context, &reply, readOnly: true)
        },
        // FUNCTION LOAD|DELETE|FLUSH|LIST|DUMP|RESTORE|STATS|KILL|HELP. The container may replicate: its writing
        // subcommands lock the keyspace and propagate themselves (FunctionFamily.changingLibraries), the others are
        // reads (allowed on replicas and during CLIENT PAUSE WRITE, as in redis, where only those subcommands carry
        // the write flag). It takes no stripe lock itself, so FUNCTION STATS and KILL reach a running FCALL.
        CommandSpec("function", arity: -2, flags: [.noScript, .mayReplicate, .noKeyspace], group: .scripting,
                    summary: "A container for function commands.", since: "7.0.0",
                    subcommands: CommandSpec.subcommands(of: "function", group: .scripting, since: "7.0.0", [
                        ("load", -3, [.noScript, .write, .denyOOM], "Creates a library."),
                        ("delete", 3, [.noScript, .write], "Deletes a library and its functions."),
                        ("flush", -2, [.noScript, .write], "Deletes all libraries and functions."),
                        ("restore", -3, [.noScript, .write, .denyOOM], "Restores all libraries from a payload."),
                        ("list", -2, [.noScript], "Returns information about all libraries."),
                        ("dump", 2, [.noScript], "Dumps all libraries into a serialized binary payload."),
                        ("stats", 2, [.noScript, .allowBusy], "Returns information about a function during execution."),
                        ("kill", 2, [.noScript, .allowBusy], "Terminates a function during execution."),
                        ("help", 2, [.loading, .stale], "Returns helpful text about the different subcommands."),
                    ])) { context, reply throws(CommandError) in
            try FunctionFamily.function(&context, &reply)
        },
    ]
}

/// The function commands' implementations.
enum FunctionFamily {
    static func fcall(_ context: inout CommandContext, _ reply: inout ReplyWriter, readOnly: Bool) throws(CommandError) {
        let arguments = context.arguments
        // MONITOR shows FCALL first, then the commands its function runs (redis fcallCommandGeneric).
        if context.node.monitors.isActive { context.node.feedMonitors(arguments, spec: context.spec, session: context.session) }
        let name = arguments.string(1)
        let functions = context.node.functions
        guard let flags = functions.flags(of: name) else { throw CommandError("Function not found") }
        guard let keyCount = arguments.integer(2) else { throw CommandError("Bad number of keys provided") }
        if keyCount > arguments.count - 3 { throw CommandError("Number of keys can't be greater than number of args") }
        if keyCount < 0 { throw CommandError("Number of keys can't be negative") }
        // redis scriptPrepareForRun: a function that may write cannot run through the read-only command.
        if readOnly && !flags.contains(.noWrites) {
            throw CommandError("Can not execute a script with write flag using *_ro command.")
        }
        let clientProtocol = reply.protocolVersion == .v3 ? 3 : 2
        let now = context.now
        try ScriptingFamily.run(&context, &reply, flags: flags, readOnly: readOnly, keyCount: keyCount, runner: .function(functions)) {
            keys, scriptArguments, invocation in
            guard let outcome = functions.call(
                name, keys: keys, arguments: scriptArguments, command: arguments, clientProtocol: clientProtocol, now: now,
                invocation: invocation)
            else {
                // Deleted between the flags' lookup and the call: FUNCTION holds every stripe as FCALL does, so this
                // does not happen; the reply is the one a missing function gets.
                return (Array("-ERR Function not found\r\n".utf8), .error)
            }
            return outcome
        }
    }

    static func function(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let functions = context.node.functions
        let subcommand = arguments.lowercased(1)
        // STATS and KILL reach a running function; the others need the engine it holds.
        if subcommand != "stats" && subcommand != "kill" && subcommand != "help" { try context.node.waitForIdleScriptEngines() }
        if context.spec.subcommand(of: arguments)?.flags.contains(.write) == true {
            // The write flag is the subcommand's, so the dispatcher's replica check does not see it.
            let node = context.node
            if node.replication.isReplica && node.replication.readOnly && !context.session.isPrimaryLink {
                throw .readOnlyReplica
            }
        }
        switch subcommand {
        case "load":
            var replace = false
            var position = 2
            while position < arguments.count - 1 {
                guard arguments.matches(position, "replace") else {
                    throw CommandError("Unknown option given: \(arguments.string(position))")
                }
                replace = true
                position += 1
            }
            guard position < arguments.count else { throw CommandError("Function code is missing") }
            // No time limit for what the primary or the append-only file sends (redis mustObeyClient; the log is
            // replayed through a session in the primary's role).
            let timeout = context.session.isPrimaryLink ? 0 : FunctionEngine.loadTimeoutMilliseconds
            let code = arguments.bytes(position)
            let name = try changingLibraries(&context) { () throws(CommandError) in
                try functions.load(code, replace: replace, timeoutMilliseconds: timeout)
            }
            reply.bulk(name)
        case "delete":
            let name = arguments.string(2)
            try changingLibraries(&context) { () throws(CommandError) in try functions.delete(name) }
            reply.ok()
        case "flush":
            if arguments.count > 3 { throw .subcommandSyntax(arguments.string(1), of: "function") }
            if arguments.count == 3 && !arguments.matches(2, "sync") && !arguments.matches(2, "async") {
                throw CommandError("FUNCTION FLUSH only supports SYNC|ASYNC option")
            }
            try changingLibraries(&context) { () throws(CommandError) in functions.flush() }
            reply.ok()
        case "restore":
            if arguments.count > 4 { throw .subcommandSyntax(arguments.string(1), of: "function") }
            var policy = FunctionEngine.RestorePolicy.append
            if arguments.count == 4 {
                if arguments.matches(3, "append") {
                    policy = .append
                } else if arguments.matches(3, "replace") {
                    policy = .replace
                } else if arguments.matches(3, "flush") {
                    policy = .flush
                } else {
                    throw CommandError("Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.")
                }
            }
            let sources = try FunctionDumpPayload.decode(arguments.bytes(2))
            try changingLibraries(&context) { () throws(CommandError) in try functions.restore(sources, policy: policy) }
            reply.ok()
        case "list":
            var withCode = false
            var pattern: String?
            var position = 2
            while position < arguments.count {
                if !withCode && arguments.matches(position, "withcode") {
                    withCode = true
                } else if pattern == nil && arguments.matches(position, "libraryname") {
                    guard position < arguments.count - 1 else { throw CommandError("library name argument was not given") }
                    position += 1
                    pattern = arguments.string(position)
                } else {
                    throw CommandError("Unknown argument \(arguments.string(position))")
                }
                position += 1
            }
            let libraries = functions.libraries().filter { library in pattern.map { GlobPattern.matches($0, library.name, caseless: true) } ?? true }
            reply.arrayHeader(libraries.count)
            for library in libraries {
                reply.mapHeader(withCode ? 4 : 3)
                reply.bulk("library_name")
                reply.bulk(library.name)
                reply.bulk("engine")
                reply.bulk("LUA")
                reply.bulk("functions")
                reply.arrayHeader(library.functions.count)
                for function in library.functions {
                    reply.mapHeader(3)
                    reply.bulk("name")
                    reply.bulk(function.name)
                    reply.bulk("description")
                    if let description = function.description { reply.bulk(description) } else { reply.null() }
                    reply.bulk("flags")
                    let names = flagNames(function.flags)
                    reply.setHeader(names.count)
                    for name in names { reply.bulk(name) }
                }
                if withCode {
                    reply.bulk("library_code")
                    library.code.withUnsafeBytes { reply.bulk($0) }
                }
            }
        case "dump":
            let payload = FunctionDumpPayload.encode(functions.librarySources())
            payload.withUnsafeBytes { reply.bulk($0) }
        case "stats":
            reply.mapHeader(2)
            reply.bulk("running_script")
            if let running = functions.runningFunction {
                reply.mapHeader(3)
                reply.bulk("name")
                reply.bulk(running.name)
                reply.bulk("command")
                reply.arrayHeader(running.command.count)
                for index in 0..<running.command.count { running.command.withBytes(index) { reply.bulk($0) } }
                reply.bulk("duration_ms")
                reply.integer(Int(max(0, context.node.clock.nowMilliseconds() - running.startedAt)))
            } else {
                reply.null()
            }
            let memory = functions.memory
            reply.bulk("engines")
            reply.mapHeader(1)
            reply.bulk("LUA")
            reply.mapHeader(2)
            reply.bulk("libraries_count")
            reply.integer(memory.libraries)
            reply.bulk("functions_count")
            reply.integer(memory.functions)
        case "kill":
            try ScriptingFamily.kill(functions.kill(), otherKindRunning: context.node.scripts.isRunning.load(ordering: .acquiring),
                                     otherKindRefusal: BusyScript.evalRefusal)
            reply.ok()
        case "help":
            reply.simpleStringLines([
                "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "LOAD [REPLACE] <FUNCTION CODE>",
                "    Create a new library with the given library name and code.",
                "DELETE <LIBRARY NAME>",
                "    Delete the given library.",
                "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
                "    Return general information on all the libraries:",
                "    * Library name",
                "    * The engine used to run the Library",
                "    * Library description",
                "    * Functions list",
                "    * Library code (if WITHCODE is given)",
                "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
                "STATS",
                "    Return information about the current function running:",
                "    * Function name",
                "    * Command used to run the function",
                "    * Duration in MS that the function is running",
                "    If no function is running, return nil",
                "    In addition, returns a list of available engines.",
                "KILL",
                "    Kill the current running function.",
                "FLUSH [ASYNC|SYNC]",
                "    Delete all the libraries.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the libraries.",
                "    * SYNC: Synchronously flush the libraries.",
                "DUMP",
                "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
                "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
                "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
                "    control how to handle existing libraries (default APPEND):",
                "    * FLUSH: delete all existing libraries.",
                "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
                "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
                "      libraries with the new libraries (notice that even on this option there is a chance of failure",
                "      in case of functions name collision with another library).",
                "HELP",
                "    Print this help.",
            ])
        default:
            throw CommandError.unknownSubcommand(arguments.string(1), of: "function")
        }
    }

    /// Runs a writing subcommand with every stripe locked (EXEC already holds them inside a transaction), as a
    /// whole-keyspace write runs: a snapshot, which reads the libraries while it freezes the keyspace, has it entirely
    /// or not at all. Once it succeeded it counts as a change for the save rules and goes to replicas and the
    /// append-only file as received, still under the locks, so the stream has the changes in the order they ran
    /// (the container's own flags do not say it writes).
    @discardableResult
    private static func changingLibraries<Result>(
        _ context: inout CommandContext, _ change: () throws(CommandError) -> Result
    ) throws(CommandError) -> Result {
        let keyspace = context.keyspace
        if !context.inTransaction {
            let busyScript = context.node.busyScript
            guard keyspace.lockAll(abandoningWhen: { busyScript.isBusy }) else { throw busyScript.refusal }
        }
        defer { if !context.inTransaction { keyspace.unlockAll() } }
        let result = try change()
        context.session.stats.changesApplied.wrappingAdd(1, ordering: .relaxed)
        if context.node.replication.isRecording { context.node.replication.propagate(context) }
        return result
    }

    /// FUNCTION LIST's flag names (redis scripts_flags_def).
    static func flagNames(_ flags: ScriptFlags) -> [String] {
        let table: [(ScriptFlags, String)] = [
            (.noWrites, "no-writes"), (.allowOOM, "allow-oom"), (.allowStale, "allow-stale"), (.noCluster, "no-cluster"),
            (.allowCrossSlotKeys, "allow-cross-slot-keys"),
        ]
        return table.filter { flags.contains($0.0) }.map(\.1)
    }
}

/// FUNCTION DUMP's payload: each library as a snapshot's function-library entry (0xF5, UInt32 LE length, source),
/// then a 2-byte version and a CRC-64 of everything before it, as DUMP payloads of keys carry.
enum FunctionDumpPayload {
    static let version: UInt16 = 1
    static let libraryOpcode = SnapshotFormat.functionLibraryOpcode

    static func encode(_ sources: [[UInt8]]) -> [UInt8] {
        var bytes: [UInt8] = []
        for source in sources {
            bytes.append(libraryOpcode)
            withUnsafeBytes(of: UInt32(source.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: source)
        }
        withUnsafeBytes(of: version.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: CRC64.checksum(bytes).littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// The libraries' sources, after checking the version and checksum.
    static func decode(_ payload: [UInt8]) throws(CommandError) -> [[UInt8]] {
        guard payload.count >= 10 else { throw CommandError("DUMP payload version or checksum are wrong") }
        let bodyEnd = payload.count - 10
        let version = UInt16(payload[bodyEnd]) | UInt16(payload[bodyEnd + 1]) << 8
        let stored = (0..<8).reduce(UInt64(0)) { $0 | UInt64(payload[bodyEnd + 2 + $1]) << (8 * UInt64($1)) }
        guard version == Self.version, CRC64.checksum(payload[0..<bodyEnd + 2]) == stored else {
            throw CommandError("DUMP payload version or checksum are wrong")
        }
        var sources: [[UInt8]] = []
        var offset = 0
        while offset < bodyEnd {
            guard payload[offset] == libraryOpcode else { throw CommandError("given type is not a function") }
            guard offset + 5 <= bodyEnd else { throw CommandError("failed loading the given functions payload") }
            let length = (1...4).reduce(0) { $0 | Int(payload[offset + $1]) << (8 * ($1 - 1)) }
            guard offset + 5 + length <= bodyEnd else { throw CommandError("failed loading the given functions payload") }
            sources.append(Array(payload[offset + 5..<offset + 5 + length]))
            offset += 5 + length
        }
        return sources
    }
}
