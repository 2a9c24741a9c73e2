// Lua scripting (redis eval.c, script.c): EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD|EXISTS|FLUSH|KILL.
// A script runs with every stripe locked, so it is atomic against every other client, as in redis. Its
// redis.call()s go through the command table with redis's script rules (no-script commands refused, read-only
// scripts refused writes, blocking commands do not block) and run as EXEC runs its queue; their writes reach
// replicas and the append-only file as the commands themselves, wrapped in MULTI/EXEC (redis 7's effects
// replication), so a replica never runs Lua.
import CacheStore
import Logging
import NIOCore
import RESPServer
import Synchronization

extension CommandTable {
    static let scriptingCommands: [CommandSpec] = [
        // EVAL script numkeys [key [key ...]] [arg [arg ...]]
        CommandSpec("eval", arity: -3, flags: [.noScript, .mayReplicate, .wholeKeyspace, .stale, .skipMonitor],
                    keys: .counted(destination: nil, countIndex: 2), group: .scripting,
                    summary: "Executes a server-side Lua script.", since: "2.6.0") { context, reply throws(CommandError) in
            try ScriptingFamily.eval(&context, &reply, bySHA: false, readOnly: false)
        },
        // EVALSHA sha1 numkeys [key [key ...]] [arg [arg ...]]
        CommandSpec("evalsha", arity: -3, flags: [.noScript, .mayReplicate, .wholeKeyspace, .stale, .skipMonitor],
                    keys: .counted(destination: nil, countIndex: 2), group: .scripting,
                    summary: "Executes a server-side Lua script by SHA1 digest.", since: "2.6.0") { context, reply throws(CommandError) in
            try ScriptingFamily.eval(&context, &reply, bySHA: true, readOnly: false)
        },
        // EVAL_RO script numkeys [key [key ...]] [arg [arg ...]]
        CommandSpec("eval_ro", arity: -3, flags: [.noScript, .readonly, .wholeKeyspace, .stale, .skipMonitor],
                    keys: .counted(destination: nil, countIndex: 2), group: .scripting,
                    summary: "Executes a read-only server-side Lua script.", since: "7.0.0") { context, reply throws(CommandError) in
            try ScriptingFamily.eval(&context, &reply, bySHA: false, readOnly: true)
        },
        // EVALSHA_RO sha1 numkeys [key [key ...]] [arg [arg ...]]
        CommandSpec("evalsha_ro", arity: -3, flags: [.noScript, .readonly, .wholeKeyspace, .stale, .skipMonitor],
                    keys: .counted(destination: nil, countIndex: 2), group: .scripting,
                    summary: "Executes a read-only server-side Lua script by SHA1 digest.", since: "7.0.0") {
            context, reply throws(CommandError) in
            try ScriptingFamily.eval(&context, &reply, bySHA: true, readOnly: true)
        },
        // SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP
        CommandSpec("script", arity: -2, flags: [.noScript, .noKeyspace], group: .scripting,
                    summary: "A container for Lua scripts management commands.", since: "2.6.0",
                    subcommands: [
                        ("load", 3, "Loads a server-side Lua script to the script cache."),
                        ("exists", -3, "Determines whether server-side Lua scripts exist in the script cache."),
                        ("flush", -2, "Removes all server-side Lua scripts from the script cache."),
                        ("kill", 2, "Terminates a server-side Lua script during execution."),
                        ("help", 2, "Returns helpful text about the different subcommands."),
                    ].map { name, arity, summary in
                        CommandSpec("script|\(name)", arity: arity, flags: name == "kill" ? [.noScript, .noKeyspace, .allowBusy] : [.noScript, .noKeyspace], group: .scripting,
                                    summary: summary, since: "2.6.0") { _, _ throws(CommandError) in }
                    }) { context, reply throws(CommandError) in
            try ScriptingFamily.script(&context, &reply)
        },
    ]
}

/// The scripting commands' implementations.
enum ScriptingFamily {
    static let noScriptError = CommandError(code: "NOSCRIPT", "No matching script. Please use EVAL.")

    static func eval(_ context: inout CommandContext, _ reply: inout ReplyWriter, bySHA: Bool, readOnly: Bool) throws(CommandError) {
        let arguments = context.arguments
        // MONITOR shows the script's command first, then the commands it runs as `[db lua]` (redis evalCommand).
        if context.node.monitors.isActive { context.node.feedMonitors(arguments, spec: context.spec, session: context.session) }
        guard let keyCount = arguments.integer(2) else { throw .notInteger }
        if keyCount < 0 { throw CommandError("Number of keys can't be negative") }
        if keyCount > arguments.count - 3 { throw CommandError("Number of keys can't be greater than number of args") }
        let scripts = context.node.scripts
        let sha: String
        let flags: ScriptFlags
        if bySHA {
            sha = arguments.string(1).lowercased()
            guard sha.utf8.count == 40, let known = scripts.flags(of: sha) else { throw noScriptError }
            flags = known
        } else {
            (sha, flags) = try scripts.load(arguments.bytes(1))
        }
        let clientProtocol = reply.protocolVersion == .v3 ? 3 : 2
        try run(&context, &reply, flags: flags, readOnly: readOnly, keyCount: keyCount, runner: .eval(scripts)) { keys, arguments, invocation in
            scripts.run(sha: sha, keys: keys, arguments: arguments, clientProtocol: clientProtocol, invocation: invocation)
        }
    }

    /// SCRIPT KILL's and FUNCTION KILL's replies (redis scriptKill): a running script of the other kind is named in a
    /// -BUSY error; one that wrote cannot be stopped.
    static func kill(
        _ outcome: ScriptEngine.KillOutcome, otherKindRunning: Bool, otherKindRefusal: CommandError
    ) throws(CommandError) {
        switch outcome {
        case .killed: return
        case .notBusy:
            if otherKindRunning { throw otherKindRefusal }
            throw CommandError(code: "NOTBUSY", "No scripts in execution right now.")
        case .unkillable:
            throw CommandError(
                code: "UNKILLABLE",
                "Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.")
        }
    }

    /// What EVAL and FCALL share once they know the script's flags: the up-front refusals, the run with the
    /// caller's database restored after it, the wake-ups and the replication of its writes, and the error counts.
    /// `body` runs the script with its KEYS and ARGV.
    static func run(
        _ context: inout CommandContext, _ reply: inout ReplyWriter, flags: ScriptFlags, readOnly: Bool, keyCount: Int,
        runner: ScriptInvocation.Runner,
        _ body: ([[UInt8]], [[UInt8]], ScriptInvocation) -> (reply: [UInt8], kind: ScriptEngine.ReplyKind)
    ) throws(CommandError) {
        let arguments = context.arguments
        // A script with a shebang that may write is refused up front over maxmemory unless it says allow-oom
        // (redis scriptFlagsToCmdFlags adds CMD_DENYOOM); one without a shebang only at its first such write.
        if context.outOfMemoryAtStart && flags.contains(.declared) && flags.isDisjoint(with: [.allowOOM, .noWrites]) {
            throw .outOfMemory
        }
        if flags.contains(.noCluster) && context.node.cluster != nil {
            throw CommandError("Can not run script on cluster, 'no-cluster' flag is set.")
        }
        let keys = (0..<keyCount).map { arguments.bytes(3 + $0) }
        let scriptArguments = (3 + keyCount..<arguments.count).map { arguments.bytes($0) }
        let session = context.session
        let invocation = ScriptInvocation(
            session: session, node: context.node, now: context.now,
            startMicroseconds: context.startMicroseconds > 0 ? context.startMicroseconds : context.node.clock.nowMicroseconds(),
            readOnly: readOnly || flags.contains(.noWrites),
            outOfMemoryAtStart: context.outOfMemoryAtStart && !flags.contains(.allowOOM), runner: runner)
        // A SELECT inside the script is the script's own (redis 7): the caller's database is restored after it.
        let database = session.database
        let outcome = body(keys, scriptArguments, invocation)
        // A busy script ended: other clients are served again. One SHUTDOWN NOSAVE stopped did not finish: its writes
        // are not replicated (redis exits before they are).
        let abandoned = context.node.busyScript.isBusy && context.node.busyScript.scriptEnded()
        if session.database != database { session.database = database }
        for key in invocation.readyKeys { context.appendReady(key) }
        // Inside EXEC, EXEC wraps the whole transaction; otherwise the script's writes form one.
        if !context.inTransaction && context.node.replication.isRecording {
            if abandoned {
                context.node.replication.discardTransaction()
            } else {
                context.node.replication.commitTransaction()
            }
        }
        if outcome.kind != .value, let index = context.node.commands.lookupIndex(arguments) {
            session.stats.commands.add(1, to: .failed, of: index)
        }
        if outcome.kind == .error {
            session.stats.errorReplies.wrappingAdd(1, ordering: .relaxed)
            let code = outcome.reply.dropFirst().prefix { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") }
            context.node.recordErrorReply(code: String(decoding: code, as: UTF8.self))
        }
        reply.buffer.writeBytes(outcome.reply)
    }

    static func script(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let scripts = context.node.scripts
        // KILL reaches a running script; the others need the engine it holds.
        if !arguments.matches(1, "kill") && !arguments.matches(1, "help") { try context.node.waitForIdleScriptEngines() }
        switch arguments.lowercased(1) {
        case "load":
            reply.bulk(try scripts.load(arguments.bytes(2)).sha)
        case "exists":
            reply.arrayHeader(arguments.count - 2)
            for index in 2..<arguments.count { reply.integer(scripts.contains(arguments.string(index).lowercased()) ? 1 : 0) }
        case "flush":
            guard arguments.count <= 3 else { throw .syntax }
            if arguments.count == 3 && !arguments.matches(2, "async") && !arguments.matches(2, "sync") {
                throw CommandError("SCRIPT FLUSH only support SYNC|ASYNC option")
            }
            scripts.flush()
            reply.ok()
        case "kill":
            try ScriptingFamily.kill(scripts.kill(), otherKindRunning: context.node.functions.isRunning.load(ordering: .acquiring),
                                     otherKindRefusal: BusyScript.functionRefusal)
            reply.ok()
        case "help":
            let lines = [
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
                "HELP",
                "    Print this help.",
            ]
            reply.simpleStringLines(lines)
        default:
            throw CommandError(
                "unknown subcommand '\(arguments.string(1).prefix(128))'. Try SCRIPT HELP.")
        }
    }
}

/// One EVAL's run, for its redis.call()s: the caller's session and the node, the command's time, and what the
/// script has done so far (redis scriptRunCtx). Used only on the thread running the script, inside the script
/// engine's lock (hence unchecked: it is handed to the Lua engine's callbacks through that lock).
final class ScriptInvocation: @unchecked Sendable {
    private static let logger = Logger(label: "cache-node.scripts")

    let session: ClientSession
    let node: NodeState
    let now: Int64
    let readOnly: Bool
    let outOfMemoryAtStart: Bool
    let runner: Runner
    /// When the script started (unix µs): TIME inside it answers this, as redis's cached time.
    let startMicroseconds: Int64
    private var wrote = false
    private(set) var readyKeys: [DatabaseKey] = []

    /// The engine running the script: EVAL's or FUNCTION's (each tells its own KILL whether the script wrote).
    enum Runner {
        case eval(ScriptEngine)
        case function(FunctionEngine)
    }

    init(
        session: ClientSession, node: NodeState, now: Int64, startMicroseconds: Int64, readOnly: Bool, outOfMemoryAtStart: Bool,
        runner: Runner
    ) {
        self.session = session
        self.node = node
        self.now = now
        self.startMicroseconds = startMicroseconds
        self.readOnly = readOnly
        self.outOfMemoryAtStart = outOfMemoryAtStart
        self.runner = runner
    }

    /// Runs one redis.call with every stripe held; returns its RESP reply (an error reply when refused).
    func call(_ arguments: CommandArguments, protocolVersion: Int) -> ByteBuffer {
        var reply = ReplyWriter(buffer: ByteBuffer(), protocolVersion: protocolVersion == 3 ? .v3 : .v2)
        guard let index = node.commands.lookupIndex(arguments) else {
            NodeDispatcher.replyError(
                CommandError("Unknown Redis command called from script"), session: session, node: node, reply: &reply)
            return reply.buffer
        }
        let spec = node.commands.commands[index]
        if let refusal = refusal(spec, index, arguments) {
            // Counted here, as redis's scriptCall counts it; the script's error reply built from it is not again.
            session.stats.commands.add(1, to: .rejected, of: index)
            NodeDispatcher.replyError(refusal, session: session, node: node, reply: &reply)
            return reply.buffer
        }
        if spec.flags.contains(.write) {
            wrote = true
            switch runner {
            case .eval(let engine): engine.runningScriptWrote.store(true, ordering: .releasing)
            case .function(let engine): engine.runningFunctionWrote.store(true, ordering: .releasing)
            }
        }
        let ready = NodeDispatcher.runQueued(
            QueuedCommand(spec: spec, arguments: arguments, commandIndex: index), session: session, node: node, now: now,
            startMicroseconds: startMicroseconds, reply: &reply, fromScript: true)
        readyKeys.append(contentsOf: ready)
        return reply.buffer
    }

    /// redis.acl_check_cmd: `:1` if the script's user may run the command, `:0` if not (nothing logged), an error if
    /// there is no such command.
    func aclCheck(_ arguments: CommandArguments) -> ByteBuffer {
        var reply = ReplyWriter(buffer: ByteBuffer(), protocolVersion: .v2)
        guard let index = node.commands.lookupIndex(arguments) else {
            reply.error(code: "ERR", message: "Invalid command passed to redis.acl_check_cmd()")
            return reply.buffer
        }
        let allowed = session.user.map { node.acl.denial($0, node.commands.commands[index], index, arguments) == nil } ?? true
        reply.integer(allowed ? 1 : 0)
        return reply.buffer
    }

    /// redis scriptCall's checks for a known command, in its order.
    private func refusal(_ spec: CommandSpec, _ commandIndex: Int, _ arguments: CommandArguments) -> CommandError? {
        guard spec.acceptsArgumentCount(arguments.count) && spec.subcommandWithWrongArity(in: arguments) == nil else {
            return CommandError("Wrong number of args calling Redis command from script")
        }
        if (spec.flags.contains(.noScript) || spec.subcommand(of: arguments)?.flags.contains(.noScript) == true)
            && !node.scriptsMayCallAnyCommand.load(ordering: .relaxed) {
            return CommandError("This Redis command is not allowed from script")
        }
        // The caller's ACL rules hold inside the script too (redis scriptVerifyACL).
        if let refused = node.acl.refusal(session, spec, commandIndex, arguments, context: "lua", node: node) {
            return CommandError("ACL failure in script: " + refused.denial.message(user: refused.username))
        }
        // A may-replicate command (PUBLISH, PFCOUNT) counts as a write for a read-only script (redis
        // scriptVerifyWriteCommandAllow), so that such scripts can run during CLIENT PAUSE WRITE.
        if readOnly && !spec.flags.isDisjoint(with: [.write, .mayReplicate]) {
            return CommandError("Write commands are not allowed from read-only scripts.")
        }
        if spec.flags.contains(.write) {
            if !wrote && node.replication.isReplica && node.replication.readOnly && !session.isPrimaryLink {
                return .readOnlyReplica
            }
        }
        if spec.flags.contains(.denyOOM) && !wrote && outOfMemoryAtStart { return .outOfMemory }
        if let cluster = node.cluster, !session.isPrimaryLink {
            let positions = spec.keys.positions(in: arguments)
            if !positions.isEmpty,
               case .reject = cluster.routing.route(spec, arguments, positions: positions, asking: false,
                                                    readOnlyClient: session.isReadOnlyClusterClient) {
                return CommandError("Script attempted to access a non local key in a cluster node")
            }
        }
        return nil
    }

    /// The script has run for busy-reply-threshold: other clients are refused from now until it ends.
    func reportBusy() {
        switch runner {
        case .eval: node.busyScript.report(.eval)
        case .function: node.busyScript.report(.function)
        }
    }

    /// redis.log: levels 0–3 are redis's debug, verbose, notice and warning.
    func log(level: Int, _ message: String) {
        switch level {
        case 0: Self.logger.debug("\(message)")
        case 1: Self.logger.info("\(message)")
        case 2: Self.logger.notice("\(message)")
        default: Self.logger.warning("\(message)")
        }
    }
}
