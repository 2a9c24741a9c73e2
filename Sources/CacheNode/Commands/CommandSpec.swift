// Command metadata as data: name, arity, flags, key positions, group and docs. The dispatcher checks arity, auth,
// transaction and memory rules from these fields in one place (redis server.c processCommand); COMMAND INFO/DOCS
// are generated from them; handlers only implement the command.
public import RESPServer

/// How a command behaves, as redis's command flags (server.h `CMD_*`).
public struct CommandFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// May modify the keyspace (refused on read-only replicas; propagated to replicas).
    public static let write = CommandFlags(rawValue: 1 << 0)
    /// Only reads.
    public static let readonly = CommandFlags(rawValue: 1 << 1)
    /// May grow memory: refused with OOM when over `maxmemory` and nothing can be evicted.
    public static let denyOOM = CommandFlags(rawValue: 1 << 2)
    /// Administrative (CONFIG, FLUSHALL…).
    public static let admin = CommandFlags(rawValue: 1 << 3)
    /// Pub/sub related.
    public static let pubsub = CommandFlags(rawValue: 1 << 4)
    /// May block the client (BLPOP).
    public static let blocking = CommandFlags(rawValue: 1 << 5)
    /// O(1) or O(log N) (reported by COMMAND).
    public static let fast = CommandFlags(rawValue: 1 << 6)
    /// Allowed before AUTH (AUTH, HELLO, QUIT…).
    public static let noAuth = CommandFlags(rawValue: 1 << 7)
    /// Allowed in RESP2 subscriber mode.
    public static let allowedWhileSubscribed = CommandFlags(rawValue: 1 << 8)
    /// Not queued inside MULTI but run immediately (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
    public static let transactionControl = CommandFlags(rawValue: 1 << 9)
    /// Needs every stripe locked (whole-keyspace commands: KEYS, SCAN, FLUSHALL, SWAPDB, DBSIZE…).
    public static let wholeKeyspace = CommandFlags(rawValue: 1 << 10)
    /// Runs without keyspace locks (connection and server commands that touch no keys).
    public static let noKeyspace = CommandFlags(rawValue: 1 << 11)
    /// Allowed while loading / stale (reported only).
    public static let loading = CommandFlags(rawValue: 1 << 12)
    public static let stale = CommandFlags(rawValue: 1 << 13)
    /// Not allowed inside MULTI (SUBSCRIBE under RESP2, WATCH).
    public static let noMulti = CommandFlags(rawValue: 1 << 14)
    /// Cluster mode: served on an importing slot as if the client had sent ASKING (RESTORE-ASKING).
    public static let asking = CommandFlags(rawValue: 1 << 15)
    /// Refused inside a Lua script (MULTI, EVAL, SUBSCRIBE, CLIENT, CONFIG…; redis's `noscript`).
    public static let noScript = CommandFlags(rawValue: 1 << 16)
    /// Runs other commands that may write (EVAL): its writes are propagated as those commands.
    public static let mayReplicate = CommandFlags(rawValue: 1 << 17)
    /// Never written to the slow log (EXEC: the commands it runs are, each on its own).
    public static let skipSlowlog = CommandFlags(rawValue: 1 << 18)
    /// Not shown to MONITOR after it ran (EVAL and friends show themselves before their script's commands).
    public static let skipMonitor = CommandFlags(rawValue: 1 << 19)
    /// Served while a script is busy (redis CMD_ALLOW_BUSY): what stops it, and what a connection needs.
    public static let allowBusy = CommandFlags(rawValue: 1 << 20)

    /// The flag names COMMAND reports.
    public var names: [String] {
        var result: [String] = []
        let table: [(CommandFlags, String)] = [
            (.write, "write"), (.readonly, "readonly"), (.denyOOM, "denyoom"), (.admin, "admin"),
            (.pubsub, "pubsub"), (.blocking, "blocking"), (.loading, "loading"), (.stale, "stale"),
            (.noAuth, "no_auth"), (.noMulti, "no_multi"), (.noScript, "noscript"), (.mayReplicate, "may_replicate"),
            (.fast, "fast"), (.skipMonitor, "skip_monitor"), (.skipSlowlog, "skip_slowlog"), (.allowBusy, "allow_busy"),
        ]
        for (flag, name) in table where contains(flag) { result.append(name) }
        return result
    }
}

/// Where a command's keys are among its arguments.
public enum KeySpec: Sendable {
    /// No keys.
    case none
    /// Keys at `first`, `first + step`, … up to `last` (negative counts from the end: -1 is the last argument).
    case range(first: Int, last: Int, step: Int)
    /// A key count at `countIndex` followed by that many keys, optionally with a destination key before it
    /// (ZUNIONSTORE dest numkeys key…; ZINTERCARD numkeys key…).
    case counted(destination: Int?, countIndex: Int)
    /// Computed from the arguments (for commands whose keys follow keywords).
    case custom(@Sendable (CommandArguments) -> [Int])

    /// One key at position 1 (most commands).
    public static let first = KeySpec.range(first: 1, last: 1, step: 1)

    /// The positions of the keys in `arguments` (arity already checked).
    public func positions(in arguments: CommandArguments) -> [Int] {
        switch self {
        case .none:
            return []
        case .range(let first, let last, let step):
            let end = last < 0 ? arguments.count + last : min(last, arguments.count - 1)
            guard first <= end else { return [] }
            return Array(stride(from: first, through: end, by: step))
        case .counted(let destination, let countIndex):
            var positions: [Int] = destination.map { [$0] } ?? []
            guard countIndex < arguments.count, let count = arguments.integer(countIndex), count > 0 else {
                return positions
            }
            // Clamp before adding: a huge numkeys must not overflow.
            let end = countIndex + min(count, arguments.count - 1 - countIndex)
            if countIndex + 1 <= end { positions.append(contentsOf: (countIndex + 1)...end) }
            return positions
        case .custom(let compute):
            return compute(arguments)
        }
    }

    /// redis's legacy (first, last, step) triple for COMMAND INFO.
    public var legacyTriple: (Int, Int, Int) {
        switch self {
        case .none, .custom: return (0, 0, 0)
        case .range(let first, let last, let step): return (first, last, step)
        case .counted(let destination, _): return destination.map { ($0, $0, 1) } ?? (0, 0, 0)
        }
    }

    /// Whether key positions depend on the arguments (COMMAND's `movablekeys`).
    public var isMovable: Bool {
        switch self {
        case .counted, .custom: return true
        default: return false
        }
    }
}

/// The documentation group of a command (COMMAND DOCS `group`).
public enum CommandGroup: String, Sendable {
    case generic, string, bitmap, hyperloglog, list, set, sortedSet = "sorted-set", geo, hash, stream, pubsub, transactions, scripting, connection, server, cluster
}

/// Executes a command: reads arguments from `context`, writes one reply into `reply`.
public typealias CommandHandler = @Sendable (inout CommandContext, inout ReplyWriter) throws(CommandError) -> Void

/// One command's metadata and implementation (a class: the dispatcher hands it around once per command, and a
/// reference costs one retain where a struct of strings, arrays and a closure costs several).
public final class CommandSpec: Sendable {
    /// Lowercase name (`get`), or `container|sub` for subcommands.
    public let name: String
    /// Argument count including the name; negative means "at least -arity".
    public let arity: Int
    public let flags: CommandFlags
    public let keys: KeySpec
    public let group: CommandGroup
    /// One line for COMMAND DOCS.
    public let summary: String
    /// The redis version that introduced it (COMMAND DOCS `since`).
    public let since: String
    /// Subcommands (CONFIG GET…), for COMMAND INFO/DOCS; the handler dispatches them.
    public let subcommands: [CommandSpec]
    public let handler: CommandHandler

    public init(
        _ name: String, arity: Int, flags: CommandFlags, keys: KeySpec = .none, group: CommandGroup,
        summary: String, since: String = "1.0.0", subcommands: [CommandSpec] = [],
        handler: @escaping CommandHandler
    ) {
        self.name = name
        self.arity = arity
        self.flags = flags
        self.keys = keys
        self.group = group
        self.summary = summary
        self.since = since
        self.subcommands = subcommands
        self.handler = handler
    }

    /// The specs of container `container`'s subcommands, named `container|name`, from a table of name, arity, flags
    /// and summary (COMMAND INFO/DOCS and ACL rules read them; the container's handler runs them).
    static func subcommands(
        of container: String, group: CommandGroup, since: String, keys: (String) -> KeySpec = { _ in .none },
        _ table: [(name: String, arity: Int, flags: CommandFlags, summary: String)]
    ) -> [CommandSpec] {
        table.map { entry in
            CommandSpec("\(container)|\(entry.name)", arity: entry.arity, flags: entry.flags, keys: keys(entry.name), group: group,
                        summary: entry.summary, since: since) { _, _ throws(CommandError) in }
        }
    }

    /// The subcommand `arguments` name (`client|reply` for `CLIENT REPLY OFF`), if this is a container that has it.
    /// Its flags add to the container's where they differ by subcommand (inside MULTI, for MONITOR).
    public func subcommand(of arguments: CommandArguments) -> CommandSpec? {
        guard !subcommands.isEmpty, arguments.count > 1 else { return nil }
        let qualified = name + "|" + arguments.lowercased(1)
        return subcommands.first { $0.name == qualified }
    }

    /// Whether `count` arguments satisfy the arity.
    @inline(__always)
    public func acceptsArgumentCount(_ count: Int) -> Bool {
        arity >= 0 ? count == arity : count >= -arity
    }

    /// The subcommand `arguments` name, if they give it the wrong number of arguments: redis checks a container's
    /// subcommand against its own arity before running it, and names it in the error (`client|setinfo`).
    public func subcommandWithWrongArity(in arguments: CommandArguments) -> CommandSpec? {
        guard let subcommand = subcommand(of: arguments), !subcommand.acceptsArgumentCount(arguments.count) else { return nil }
        return subcommand
    }
}
