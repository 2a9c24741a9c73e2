// SLOWLOG GET [count] | LEN | RESET | HELP (redis slowlog.c): reads and clears the node's slow log
// (Node/SlowLog.swift), which the dispatcher fills with commands that ran at least `slowlog-log-slower-than`
// microseconds. Replies are redis 7.2's: each entry is [id, unix time, microseconds, arguments, client address,
// client name].
import RESPServer

extension CommandTable {
    static let slowLogCommands: [CommandSpec] = [
        // SLOWLOG GET [count] | LEN | RESET | HELP
        CommandSpec("slowlog", arity: -2, flags: [.admin, .loading, .stale], group: .server,
                    summary: "A container for slow log commands.", since: "2.2.12",
                    subcommands: SlowLogFamily.subcommands) { context, reply throws(CommandError) in
            try SlowLogFamily.slowlog(&context, &reply)
        },
    ]
}

/// The implementation of SLOWLOG.
enum SlowLogFamily {
    /// As redis 7.2 lists them, each with its own arity (the dispatcher checks it).
    static let subcommands: [CommandSpec] = [("get", -2), ("len", 2), ("reset", 2), ("help", 2)].map { (name: String, arity: Int) in
        CommandSpec("slowlog|\(name)", arity: arity, flags: [.admin, .loading, .stale], group: .server,
                    summary: "SLOWLOG \(name.uppercased())", since: "2.2.12") { _, _ throws(CommandError) in }
    }

    static func slowlog(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let log = context.node.slowLog
        let sub = arguments.lowercased(1)
        switch sub {
        case "get":
            guard arguments.count <= 3 else { throw .wrongArity("slowlog|get") }
            var count: Int? = 10
            if arguments.count == 3 {
                guard let given = arguments.integer(2), given >= -1 else {
                    throw CommandError("count should be greater than or equal to -1")
                }
                count = given == -1 ? nil : given
            }
            let entries = log.newest(count)
            reply.arrayHeader(entries.count)
            for entry in entries {
                reply.arrayHeader(6)
                reply.integer(entry.id)
                reply.integer(Int(entry.unixSeconds))
                reply.integer(Int(entry.microseconds))
                reply.arrayHeader(entry.arguments.count)
                for argument in entry.arguments { reply.bulk(bytes: argument) }
                reply.bulk(entry.clientAddress)
                reply.bulk(entry.clientName)
            }
        case "len":
            reply.integer(log.count)
        case "reset":
            log.reset()
            reply.ok()
        case "help":
            reply.simpleStringLines([
                "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:",
                "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name",
                "LEN",
                "    Return the length of the slowlog.",
                "RESET",
                "    Reset the slowlog.",
                "HELP",
                "    Print this help.",
            ])
        default:
            throw .unknownSubcommand(arguments.string(1), of: "slowlog")
        }
    }
}
