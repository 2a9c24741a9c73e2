// Connection commands (redis networking.c / server.c): PING, ECHO, QUIT, RESET, AUTH, HELLO and CLIENT.
import CacheStore
import RESPServer
import NIOCore
import Synchronization

extension CommandTable {
    static let connectionCommands: [CommandSpec] = [
        // PING [message]
        CommandSpec("ping", arity: -1, flags: [.fast, .allowedWhileSubscribed, .loading, .stale], group: .connection,
                    summary: "Returns the server's liveliness response.") { context, reply throws(CommandError) in
            guard context.arguments.count <= 2 else { throw .wrongArity("ping") }
            if context.session.isInSubscriberMode && reply.protocolVersion == .v2 {
                // In RESP2 subscriber mode PING answers as a pub/sub message: ["pong", message].
                reply.arrayHeader(2)
                reply.bulk("pong")
                if context.arguments.count == 2 { reply.bulk(context.arguments.buffer(1)) } else { reply.bulk("") }
            } else if context.arguments.count == 2 {
                reply.bulk(context.arguments.buffer(1))
            } else {
                reply.buffer.writeStaticString("+PONG\r\n")
            }
        },
        // ECHO message
        CommandSpec("echo", arity: 2, flags: [.fast, .loading, .stale], group: .connection,
                    summary: "Returns the given string.") { context, reply throws(CommandError) in
            reply.bulk(context.arguments.buffer(1))
        },
        // QUIT
        CommandSpec("quit", arity: -1, flags: [.noScript, .fast, .noAuth, .allowedWhileSubscribed, .transactionControl, .loading, .stale, .allowBusy],
                    group: .connection, summary: "Closes the connection.") { context, reply throws(CommandError) in
            reply.ok()
            context.closesConnection = true
        },
        // RESET
        CommandSpec("reset", arity: 1, flags: [.noScript, .fast, .noAuth, .allowedWhileSubscribed, .transactionControl, .loading, .stale, .allowBusy],
                    group: .connection, summary: "Resets the connection.", since: "6.2.0") { context, reply throws(CommandError) in
            let session = context.session
            session.transaction = nil
            session.transactionHasErrors = false
            TransactionState.unwatchAll(session, keyspace: context.keyspace)
            // Messages queued for it go out first, in the protocol they were encoded in; none after the +RESET.
            context.node.pubsub.unsubscribeAll(session, deliveringPending: true)
            context.node.monitors.remove(session)
            session.database = 0
            session.protocolVersion = .v2
            session.replyMode = .on
            session.noTouch = false
            session.isReadOnlyClusterClient = false
            session.isAsking = false
            // Back to the default user: authenticated only if it needs no password (redis clearClientConnectionState).
            if session.user != nil {
                session.user = context.node.acl.defaultUser
                session.isAuthenticated = context.node.acl.defaultUser.authenticatesWithoutPassword
            }
            session.updateInfo { info in
                info.name = ""
                info.noEvict = false
            }
            reply.protocolVersion = .v2
            reply.simpleString("RESET")
        },
        // AUTH [username] password
        CommandSpec("auth", arity: -2, flags: [.noScript, .fast, .noAuth, .loading, .stale, .allowBusy], group: .connection,
                    summary: "Authenticates the connection.") { context, reply throws(CommandError) in
            let arguments = context.arguments
            guard arguments.count <= 3 else { throw .syntax }
            if arguments.count == 2 && context.node.acl.defaultUser.rules.noPass {
                throw CommandError("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
            }
            try ConnectionFamily.authenticate(context.session, node: context.node, arguments: arguments,
                                              usernameIndex: arguments.count == 3 ? 1 : nil, passwordIndex: arguments.count - 1)
            reply.ok()
        },
        // HELLO [protover [AUTH username password] [SETNAME clientname]]
        CommandSpec("hello", arity: -1, flags: [.noScript, .fast, .noAuth, .loading, .stale, .allowBusy], group: .connection,
                    summary: "Handshakes with the Redis server.", since: "6.0.0") { context, reply throws(CommandError) in
            try ConnectionFamily.hello(&context, &reply)
        },
        // CLIENT <subcommand> [...]
        CommandSpec("client", arity: -2, flags: [.noScript, .loading, .stale], group: .connection,
                    summary: "A container for client connection commands.", since: "2.4.0",
                    subcommands: ConnectionFamily.clientSubcommands) { context, reply throws(CommandError) in
            try ConnectionFamily.client(&context, &reply)
        },
    ]
}

/// Shared implementations of the connection commands.
enum ConnectionFamily {
    /// The version cache-node reports to clients (they select features by it); its commands follow redis 7.2.
    static let compatibleRedisVersion = "7.2.4"

    /// AUTH's and HELLO AUTH's check (redis ACLAuthenticateUser): the user (`default` when not named) must be on and
    /// the password one of its own (any password for `nopass`). A failure is an ACL LOG entry and WRONGPASS.
    static func authenticate(
        _ session: ClientSession, node: NodeState, arguments: CommandArguments, usernameIndex: Int?, passwordIndex: Int
    ) throws(CommandError) {
        let username = usernameIndex.map { arguments.string($0) } ?? "default"
        guard let user = node.acl.authenticate(username: username, password: arguments.bytes(passwordIndex)) else {
            let now = node.clock.nowMilliseconds()
            node.acl.log(reason: "auth", context: "toplevel", object: "AUTH", username: username,
                         clientInfo: describe(session, now: now, node: node), now: now)
            throw .wrongPass
        }
        // The node's own sessions (user nil) stay as they are; a client becomes the user.
        if session.user != nil { session.user = user }
        session.isAuthenticated = true
    }

    static func hello(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let session = context.session
        var version = reply.protocolVersion
        var index = 1
        if arguments.count >= 2 {
            guard let requested = arguments.integer(1) else { throw CommandError("Protocol version is not an integer or out of range") }
            guard let parsed = RESPVersion(rawValue: requested) else {
                throw CommandError(code: "NOPROTO", "unsupported protocol version")
            }
            version = parsed
            index = 2
        }
        var newName: String?
        // Of several AUTH options the last one counts, as in redis; it is checked once the options are read.
        var authIndex: Int?
        while index < arguments.count {
            if arguments.matches(index, "auth") && index + 2 < arguments.count {
                authIndex = index
                index += 3
            } else if arguments.matches(index, "setname") && index + 1 < arguments.count {
                newName = try validatedName(arguments.string(index + 1))
                index += 2
            } else {
                throw CommandError("Syntax error in HELLO option '\(arguments.string(index))'")
            }
        }
        if let authIndex {
            try authenticate(session, node: context.node, arguments: arguments, usernameIndex: authIndex + 1, passwordIndex: authIndex + 2)
        }
        guard session.isAuthenticated else {
            throw CommandError(code: "NOAUTH", "HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
        }
        if let newName { session.updateInfo { $0.name = newName } }
        // Messages a subscriber was sent in the old protocol go out first, ahead of this reply.
        context.node.pubsub.switchProtocol(session, to: version)
        reply.protocolVersion = version
        reply.mapHeader(7)
        reply.bulk("server"); reply.bulk("redis")
        reply.bulk("version"); reply.bulk(compatibleRedisVersion)
        reply.bulk("proto"); reply.integer(version.rawValue)
        reply.bulk("id"); reply.integer(session.connection.id)
        reply.bulk("mode"); reply.bulk("standalone")
        reply.bulk("role"); reply.bulk("master")
        reply.bulk("modules"); reply.arrayHeader(0)
    }

    static func validatedName(_ name: String) throws(CommandError) -> String {
        for scalar in name.unicodeScalars where scalar.value < 33 || scalar.value > 126 {
            throw CommandError("Client names cannot contain spaces, newlines or special characters.")
        }
        return name
    }

    /// As redis flags them: KILL, LIST, NO-EVICT and UNBLOCK are administrative (MONITOR does not show them); REPLY
    /// is refused inside MULTI (valkey 9: turning replies off inside a transaction broke EXEC's reply, in redis too).
    static let clientSubcommands: [CommandSpec] = [
        ("id", 2, []), ("setname", 3, []), ("getname", 2, []), ("list", -2, [.admin]), ("info", 2, []), ("kill", -3, [.admin]),
        ("setinfo", 4, []), ("reply", 3, [.noMulti]), ("no-evict", 3, [.admin]), ("no-touch", 3, []), ("unblock", -3, [.admin]),
        ("tracking", -3, []), ("caching", 3, []), ("getredir", 2, []), ("trackinginfo", 2, []), ("pause", -3, [.admin]),
        ("unpause", 2, [.admin]), ("help", 2, []),
    ].map { (name: String, arity: Int, flags: CommandFlags) in
        CommandSpec("client|\(name)", arity: arity, flags: flags.union([.noScript, .loading, .stale]), group: .connection,
                    summary: "CLIENT \(name.uppercased())", since: "2.4.0") { _, _ throws(CommandError) in }
    }

    static func client(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let session = context.session
        let sub = arguments.lowercased(1)
        switch (sub, arguments.count) {
        case ("id", 2):
            reply.integer(session.connection.id)
        case ("setname", 3):
            let name = try validatedName(arguments.string(2))
            session.updateInfo { $0.name = name }
            reply.ok()
        case ("getname", 2):
            let name = session.snapshot.name
            if name.isEmpty { reply.null() } else { reply.bulk(name) }
        case ("setinfo", 4):
            let value = arguments.string(3)
            for scalar in value.unicodeScalars where scalar.value < 33 || scalar.value > 126 {
                throw CommandError("\(arguments.string(2)) cannot contain spaces, newlines or special characters.")
            }
            if arguments.matches(2, "lib-name") {
                session.updateInfo { $0.libraryName = value }
            } else if arguments.matches(2, "lib-ver") {
                session.updateInfo { $0.libraryVersion = value }
            } else {
                throw CommandError("Unrecognized option '\(arguments.string(2))'")
            }
            reply.ok()
        case ("info", 2):
            reply.verbatim(describe(session, now: context.now, node: context.node) + "\n")
        case ("list", _):
            var clients = context.node.clients
            var index = 2
            while index < arguments.count {
                if arguments.matches(index, "id") {
                    var ids = Set<Int>()
                    index += 1
                    while index < arguments.count, let id = arguments.integer(index) {
                        ids.insert(id)
                        index += 1
                    }
                    guard !ids.isEmpty else { throw .syntax }
                    clients = clients.filter { ids.contains($0.connection.id) }
                } else if arguments.matches(index, "type") && index + 1 < arguments.count {
                    let type = arguments.lowercased(index + 1)
                    guard ["normal", "master", "replica", "slave", "pubsub"].contains(type) else {
                        throw CommandError("Unknown client type '\(arguments.string(index + 1))'")
                    }
                    clients = clients.filter { client in
                        switch type {
                        // Other clients' sessions belong to their event loops: read their published info.
                        case "normal": return !client.snapshot.isSubscriber
                        case "pubsub": return client.snapshot.isSubscriber
                        default: return false
                        }
                    }
                    index += 2
                } else {
                    throw .syntax
                }
            }
            reply.verbatim(clients.map { describe($0, now: context.now, node: context.node) + "\n" }.joined())
        case ("unblock", 3), ("unblock", 4):
            // CLIENT UNBLOCK id [TIMEOUT | ERROR]: 1 if that client was blocked (it is answered as on a timeout, or
            // with -UNBLOCKED), else 0.
            guard let id = arguments.integer(2) else { throw .notInteger }
            var withError = false
            if arguments.count == 4 {
                if arguments.matches(3, "error") {
                    withError = true
                } else if !arguments.matches(3, "timeout") {
                    throw CommandError("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
                }
            }
            reply.integer(context.node.blocking.unblock(clientID: id, withError: withError, node: context.node) ? 1 : 0)
        case ("kill", _):
            try kill(&context, &reply)
        case ("reply", 3):
            if arguments.matches(2, "on") {
                session.replyMode = .on
                reply.ok()
            } else if arguments.matches(2, "off") {
                session.replyMode = .off
            } else if arguments.matches(2, "skip") {
                session.replyMode = .skipNext
            } else {
                throw .syntax
            }
        case ("tracking", _) where arguments.count >= 3:
            try tracking(&context)
            reply.ok()
        case ("caching", _) where arguments.count >= 3:
            guard let mode = session.tracking else {
                throw CommandError("CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
            }
            if arguments.matches(2, "yes") {
                guard mode.optIn else { throw CommandError("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.") }
            } else if arguments.matches(2, "no") {
                guard mode.optOut else { throw CommandError("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.") }
            } else {
                throw .syntax
            }
            session.trackingCachingGiven = true
            reply.ok()
        case ("getredir", 2):
            reply.integer(session.tracking?.redirect ?? -1)
        case ("trackinginfo", 2):
            let mode = session.tracking
            var flags = [mode == nil ? "off" : "on"]
            if let mode {
                if mode.broadcast { flags.append("bcast") }
                if mode.optIn { flags.append("optin"); if session.trackingCachingGiven { flags.append("caching-yes") } }
                if mode.optOut { flags.append("optout"); if session.trackingCachingGiven { flags.append("caching-no") } }
                if mode.noLoop { flags.append("noloop") }
                if context.node.tracking.hasBrokenRedirect(session.connection.id) { flags.append("broken_redirect") }
            }
            reply.mapHeader(3)
            reply.bulk("flags")
            reply.setHeader(flags.count)
            for flag in flags { reply.bulk(flag) }
            reply.bulk("redirect")
            reply.integer(mode?.redirect ?? -1)
            reply.bulk("prefixes")
            let prefixes = mode?.prefixes ?? []
            reply.arrayHeader(prefixes.count)
            for prefix in prefixes { prefix.withBytes { reply.bulk($0) } }
        case ("pause", 3), ("pause", 4):
            // CLIENT PAUSE timeout [WRITE | ALL]: see Node/ClientPause.swift.
            var mode = ClientPauseMode.all
            if arguments.count == 4 {
                if arguments.matches(3, "write") {
                    mode = .write
                } else if !arguments.matches(3, "all") {
                    throw CommandError("CLIENT PAUSE mode must be WRITE or ALL")
                }
            }
            guard let timeout = arguments.integer(2) else { throw CommandError("timeout is not an integer or out of range") }
            guard timeout >= 0 else { throw CommandError("timeout is negative") }
            guard Int64(timeout) <= Int64.max - context.now else { throw CommandError("timeout is out of range") }
            context.node.pauseClients(mode, forMilliseconds: Int64(timeout), timerLoop: session.connection.eventLoop)
            reply.ok()
        case ("unpause", 2):
            NodeDispatcher.endPause(node: context.node, dueAt: nil)
            reply.ok()
        case ("no-evict", 3), ("no-touch", 3):
            guard arguments.matches(2, "on") || arguments.matches(2, "off") else { throw .syntax }
            let on = arguments.matches(2, "on")
            if arguments.matches(1, "no-touch") {
                session.noTouch = on
            } else {
                // Client eviction (maxmemory-clients) is not done here, so the flag only shows in CLIENT LIST.
                session.updateInfo { $0.noEvict = on }
            }
            reply.ok()
        case ("help", 2):
            let lines = [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GETNAME", "    Return the name of the current connection.",
                "ID", "    Return the ID of the current connection.",
                "INFO", "    Return information about the current client connection.",
                "KILL <ip:port>", "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]", "    Kill connections. Options are: ID, ADDR, LADDR, TYPE, USER, SKIPME.",
                "LIST [options ...]", "    Return information about client connections. Options: TYPE, ID.",
                "PAUSE <timeout> [WRITE|ALL]", "    Suspend all, or just write, clients for <timeout> milliseconds.",
                "REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
                "SETNAME <name>", "    Assign the name <name> to the current connection.",
                "SETINFO <option> <value>", "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
                "UNBLOCK <clientid> [TIMEOUT|ERROR]", "    Unblock the specified blocked client.",
                "UNPAUSE", "    Stop the current client pause, resuming traffic.",
                "HELP", "    Print this help.",
            ]
            reply.simpleStringLines(lines)
        default:
            // A known subcommand reaches here with more arguments than its cases take (its arity was checked).
            if clientSubcommands.contains(where: { $0.name == "client|\(sub)" }) { throw .wrongArity("client|\(sub)") }
            throw .unknownSubcommand(arguments.string(1), of: "client")
        }
    }

    /// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX prefix ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP], with redis's
    /// checks and messages.
    static func tracking(_ context: inout CommandContext) throws(CommandError) {
        let arguments = context.arguments
        let session = context.session
        var mode = TrackingMode()
        var index = 3
        while index < arguments.count {
            let more = index + 1 < arguments.count
            if arguments.matches(index, "redirect") && more {
                if mode.redirect != 0 { throw CommandError("A client can only redirect to a single other client") }
                guard let id = arguments.integer(index + 1) else { throw .notInteger }
                guard context.node.client(id: id) != nil else {
                    throw CommandError("The client ID you want redirect to does not exist")
                }
                mode.redirect = id
                index += 1
            } else if arguments.matches(index, "bcast") {
                mode.broadcast = true
            } else if arguments.matches(index, "optin") {
                mode.optIn = true
            } else if arguments.matches(index, "optout") {
                mode.optOut = true
            } else if arguments.matches(index, "noloop") {
                mode.noLoop = true
            } else if arguments.matches(index, "prefix") && more {
                mode.prefixes.append(context.bytes(index + 1))
                index += 1
            } else {
                throw .syntax
            }
            index += 1
        }
        if arguments.matches(2, "off") {
            if session.tracking != nil { context.node.tracking.disable(session.connection.id) }
            session.tracking = nil
            session.trackingCachingGiven = false
            return
        }
        guard arguments.matches(2, "on") else { throw .syntax }
        if !mode.broadcast && !mode.prefixes.isEmpty { throw CommandError("PREFIX option requires BCAST mode to be enabled") }
        if let current = session.tracking {
            if current.broadcast != mode.broadcast {
                throw CommandError("You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.")
            }
        }
        if mode.broadcast && (mode.optIn || mode.optOut) { throw CommandError("OPTIN and OPTOUT are not compatible with BCAST") }
        if mode.optIn && mode.optOut { throw CommandError("You can't specify both OPTIN mode and OPTOUT mode") }
        if let current = session.tracking, (mode.optIn && current.optOut) || (mode.optOut && current.optIn) {
            throw CommandError("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.")
        }
        if mode.broadcast {
            // No prefix: every key (the empty prefix, as redis registers it).
            if mode.prefixes.isEmpty { mode.prefixes = [CompactBytes(bytes: [UInt8]())] }
            // Prefixes must not overlap, with each other or with the ones already given (redis's wording).
            func overlaps(_ a: CompactBytes, _ b: CompactBytes) -> Bool {
                a.withBytes { x in b.withBytes { y in x.prefix(min(x.count, y.count)).elementsEqual(y.prefix(min(x.count, y.count))) } }
            }
            func text(_ bytes: CompactBytes) -> String { bytes.withBytes { String(decoding: $0, as: UTF8.self) } }
            let existing = session.tracking?.prefixes ?? []
            for (position, prefix) in mode.prefixes.enumerated() {
                if let collision = existing.first(where: { overlaps($0, prefix) }) {
                    throw CommandError("Prefix '\(text(prefix))' overlaps with an existing prefix '\(text(collision))'. Prefixes for a single client must not overlap.")
                }
                if let other = mode.prefixes[(position + 1)...].first(where: { overlaps($0, prefix) }) {
                    throw CommandError("Prefix '\(text(prefix))' overlaps with another provided prefix '\(text(other))'. Prefixes for a single client must not overlap.")
                }
            }
            mode.prefixes = existing + mode.prefixes.filter { new in !existing.contains(new) }
        }
        session.tracking = mode
        context.node.tracking.enable(session, mode: mode)
    }

    /// One CLIENT LIST line, with redis's field names.
    static func describe(_ client: ClientSession, now: Int64, node: NodeState) -> String {
        let info = client.snapshot
        let age = max(0, (now - client.createdAt) / 1000)
        let idle = max(0, (now - client.lastInteraction.load(ordering: .relaxed)) / 1000)
        let command = node.commands.lastCommandName(client.lastCommand.load(ordering: .relaxed))
        // redis's letters, in redis's order.
        var flags = info.isMonitor ? "O" : info.isSubscriber ? "P" : ""
        if info.multiQueued >= 0 { flags += "x" }
        if info.flags.contains("b") { flags += "b" }
        let tracking = node.tracking.mode(of: client.connection.id)
        if let tracking {
            flags += "t"
            if node.tracking.hasBrokenRedirect(client.connection.id) { flags += "R" }
            if tracking.broadcast { flags += "B" }
        }
        if info.noEvict { flags += "e" }
        if info.noTouch { flags += "T" }
        if flags.isEmpty { flags = "N" }
        return "id=\(client.connection.id) addr=\(client.connection.remoteAddress) laddr=\(client.connection.localAddress) "
            + "fd=-1 name=\(info.name) age=\(age) idle=\(idle) flags=\(flags) "
            + "db=\(info.database) sub=\(info.subscriptions) psub=\(info.patternSubscriptions) ssub=0 multi=\(info.multiQueued) "
            + "qbuf=\(client.queryBufferBytes.load(ordering: .relaxed)) qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=\(client.outputBufferBytes.load(ordering: .relaxed)) tot-mem=0 events=r cmd=\(command) "
            + "user=\(info.userName) redir=\(tracking?.redirect ?? -1) resp=\(info.protocolVersion) lib-name=\(info.libraryName) lib-ver=\(info.libraryVersion)"
    }

    /// CLIENT KILL addr | CLIENT KILL <filter> <value> ...
    static func kill(_ context: inout CommandContext, _ reply: inout ReplyWriter) throws(CommandError) {
        let arguments = context.arguments
        let me = context.session
        if arguments.count == 3 {
            let address = arguments.string(2)
            guard let target = context.node.clients.first(where: { $0.connection.remoteAddress == address }) else {
                throw CommandError("No such client")
            }
            target.connection.close()
            reply.ok()
            return
        }
        guard arguments.count >= 4 && arguments.count % 2 == 0 else { throw .syntax }
        var candidates = context.node.clients
        var skipMe = true
        var index = 2
        while index + 1 < arguments.count {
            let value = arguments.string(index + 1)
            switch arguments.lowercased(index) {
            case "id":
                guard let id = Int(value), id > 0 else { throw CommandError("client-id should be greater than 0") }
                candidates = candidates.filter { $0.connection.id == id }
            case "addr": candidates = candidates.filter { $0.connection.remoteAddress == value }
            case "laddr": candidates = candidates.filter { $0.connection.localAddress == value }
            case "user":
                guard context.node.acl.user(named: value) != nil else { throw CommandError("No such user '\(value)'") }
                candidates = candidates.filter { $0.snapshot.userName == value }
            case "type":
                switch value.lowercased() {
                // Other clients' sessions belong to their event loops (reading their subscription sets from here
                // raced with their SUBSCRIBE and crashed the node): read their published info.
                case "normal": candidates = candidates.filter { !$0.snapshot.isSubscriber }
                case "pubsub": candidates = candidates.filter { $0.snapshot.isSubscriber }
                case "master", "replica", "slave": candidates = []
                default: throw CommandError("Unknown client type '\(value)'")
                }
            case "skipme":
                switch value.lowercased() {
                case "yes": skipMe = true
                case "no": skipMe = false
                default: throw .syntax
                }
            default:
                throw .syntax
            }
            index += 2
        }
        var killed = 0
        for client in candidates where !(skipMe && client === me) {
            client.connection.close()
            killed += 1
        }
        reply.integer(killed)
    }
}
