// ACL (redis acl.c): SETUSER, GETUSER, DELUSER, USERS, LIST, WHOAMI, CAT, GENPASS, LOG, DRYRUN, SAVE, LOAD and HELP.
// The rules and the checks are in AccessControl; this file parses the commands and writes redis's replies.
import CacheStore
import RESPServer
import Synchronization

extension CommandTable {
    static let aclCommands: [CommandSpec] = [
        // ACL <subcommand> [...]
        CommandSpec("acl", arity: -2, flags: [.noScript, .loading, .stale], group: .server,
                    summary: "A container for Access List Control commands.", since: "6.0.0",
                    subcommands: CommandSpec.subcommands(of: "acl", group: .server, since: "6.0.0", [
                        ("setuser", -3, [.admin, .noScript, .loading, .stale], "Creates and modifies an ACL user and its rules."),
                        ("getuser", 3, [.admin, .noScript, .loading, .stale], "Lists the ACL rules of a user."),
                        ("deluser", -3, [.admin, .noScript, .loading, .stale], "Deletes ACL users, and terminates their connections."),
                        ("users", 2, [.admin, .noScript, .loading, .stale], "Lists all ACL users."),
                        ("list", 2, [.admin, .noScript, .loading, .stale], "Dumps the effective rules in ACL file format."),
                        ("whoami", 2, [.noScript, .loading, .stale], "Returns the authenticated username of the current connection."),
                        ("cat", -2, [.noScript, .loading, .stale], "Lists the ACL categories, or the commands inside a category."),
                        ("genpass", -2, [.noScript, .loading, .stale], "Generates a pseudorandom, secure password that can be used to identify ACL users."),
                        ("log", -2, [.admin, .noScript, .loading, .stale], "Lists recent security events generated due to ACL rules."),
                        ("dryrun", -4, [.admin, .noScript, .loading, .stale], "Simulates the execution of a command by a user, without executing the command."),
                        ("save", 2, [.admin, .noScript, .loading, .stale], "Saves the effective ACL rules in the configured ACL file."),
                        ("load", 2, [.admin, .noScript, .loading, .stale], "Reloads the rules from the configured ACL file."),
                        ("help", 2, [.loading, .stale], "Returns helpful text about the different subcommands."),
                    ])) { context, reply throws(CommandError) in
            try ACLFamily.acl(&context, &reply)
        },
    ]
}

/// ACL's implementation.
enum ACLFamily {
    /// Subscribers of `user` whose channels or patterns its new rules no longer allow are disconnected (redis
    /// ACLKillPubsubClientsIfNeeded).
    private static func closeRevokedSubscribers(of user: ACLUser, _ context: inout CommandContext) {
        let rules = user.rules
        guard !rules.allChannels else { return }
        let node = context.node
        for client in node.clients where client.snapshot.userName == user.name {
            let revoked = node.pubsub.subscriptions(of: client).contains { subscription in
                !node.acl.channelAllowed(subscription.name, rules, literal: subscription.kind == .pattern)
            }
            if revoked { close(client, &context) }
        }
    }

    /// Closes the connections authenticated as `users` (redis ACLFreeUserAndKillClients).
    private static func closeConnections(of users: [ACLUser], _ context: inout CommandContext) {
        let names = Set(users.map(\.name))
        for client in context.node.clients where names.contains(client.snapshot.userName) { close(client, &context) }
    }

    /// Closes a client: the caller's own connection after this command's reply, another at once.
    private static func close(_ client: ClientSession, _ context: inout CommandContext) {
        if client === context.session {
            context.closesConnection = true
        } else {
            client.connection.close()
        }
    }

    static func acl(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let acl = context.node.acl
        switch arguments.lowercased(1) {
        case "setuser":
            let name = arguments.string(2)
            try acl.setUser(name, operations: (3..<arguments.count).map { arguments.string($0) })
            if let user = acl.user(named: name) { closeRevokedSubscribers(of: user, &context) }
            reply.ok()
        case "getuser":
            guard let user = acl.user(named: arguments.string(2)) else {
                reply.null()
                return
            }
            let rules = user.rules
            reply.mapHeader(6)
            reply.bulk("flags")
            let flags = [rules.enabled ? "on" : "off"] + (rules.noPass ? ["nopass"] : []) + ["sanitize-payload"]
            reply.arrayHeader(flags.count)
            for flag in flags { reply.bulk(flag) }
            reply.bulk("passwords")
            reply.arrayHeader(rules.passwordHashes.count)
            for hash in rules.passwordHashes { reply.bulk(hash) }
            reply.bulk("commands")
            reply.bulk(rules.commandRules.joined(separator: " "))
            reply.bulk("keys")
            reply.bulk(AccessControl.keyWords(rules).joined(separator: " "))
            reply.bulk("channels")
            reply.bulk(rules.channelPatterns.map { "&" + $0 }.joined(separator: " "))
            reply.bulk("selectors")
            reply.arrayHeader(0)
        case "deluser":
            let removed = try acl.deleteUsers((2..<arguments.count).map { arguments.string($0) })
            // Their connections end (redis ACLFreeUserAndKillClients); the caller's own ends after this reply.
            closeConnections(of: removed, &context)
            reply.integer(removed.count)
        case "users":
            let names = acl.userNames
            reply.arrayHeader(names.count)
            for name in names { reply.bulk(name) }
        case "list":
            let names = acl.userNames
            reply.arrayHeader(names.count)
            for name in names {
                if let user = acl.user(named: name) { reply.bulk(AccessControl.describe(user)) } else { reply.bulk("user \(name) off") }
            }
        case "whoami":
            reply.bulk(context.session.user?.name ?? "default")
        case "cat":
            if arguments.count > 3 { throw .subcommandSyntax(arguments.string(1), of: "acl") }
            if arguments.count == 3 {
                let category = arguments.string(2).lowercased()
                guard AccessControl.categories.contains(category) else {
                    throw CommandError("Unknown category '\(arguments.string(2))'")
                }
                // Commands, and the subcommands of containers (`function|list`), in the category.
                let names = context.node.commands.commands.flatMap { spec in spec.subcommands.isEmpty ? [spec] : spec.subcommands }
                    .filter { AccessControl.categories(of: $0).contains(category) }.map(\.name)
                reply.arrayHeader(names.count)
                for name in names { reply.bulk(name) }
            } else {
                reply.arrayHeader(AccessControl.categories.count)
                for category in AccessControl.categories { reply.bulk(category) }
            }
        case "genpass":
            if arguments.count > 3 { throw .subcommandSyntax(arguments.string(1), of: "acl") }
            var bits = 256
            if arguments.count == 3 {
                guard let requested = arguments.integer(2), requested > 0, requested <= 4096 else {
                    throw CommandError("ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
                }
                bits = requested
            }
            let characters = (bits + 3) / 4
            var generator = SystemRandomNumberGenerator()
            let hex = Array("0123456789abcdef")
            reply.bulk(String((0..<characters).map { _ in hex[Int(generator.next() & 15)] }))
        case "log":
            if arguments.count > 3 { throw .subcommandSyntax(arguments.string(1), of: "acl") }
            if arguments.count == 3 && arguments.matches(2, "reset") {
                acl.resetLog()
                reply.ok()
                return
            }
            var count = 10
            if arguments.count == 3 {
                guard let requested = arguments.integer(2), requested >= 0 else { throw .notInteger }
                count = requested
            }
            let entries = acl.logEntries.prefix(count)
            let now = context.now
            reply.arrayHeader(entries.count)
            for entry in entries {
                reply.mapHeader(10)
                reply.bulk("count"); reply.integer(entry.count)
                reply.bulk("reason"); reply.bulk(entry.reason)
                reply.bulk("context"); reply.bulk(entry.context)
                reply.bulk("object"); reply.bulk(entry.object)
                reply.bulk("username"); reply.bulk(entry.username)
                reply.bulk("age-seconds"); reply.double(Double(max(0, now - entry.updatedAt)) / 1000)
                reply.bulk("client-info"); reply.bulk(entry.clientInfo)
                reply.bulk("entry-id"); reply.integer(entry.entryID)
                reply.bulk("timestamp-created"); reply.integer(Int(entry.createdAt))
                reply.bulk("timestamp-last-updated"); reply.integer(Int(entry.updatedAt))
            }
        case "dryrun":
            let username = arguments.string(2)
            guard let user = acl.user(named: username) else { throw CommandError("User '\(username)' not found") }
            let command = CommandArguments((3..<arguments.count).map { arguments.bytes($0) })
            let commands = context.node.commands
            guard let index = commands.lookupIndex(command) else {
                throw CommandError("Command '\(arguments.string(3))' not found")
            }
            let spec = commands.commands[index]
            guard spec.acceptsArgumentCount(command.count) else { throw .wrongArity(spec.name) }
            if let denial = acl.denial(user, spec, index, command) {
                reply.bulk(denial.message(user: username, verbose: true))
            } else {
                reply.ok()
            }
        case "save", "load":
            guard let path = context.node.configuration.aclFile else {
                throw CommandError(
                    "This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.")
            }
            if arguments.matches(1, "save") {
                try acl.save(to: path)
            } else {
                let gone = try acl.load(lines: AccessControl.readFile(path), source: path)
                closeConnections(of: gone, &context)
            }
            reply.ok()
        case "help":
            reply.simpleStringLines([
                "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CAT [<category>]",
                "    List all commands that belong to <category>, or all command categories",
                "    when no category is specified.",
                "DELUSER <username> [<username> ...]",
                "    Delete a list of users.",
                "DRYRUN <username> <command> [<arg> ...]",
                "    Returns whether the user can execute the given command without executing the command.",
                "GETUSER <username>",
                "    Get the user's details.",
                "GENPASS [<bits>]",
                "    Generate a secure 256-bit user password. The optional `bits` argument can",
                "    be used to specify a different size.",
                "LIST",
                "    Show users details in config file format.",
                "LOAD",
                "    Reload users from the ACL file.",
                "LOG [<count> | RESET]",
                "    Show the ACL log entries.",
                "SAVE",
                "    Save the current config to the ACL file.",
                "SETUSER <username> <attribute> [<attribute> ...]",
                "    Create or modify a user with the specified attributes.",
                "USERS",
                "    List all the registered usernames.",
                "WHOAMI",
                "    Return the current connection username.",
                "HELP",
                "    Print this help.",
            ])
        default:
            throw CommandError.unknownSubcommand(arguments.string(1), of: "acl")
        }
    }
}
