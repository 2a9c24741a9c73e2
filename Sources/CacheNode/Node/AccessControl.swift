// Access control lists (redis acl.c): users with passwords, the commands they may run (by name, subcommand and
// category), the keys (`~pattern`, `%R~`, `%W~`) and pub/sub channels (`&pattern`) they may touch, and the log of
// denials (ACL LOG). The `default` user is the one `requirepass` sets; a connection starts as it. The dispatcher pays
// one relaxed load per command for a user with every permission (the default user unless restricted).
import CLua
import CacheStore
import Foundation
import RESPServer
import Synchronization

/// One user's rules (redis `user` struct, without selectors).
struct ACLRules: Sendable {
    var enabled = false
    var noPass = false
    /// SHA-256 hex of each password, in the order added.
    var passwordHashes: [String] = []
    /// By command-table index: whether the whole command is allowed.
    var allowedCommands: [Bool]
    /// Subcommands allowed (`config|get`) although their container is not, and denied although it is.
    var allowedSubcommands: Set<String> = []
    var deniedSubcommands: Set<String> = []
    /// First arguments allowed for a command that is not (`+select|0`), by command-table index.
    var allowedFirstArguments: [Int: Set<String>] = [:]
    /// The command rules as given since the last `+@all`/`-@all` (ACL GETUSER/LIST show them).
    var commandRules: [String] = ["-@all"]
    /// Key patterns with the access each grants.
    var keyPatterns: [(pattern: String, read: Bool, write: Bool)] = []
    var channelPatterns: [String] = []

    init(commandCount: Int) {
        allowedCommands = Array(repeating: false, count: commandCount)
    }

    var allKeys: Bool { keyPatterns.contains { $0.pattern == "*" && $0.read && $0.write } }
    var allChannels: Bool { channelPatterns.contains("*") }
    var allCommands: Bool { allowedCommands.allSatisfy { $0 } && deniedSubcommands.isEmpty }
    /// Every permission: the dispatcher then checks nothing.
    var isUnrestricted: Bool { enabled && allKeys && allChannels && allCommands }
}

/// A user. Its rules change in place (ACL SETUSER), so connections authenticated as it see changes at once.
final class ACLUser: Sendable {
    let name: String
    private let rulesStorage: Mutex<ACLRules>
    /// Whether the user has every permission (the dispatcher's one check).
    let isUnrestricted = Atomic<Bool>(false)
    /// Set by ACL DELUSER: connections authenticated as it are closed.
    let isDeleted = Atomic<Bool>(false)

    init(name: String, rules: ACLRules) {
        self.name = name
        rulesStorage = Mutex(rules)
        isUnrestricted.store(rules.isUnrestricted, ordering: .relaxed)
    }

    var rules: ACLRules { rulesStorage.withLock { $0 } }

    /// Whether a new connection is authenticated as this user without AUTH (on and `nopass`).
    var authenticatesWithoutPassword: Bool { rulesStorage.withLock { $0.enabled && $0.noPass } }

    func replaceRules(_ rules: ACLRules) {
        rulesStorage.withLock { $0 = rules }
        isUnrestricted.store(rules.isUnrestricted, ordering: .relaxed)
    }
}

/// Why a command was refused (ACL LOG's `reason`).
enum ACLDenial: Sendable, Equatable {
    case command(String)
    case key(String)
    case channel(String)

    /// The error as redis words it for user `user` (redis getAclErrorMessage): a refused command's reply, or with
    /// the key or channel named (`verbose`, ACL DRYRUN's).
    func message(user: String, verbose: Bool = false) -> String {
        switch self {
        case .command(let name): return "User \(user) has no permissions to run the '\(name)' command"
        case .key(let key): return verbose ? "User \(user) has no permissions to access the '\(key)' key" : "No permissions to access a key"
        case .channel(let channel):
            return verbose ? "User \(user) has no permissions to access the '\(channel)' channel" : "No permissions to access a channel"
        }
    }

    var reason: String {
        switch self {
        case .command: return "command"
        case .key: return "key"
        case .channel: return "channel"
        }
    }

    var object: String {
        switch self {
        case .command(let name), .key(let name), .channel(let name): return name
        }
    }
}

/// One ACL LOG entry (redis ACLLogEntry).
struct ACLLogEntry: Sendable {
    var count: Int
    let reason: String
    let context: String
    let object: String
    let username: String
    var clientInfo: String
    let entryID: Int
    let createdAt: Int64
    var updatedAt: Int64
}

/// The node's users and its ACL log.
final class AccessControl: Sendable {
    private struct State {
        var users: [String: ACLUser] = [:]
        var log: [ACLLogEntry] = []
        var nextEntryID = 0
    }

    private let state: Mutex<State>
    let commands: CommandTable
    /// The `default` user (never deleted).
    let defaultUser: ACLUser
    /// INFO stats `acl_access_denied_auth|cmd|key|channel`, by ACL LOG reason.
    private let deniedCounts = Mutex<[String: Int]>([:])

    /// Denials counted since the start or CONFIG RESETSTAT, for `reason` (`auth`, `command`, `key`, `channel`).
    func deniedCount(_ reason: String) -> Int { deniedCounts.withLock { $0[reason] ?? 0 } }

    func resetDeniedCounts() { deniedCounts.withLock { $0 = [:] } }

    /// ACL LOG's length (`acllog-max-len`).
    private let logLength = Atomic<Int>(128)

    /// `acllog-max-len`: the log is cut to it at once.
    func setLogLength(_ length: Int) {
        logLength.store(length, ordering: .relaxed)
        state.withLock { state in
            if state.log.count > length { state.log.removeLast(state.log.count - length) }
        }
    }

    init(commands: CommandTable, requirePass: String?) {
        self.commands = commands
        var rules = Self.defaultUserRules(commandCount: commands.commands.count)
        Self.setPassword(&rules, requirePass)
        defaultUser = ACLUser(name: "default", rules: rules)
        state = Mutex(State(users: ["default": defaultUser]))
    }

    /// The default user as redis creates it: `on nopass ~* &* +@all`.
    private static func defaultUserRules(commandCount: Int) -> ACLRules {
        var rules = ACLRules(commandCount: commandCount)
        rules.enabled = true
        rules.noPass = true
        rules.keyPatterns = [("*", true, true)]
        rules.channelPatterns = ["*"]
        rules.allowedCommands = Array(repeating: true, count: commandCount)
        rules.commandRules = ["+@all"]
        return rules
    }

    /// `requirepass`: the default user's one password, or `nopass` when empty (redis's compatibility rule).
    func setDefaultPassword(_ password: String?) {
        var rules = defaultUser.rules
        Self.setPassword(&rules, password)
        defaultUser.replaceRules(rules)
    }

    private static func setPassword(_ rules: inout ACLRules, _ password: String?) {
        if let password, !password.isEmpty {
            rules.noPass = false
            rules.passwordHashes = [sha256(password)]
        } else {
            rules.noPass = true
            rules.passwordHashes = []
        }
    }

    static func sha256(_ text: String) -> String {
        var hex = [CChar](repeating: 0, count: 65)
        Array(text.utf8).withUnsafeBytes { cl_sha256_hex($0.baseAddress, $0.count, &hex) }
        return String(decoding: hex.prefix(64).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func user(named name: String) -> ACLUser? {
        state.withLock { $0.users[name] }
    }

    var userNames: [String] { state.withLock { $0.users.keys.sorted() } }

    /// AUTH / HELLO AUTH: the user if it is on and the password matches (or it has `nopass`).
    func authenticate(username: String, password: [UInt8]) -> ACLUser? {
        guard let user = user(named: username) else { return nil }
        let rules = user.rules
        guard rules.enabled else { return nil }
        if rules.noPass { return user }
        let hash = Self.sha256(String(decoding: password, as: UTF8.self))
        // Every stored hash is compared, whatever matches first.
        var matched = false
        for stored in rules.passwordHashes where Self.constantTimeEqual(stored, hash) { matched = true }
        return matched ? user : nil
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    /// ACL SETUSER: applies `operations` to a copy of the user's rules (a new user starts with none) and commits
    /// them only if every one is valid.
    func setUser(_ name: String, operations: [String]) throws(CommandError) {
        if name.contains(" ") || name.contains("\0") { throw CommandError("Usernames can't contain spaces or null characters") }
        var rules = user(named: name)?.rules ?? ACLRules(commandCount: commands.commands.count)
        for operation in operations {
            do throws(ACLRuleError) {
                try apply(operation, to: &rules)
            } catch {
                throw CommandError("Error in ACL SETUSER modifier '\(operation)': \(error.message)")
            }
        }
        state.withLock { state in
            if let existing = state.users[name] {
                existing.replaceRules(rules)
            } else {
                state.users[name] = ACLUser(name: name, rules: rules)
            }
        }
    }

    /// ACL DELUSER: returns the users removed (their connections are closed by the caller).
    func deleteUsers(_ names: [String]) throws(CommandError) -> [ACLUser] {
        if names.contains("default") { throw CommandError("The 'default' user cannot be removed") }
        return state.withLock { state in
            names.compactMap { name in
                guard let user = state.users.removeValue(forKey: name) else { return nil }
                user.isDeleted.store(true, ordering: .relaxed)
                return user
            }
        }
    }

    struct ACLRuleError: Error {
        let message: String
        static let syntax = ACLRuleError(message: "Syntax error")
        static let unknownCommand = ACLRuleError(message: "Unknown command or category name in ACL")
    }

    /// One ACL SETUSER rule (redis ACLSetUser).
    private func apply(_ operation: String, to rules: inout ACLRules) throws(ACLRuleError) {
        let lowered = operation.lowercased()
        switch lowered {
        case "on": rules.enabled = true
        case "off": rules.enabled = false
        case "nopass":
            rules.noPass = true
            rules.passwordHashes = []
        case "resetpass":
            rules.noPass = false
            rules.passwordHashes = []
        case "allkeys": rules.keyPatterns = [("*", true, true)]
        case "resetkeys": rules.keyPatterns = []
        case "allchannels": rules.channelPatterns = ["*"]
        case "resetchannels": rules.channelPatterns = []
        case "allcommands", "+@all": setAllCommands(&rules, true)
        case "nocommands", "-@all": setAllCommands(&rules, false)
        case "sanitize-payload", "skip-sanitize-payload", "clearselectors": break
        case "reset":
            rules = ACLRules(commandCount: commands.commands.count)
            rules.channelPatterns = []
        default:
            guard let first = operation.first else { throw .syntax }
            let rest = String(operation.dropFirst())
            switch first {
            case ">":
                let hash = Self.sha256(rest)
                if !rules.passwordHashes.contains(hash) { rules.passwordHashes.append(hash) }
                rules.noPass = false
            case "<":
                let hash = Self.sha256(rest)
                guard let index = rules.passwordHashes.firstIndex(of: hash) else {
                    throw ACLRuleError(message: "The password you are trying to remove from the user does not exist")
                }
                rules.passwordHashes.remove(at: index)
            case "#", "!":
                guard rest.utf8.count == 64, rest.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
                    throw ACLRuleError(message: "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")
                }
                if first == "#" {
                    if !rules.passwordHashes.contains(rest) { rules.passwordHashes.append(rest) }
                    rules.noPass = false
                } else {
                    guard let index = rules.passwordHashes.firstIndex(of: rest) else {
                        throw ACLRuleError(message: "The password you are trying to remove from the user does not exist")
                    }
                    rules.passwordHashes.remove(at: index)
                }
            case "~", "%":
                var read = true, write = true
                var pattern = rest
                if first == "%" {
                    guard let tilde = rest.firstIndex(of: "~") else { throw .syntax }
                    let access = rest[rest.startIndex..<tilde].uppercased()
                    guard !access.isEmpty, access.allSatisfy({ $0 == "R" || $0 == "W" }) else { throw .syntax }
                    read = access.contains("R")
                    write = access.contains("W")
                    pattern = String(rest[rest.index(after: tilde)...])
                }
                if rules.allKeys && pattern != "*" {
                    throw ACLRuleError(message: "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")
                }
                if let index = rules.keyPatterns.firstIndex(where: { $0.pattern == pattern }) {
                    rules.keyPatterns[index].read = rules.keyPatterns[index].read || read
                    rules.keyPatterns[index].write = rules.keyPatterns[index].write || write
                } else {
                    rules.keyPatterns.append((pattern, read, write))
                }
            case "&":
                if rules.allChannels && rest != "*" {
                    throw ACLRuleError(message: "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")
                }
                if !rules.channelPatterns.contains(rest) { rules.channelPatterns.append(rest) }
            case "+", "-":
                let target = rest.lowercased()
                try applyCommandRule(allow: first == "+", target, to: &rules)
                // What this rule overrides goes from the description (redis compacts it the same way): earlier
                // rules for the same command, or for its subcommands and first arguments when it names the command.
                rules.commandRules.removeAll { rule in
                    let earlier = rule.dropFirst()
                    return earlier == target || (!target.contains("|") && !target.hasPrefix("@") && earlier.hasPrefix(target + "|"))
                }
                rules.commandRules.append(String(first) + target)
            case "(":
                throw ACLRuleError(message: "Selectors are not supported by this server")
            default:
                throw .syntax
            }
        }
    }

    private func setAllCommands(_ rules: inout ACLRules, _ allowed: Bool) {
        rules.allowedCommands = Array(repeating: allowed, count: commands.commands.count)
        rules.allowedSubcommands = []
        rules.deniedSubcommands = []
        rules.allowedFirstArguments = [:]
        rules.commandRules = [allowed ? "+@all" : "-@all"]
    }

    private func applyCommandRule(allow: Bool, _ name: String, to rules: inout ACLRules) throws(ACLRuleError) {
        if name.hasPrefix("@") {
            let category = String(name.dropFirst())
            guard Self.categories.contains(category) else { throw .unknownCommand }
            for (index, spec) in commands.commands.enumerated() where Self.categories(of: spec).contains(category) {
                rules.allowedCommands[index] = allow
                rules.allowedFirstArguments[index] = nil
                for sub in spec.subcommands {
                    rules.allowedSubcommands.remove(sub.name)
                    rules.deniedSubcommands.remove(sub.name)
                }
            }
            return
        }
        if let bar = name.firstIndex(of: "|") {
            let container = String(name[..<bar])
            let argument = String(name[name.index(after: bar)...])
            guard let spec = commands.command(named: container), let index = commands.index(named: container) else { throw .unknownCommand }
            if spec.subcommands.isEmpty {
                // A first argument of a command without subcommands (`+select|0`): allowing only (redis 7).
                guard !argument.isEmpty, !argument.contains("|") else { throw .unknownCommand }
                guard allow else { throw ACLRuleError(message: "Denying first-arg of a command is not supported") }
                if !rules.allowedCommands[index] { rules.allowedFirstArguments[index, default: []].insert(argument) }
                return
            }
            if argument.contains("|") {
                throw ACLRuleError(message: allow ? "Allowing first-arg of a subcommand is not supported" : "Denying first-arg of a subcommand is not supported")
            }
            guard spec.subcommands.contains(where: { $0.name == name }) else { throw .unknownCommand }
            if allow {
                rules.deniedSubcommands.remove(name)
                rules.allowedSubcommands.insert(name)
            } else {
                rules.allowedSubcommands.remove(name)
                rules.deniedSubcommands.insert(name)
            }
            return
        }
        guard let index = commands.index(named: name) else { throw .unknownCommand }
        rules.allowedCommands[index] = allow
        rules.allowedFirstArguments[index] = nil
        for sub in commands.commands[index].subcommands {
            rules.allowedSubcommands.remove(sub.name)
            rules.deniedSubcommands.remove(sub.name)
        }
    }

    // MARK: categories (redis ACL categories, derived from each command's group and flags)

    static let categories = [
        "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog", "geo",
        "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection", "transaction", "scripting",
    ]

    /// Commands redis puts in @dangerous besides the administrative ones.
    private static let dangerousCommands: Set<String> = [
        "flushall", "flushdb", "keys", "swapdb", "migrate", "restore", "restore-asking", "sort", "info", "role", "lastsave",
        "pfselftest", "pfdebug",
    ]

    /// The categories of a command (COMMAND INFO's and ACL CAT's).
    static func categories(of spec: CommandSpec) -> [String] {
        var result: [String] = []
        switch spec.group {
        case .generic: result.append("keyspace")
        case .sortedSet: result.append("sortedset")
        case .transactions: result.append("transaction")
        case .server, .cluster: break
        default: result.append(spec.group.rawValue)
        }
        if spec.flags.contains(.write) { result.append("write") } else if spec.flags.contains(.readonly) { result.append("read") }
        if spec.flags.contains(.admin) {
            result += ["admin", "dangerous"]
        } else if dangerousCommands.contains(spec.name) {
            result.append("dangerous")
        }
        if spec.flags.contains(.blocking) { result.append("blocking") }
        if spec.flags.contains(.pubsub) && spec.group != .pubsub { result.append("pubsub") }
        result.append(spec.flags.contains(.fast) ? "fast" : "slow")
        return result
    }

    // MARK: checks

    /// Why `user` may not run this command, or `nil` (redis ACLCheckAllUserCommandPerm). The connection's own
    /// commands that work before AUTH (AUTH, HELLO, QUIT, RESET) are always allowed, wherever they are checked.
    func denial(_ user: ACLUser, _ spec: CommandSpec, _ commandIndex: Int, _ arguments: CommandArguments) -> ACLDenial? {
        if spec.flags.contains(.noAuth) && spec.group == .connection { return nil }
        let rules = user.rules
        if let sub = spec.subcommand(of: arguments) {
            let allowed = rules.allowedSubcommands.contains(sub.name)
                || (rules.allowedCommands[commandIndex] && !rules.deniedSubcommands.contains(sub.name))
            if !allowed { return .command(sub.name) }
        } else if !rules.allowedCommands[commandIndex] {
            guard arguments.count > 1, let firsts = rules.allowedFirstArguments[commandIndex], firsts.contains(arguments.lowercased(1)) else {
                return .command(spec.name)
            }
        }
        if !rules.allKeys {
            let needsWrite = spec.flags.contains(.write)
            let needsRead = !needsWrite || !spec.flags.contains(.readonly)
            for position in spec.keys.positions(in: arguments) {
                let key = arguments.string(position)
                let permitted = rules.keyPatterns.contains { entry in
                    (!needsRead || entry.read) && (!needsWrite || entry.write) && GlobPattern.matches(entry.pattern, key)
                }
                if !permitted { return .key(key) }
            }
        }
        if !rules.allChannels {
            switch spec.name {
            case "publish", "spublish":
                if arguments.count > 1, !channelAllowed(arguments.string(1), rules, literal: false) { return .channel(arguments.string(1)) }
            case "subscribe", "ssubscribe", "psubscribe":
                for index in 1..<arguments.count where !channelAllowed(arguments.string(index), rules, literal: spec.name == "psubscribe") {
                    return .channel(arguments.string(index))
                }
            default: break
            }
        }
        return nil
    }

    /// A channel is allowed if a pattern matches it; a PSUBSCRIBE pattern only if it is one of the patterns itself.
    func channelAllowed(_ channel: String, _ rules: ACLRules, literal: Bool) -> Bool {
        rules.channelPatterns.contains { literal ? $0 == channel : GlobPattern.matches($0, channel) }
    }

    /// The check every path runs (the dispatcher, EXEC, a script's redis.call): `nil` at once for a session whose
    /// user has every permission (one relaxed load), else the denial, logged in ACL LOG under `context`
    /// (`toplevel`, `multi`, `lua`), with the user's name.
    func refusal(
        _ session: ClientSession, _ spec: CommandSpec, _ commandIndex: Int, _ arguments: CommandArguments, context: String,
        node: NodeState
    ) -> (denial: ACLDenial, username: String)? {
        guard let user = session.user, !user.isUnrestricted.load(ordering: .relaxed),
              let denial = denial(user, spec, commandIndex, arguments) else { return nil }
        let now = node.clock.nowMilliseconds()
        log(reason: denial.reason, context: context, object: denial.object, username: user.name,
            clientInfo: ConnectionFamily.describe(session, now: now, node: node), now: now)
        return (denial, user.name)
    }

    // MARK: the log

    /// Records a denial or a failed AUTH (redis addACLLogEntry): an entry like a recent one (same reason, context,
    /// object and user, within a minute) is counted there.
    func log(reason: String, context: String, object: String, username: String, clientInfo: String, now: Int64) {
        deniedCounts.withLock { $0[reason, default: 0] += 1 }
        state.withLock { state in
            if let index = state.log.firstIndex(where: {
                $0.reason == reason && $0.context == context && $0.object == object && $0.username == username
                    && now - $0.updatedAt < 60_000
            }) {
                var entry = state.log.remove(at: index)
                entry.count += 1
                entry.updatedAt = now
                entry.clientInfo = clientInfo
                state.log.insert(entry, at: 0)
                return
            }
            state.log.insert(
                ACLLogEntry(count: 1, reason: reason, context: context, object: object, username: username, clientInfo: clientInfo,
                            entryID: state.nextEntryID, createdAt: now, updatedAt: now), at: 0)
            state.nextEntryID += 1
            let length = logLength.load(ordering: .relaxed)
            if state.log.count > length { state.log.removeLast(state.log.count - length) }
        }
    }

    /// ACL LOG's entries, newest first.
    var logEntries: [ACLLogEntry] { state.withLock { $0.log } }

    func resetLog() {
        state.withLock { $0.log = [] }
    }

    // MARK: users from files and directives

    /// Replaces every user with those of `lines` (`user <name> <rule> ...` per line; blank lines and `#` comments
    /// skipped), all or nothing (redis ACLLoadFromFile). A `default` user the lines do not define gets the default
    /// rules. Users defined again keep their connections (with the new rules); returns the users that are gone, whose
    /// connections the caller closes.
    @discardableResult
    func load(lines: [[String]], source: String) throws(CommandError) -> [ACLUser] {
        var loaded: [String: ACLRules] = [:]
        var order: [String] = []
        for (number, words) in lines.enumerated() {
            guard let first = words.first, !first.hasPrefix("#") else { continue }
            guard first == "user", words.count >= 2 else {
                throw CommandError("\(source):\(number + 1): line should start with user keyword")
            }
            let name = words[1]
            if name.contains("\0") { throw CommandError("\(source):\(number + 1): Usernames can't contain spaces or null characters") }
            guard loaded[name] == nil else { throw CommandError("\(source):\(number + 1): Duplicate user '\(name)' found") }
            var rules = ACLRules(commandCount: commands.commands.count)
            for operation in words.dropFirst(2) {
                do throws(ACLRuleError) {
                    try apply(operation, to: &rules)
                } catch {
                    throw CommandError("\(source):\(number + 1): \(error.message). ")
                }
            }
            loaded[name] = rules
            order.append(name)
        }
        return state.withLock { state in
            var dropped: [ACLUser] = []
            for (name, user) in state.users where name != "default" && loaded[name] == nil {
                user.isDeleted.store(true, ordering: .relaxed)
                state.users[name] = nil
                dropped.append(user)
            }
            for name in order {
                let rules = loaded[name]!
                if let existing = state.users[name] {
                    existing.replaceRules(rules)
                } else {
                    state.users[name] = ACLUser(name: name, rules: rules)
                }
            }
            if loaded["default"] == nil {
                defaultUser.replaceRules(Self.defaultUserRules(commandCount: commands.commands.count))
            }
            return dropped
        }
    }

    /// Reads an ACL file into words per line.
    static func readFile(_ path: String) throws(CommandError) -> [[String]] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CommandError("Error loading ACLs, opening file '\(path)': \(error.localizedDescription)")
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        }
    }

    /// ACL SAVE: every user as ACL LIST prints it, written to a temporary file that is then renamed over `path`.
    func save(to path: String) throws(CommandError) {
        let text = userNames.compactMap { user(named: $0).map(Self.describe) }.joined(separator: "\n") + "\n"
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8)) else {
            throw CommandError("There was an error trying to save the ACLs. Please check the server logs for more information")
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CommandError("There was an error trying to save the ACLs. Please check the server logs for more information")
        }
    }

    // MARK: describing users

    /// A user's rules as ACL LIST prints them (`user default on nopass ~* &* +@all`).
    static func describe(_ user: ACLUser) -> String {
        let rules = user.rules
        var words = ["user", user.name, rules.enabled ? "on" : "off"]
        if rules.noPass { words.append("nopass") }
        words.append("sanitize-payload")
        words += rules.passwordHashes.map { "#" + $0 }
        words += keyWords(rules)
        words += rules.allChannels ? ["&*"] : ["resetchannels"] + rules.channelPatterns.map { "&" + $0 }
        words += rules.commandRules
        return words.joined(separator: " ")
    }

    static func keyWords(_ rules: ACLRules) -> [String] {
        rules.keyPatterns.map { entry in
            entry.read && entry.write ? "~" + entry.pattern : (entry.read ? "%R~" : "%W~") + entry.pattern
        }
    }
}
