// The node's configuration in redis's own terms: the same directive names in a config file, as `--name value`
// flags, and through CONFIG GET/SET. One parameter table drives all three, so a directive cannot be accepted in
// one place and unknown in another.
public import CacheStore
import Foundation

/// A configuration error: says which directive and why, as redis does at start-up.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The node's settings.
public struct NodeConfiguration: Sendable {
    public var port = 6379
    public var bind = ["127.0.0.1"]
    public var requirePass: String? = nil
    public var maxMemory = 0
    public var maxMemoryPolicy = EvictionPolicy.noEviction
    public var maxMemorySamples = 5
    public var lfuLogFactor = 10
    public var lfuDecayTime = 1
    /// `notify-keyspace-events`: which keyspace events are published (none by default).
    public var notifyKeyspaceEvents: KeyspaceEventClasses = []
    /// `hll-sparse-max-bytes`: a HyperLogLog's sparse encoding is promoted to dense before it grows past this.
    public var hllSparseMaxBytes = 3000
    public var directory = "."
    /// The snapshot file in `directory`. Not redis's `dump.rdb`: the format is cache-node's own (tools that read RDB
    /// files must not mistake it for one).
    public var databaseFilename = "dump.cnsnap"
    public var databases = 16
    public var save = "3600 1 300 100 60 10000"
    public var appendOnly = false
    public var appendFsync = "everysec"
    /// The AOF's file name prefix and its directory under `directory` (redis 7's multi-part AOF).
    public var appendFilename = "appendonly.aof"
    public var appendDirectoryName = "appendonlydir"
    /// Automatic AOF rewrite: when the AOF grew this many percent over its base, and is at least the minimum size.
    public var autoAOFRewritePercentage = 100
    public var autoAOFRewriteMinimumSize = 64 * 1024 * 1024
    public var hz = 10
    public var protoMaxBulkLength = 512 * 1024 * 1024
    /// Most unprocessed input one client may have buffered (a command still arriving, or commands waiting behind a
    /// blocked one) before it is closed.
    public var clientQueryBufferLimit = 1024 * 1024 * 1024
    public var timeout = 0
    public var tcpBacklog: Int32 = 511
    public var tcpKeepAlive = 300
    public var logLevel = "notice"
    public var logFile = ""
    public var protectedMode = false
    public var replicaReadOnly = true
    /// Connections beyond this many are refused with "max number of clients reached".
    public var maxClients = 10000
    /// `slowlog-log-slower-than`: commands running at least this long (microseconds) go to the slow log; negative:
    /// none do, 0: every command does.
    public var slowlogLogSlowerThan = 10_000
    /// `slowlog-max-len`: the slow log keeps this many newest entries.
    public var slowlogMaxLength = 128
    /// `acllog-max-len`: ACL LOG keeps this many newest entries.
    public var aclLogMaxLength = 128
    /// `aclfile`: the users' file, loaded at start-up and by ACL LOAD, written by ACL SAVE (`nil`: none).
    public var aclFile: String?
    /// `user <name> <rule> ...` directives, each as its words (name first), applied at start-up.
    public var users: [[String]] = []
    /// `tracking-table-max-keys`: CLIENT TRACKING remembers at most this many keys (0: no limit); beyond it the
    /// node drops tracked keys, sending their readers invalidations.
    public var trackingTableMaxKeys = 1_000_000
    /// Event loop threads (0 = one per CPU the process may run on: online CPUs, cgroup limits, affinity mask). Also
    /// accepted as redis's `io-threads`.
    public var threads = 0
    /// Where the node writes its process id at start-up (removed at shutdown); `nil`: no pid file.
    public var pidFile: String?
    /// redis directives accepted for redis.conf compatibility without effect (see `RedisCompatibilityDirective`):
    /// the values set, by directive name.
    public var redisCompatibilitySettings: [String: String] = [:]
    /// `client-output-buffer-limit`: how much unread output each class of client may hold.
    public var clientOutputBufferLimits = ClientOutputBufferLimits()
    /// `lazyfree-lazy-user-del`, `-server-del`, `-expire`, `-eviction`: what else frees large values in the
    /// background besides UNLINK and FLUSHALL/FLUSHDB ASYNC.
    public var lazyFreeTriggers: LazyFreeTriggers = []
    /// `busy-reply-threshold` (`lua-time-limit`): after this many milliseconds a running script or function makes the
    /// node answer other clients -BUSY (0: at once; negative: never).
    public var busyReplyThreshold = 5000
    /// `lazyfree-lazy-user-flush`: FLUSHALL and FLUSHDB without SYNC or ASYNC free in the background.
    public var lazyFreeUserFlush = false
    /// Cluster mode (`cluster-enabled yes`): hash slots, redirects, CLUSTER commands; only database 0.
    public var clusterEnabled = false
    /// nodes.conf: where a cluster node keeps its id and last topology (relative to `dir`; "" keeps nothing).
    public var clusterConfigFile = "nodes.conf"
    /// The address other nodes and clients are told (MOVED, CLUSTER SLOTS); "" = the first `bind` address.
    public var clusterAnnounceIP = ""
    /// The port announced; 0 = the bound port.
    public var clusterAnnouncePort = 0
    /// The bus port announced (reported only; there is no gossip bus); 0 = port + 10000.
    public var clusterAnnounceBusPort = 0
    /// Accepted for redis compatibility (there is no failure detection on a bus).
    public var clusterNodeTimeout = 15000
    /// Where the config file was read from (CONFIG REWRITE writes it back).
    public var configFile: String? = nil
    /// `replicaof host port`: start as a replica of this primary.
    public var replicaOf: ReplicaOfTarget? = nil
    /// `repl-backlog-size` in bytes.
    public var replBacklogSize = 1024 * 1024
    /// `node-identity`: this node's ReplicationSec identity file (or a directory holding one `*.identity`).
    public var nodeIdentity: String? = nil
    /// `cluster-authority`: the authority public key file (or a directory holding `authority.pub`).
    public var clusterAuthority: String? = nil
    /// `revocation-list`: an optional signed revocation list enforced on peers.
    public var revocationList: String? = nil
    /// `replication-port`: the secure replication listener (0 picks a free port); needs an identity.
    public var replicationPort: Int? = nil
    /// `replication-plaintext yes`: allow replication without the secure channel (both sides must opt in).
    public var replicationPlaintext = false

    public init() {}

    /// Parses redis-server style arguments: an optional config file path first, then `--directive value…`.
    public static func parse(arguments: [String]) throws(ConfigurationError) -> NodeConfiguration {
        var configuration = NodeConfiguration()
        var arguments = arguments[...]
        var lines: [[String]] = []
        if let first = arguments.first, !first.hasPrefix("--") {
            arguments = arguments.dropFirst()
            let text: String
            do {
                text = try String(contentsOfFile: first, encoding: .utf8)
            } catch {
                throw ConfigurationError("Fatal error, can't open config file '\(first)': \(error.localizedDescription)")
            }
            configuration.configFile = first
            for line in text.split(whereSeparator: \.isNewline) {
                let words = try splitConfigLine(String(line))
                if !words.isEmpty { lines.append(words) }
            }
        }
        for argument in arguments {
            if argument.hasPrefix("--") {
                lines.append([String(argument.dropFirst(2))])
            } else if lines.isEmpty {
                throw ConfigurationError("Invalid argument '\(argument)': options start with -- (as in --port 6380)")
            } else {
                lines[lines.count - 1].append(argument)
            }
        }
        var sawSave = false
        for line in lines {
            let name = line[0].lowercased()
            let values = Array(line.dropFirst())
            // `save` may repeat (one rule per line); `save ""` clears.
            if name == "save" {
                let joined = values.joined(separator: " ")
                configuration.save = sawSave ? [configuration.save, joined].filter { !$0.isEmpty }.joined(separator: " ") : joined
                sawSave = true
                continue
            }
            // `client-output-buffer-limit <class> <hard> <soft> <seconds>`, one class per line as in redis.conf (or
            // several in one value); each line changes only the classes it names.
            if name == "client-output-buffer-limit" {
                let joined = values.joined(separator: " ")
                do {
                    try configuration.clientOutputBufferLimits.apply(joined)
                } catch {
                    throw ConfigurationError("Invalid value for 'client-output-buffer-limit': \(error.message)")
                }
                continue
            }
            if name == "user" {
                let words = values.flatMap { $0.split(separator: " ").map(String.init) }
                guard !words.isEmpty else { throw ConfigurationError("wrong number of arguments for directive 'user': expected a name and rules") }
                configuration.users.append(words)
                continue
            }
            if name == "bind" {
                guard !values.isEmpty else { throw ConfigurationError("bind needs at least one address") }
                configuration.bind = values.flatMap { $0.split(separator: " ").map(String.init) }
                continue
            }
            if name == "replicaof" || name == "slaveof" {
                let words = values.flatMap { $0.split(separator: " ").map(String.init) }
                if words.count == 2 && words[0].lowercased() == "no" && words[1].lowercased() == "one" {
                    configuration.replicaOf = nil
                    continue
                }
                guard words.count == 2, let port = Int(words[1]), (1...65535).contains(port) else {
                    throw ConfigurationError("wrong arguments for directive '\(line[0])': expected a host and a port (replicaof 127.0.0.1 6379)")
                }
                configuration.replicaOf = ReplicaOfTarget(host: words[0], port: port)
                continue
            }
            guard let parameter = ConfigParameter.named(name) else {
                throw ConfigurationError("Bad directive or wrong number of arguments: '\(line[0])' is not a directive cache-node knows")
            }
            // A few redis directives take several words (`oom-score-adj-values 0 200 800`).
            guard values.count == 1 || (values.count > 1 && parameter.name == "oom-score-adj-values") else {
                throw ConfigurationError("wrong number of arguments for directive '\(line[0])': expected one value, got \(values.count)")
            }
            do {
                try parameter.set(&configuration, values.joined(separator: " "))
            } catch {
                throw ConfigurationError("Invalid value for '\(line[0])': \(error)")
            }
        }
        do {
            _ = try SaveRule.parse(configuration.save)
        } catch {
            throw ConfigurationError("Invalid value for 'save': \(error)")
        }
        try configuration.validateReplication()
        if configuration.aclFile != nil && !configuration.users.isEmpty {
            throw ConfigurationError(
                "Configuring users with 'user' directives and an ACL file ('aclfile') at the same time is invalid: define the users in one place")
        }
        return configuration
    }

    /// Refuses replication settings that cannot work together: secure and plaintext replication do not mix.
    func validateReplication() throws(ConfigurationError) {
        if (nodeIdentity == nil) != (clusterAuthority == nil) {
            throw ConfigurationError("node-identity and cluster-authority go together: give both (secure replication) or neither")
        }
        if nodeIdentity != nil && replicationPlaintext {
            throw ConfigurationError(
                "replication-plaintext yes cannot be combined with node-identity: a node with an identity replicates only over the secure channel")
        }
        if replicationPort != nil && nodeIdentity == nil {
            throw ConfigurationError("replication-port needs node-identity and cluster-authority (it serves the secure channel)")
        }
    }

    /// Splits a config-file line into words (quotes as redis allows); comments and blank lines give `[]`.
    static func splitConfigLine(_ line: String) throws(ConfigurationError) -> [String] {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("#") { return [] }
        var words: [String] = []
        var current = ""
        var quote: Character? = nil
        var inWord = false
        var characters = Array(trimmed)[...]
        while let character = characters.popFirst() {
            if let open = quote {
                // redis's sdssplitargs escapes: \\ \" \n \r \t \b \a \xHH in double quotes, \' in single ones.
                if character == "\\", let next = characters.first {
                    if open == "\"" {
                        characters.removeFirst()
                        switch next {
                        case "n": current.append("\n")
                        case "r": current.append("\r")
                        case "t": current.append("\t")
                        case "b": current.append("\u{08}")
                        case "a": current.append("\u{07}")
                        case "x":
                            let hex = String(characters.prefix(2))
                            if hex.count == 2, let byte = UInt8(hex, radix: 16) {
                                characters.removeFirst(2)
                                current.unicodeScalars.append(Unicode.Scalar(byte))
                            } else {
                                current.append("x")
                            }
                        default: current.append(next)
                        }
                        continue
                    } else if next == "'" {
                        characters.removeFirst()
                        current.append("'")
                        continue
                    }
                }
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "\"" || character == "'" {
                quote = character
                inWord = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(current); current = ""; inWord = false }
            } else {
                current.append(character)
                inWord = true
            }
        }
        if quote != nil { throw ConfigurationError("Unbalanced quotes in configuration line: \(line)") }
        if inWord { words.append(current) }
        return words
    }

    /// `value` as one word of a configuration line that ``splitConfigLine(_:)`` reads back as it is: bare when it
    /// can be, else in double quotes with redis's escapes.
    static func quotedConfigValue(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains {
            $0.value <= 0x20 || $0.value == 0x7F || $0 == "\"" || $0 == "'" || $0 == "\\"
        }
        guard needsQuotes else { return value }
        var quoted = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": quoted += "\\\\"
            case "\"": quoted += "\\\""
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    quoted += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "\""
    }
}

/// A primary to replicate from (`replicaof host port`).
public struct ReplicaOfTarget: Sendable, Hashable {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// Parses a redis memory amount: plain bytes, or with k/kb/m/mb/g/gb (k = 1000, kb = 1024), case-insensitive.
public func parseMemoryAmount(_ text: String) -> Int? {
    let lower = text.lowercased()
    let units: [(String, Int)] = [
        ("gb", 1024 * 1024 * 1024), ("mb", 1024 * 1024), ("kb", 1024), ("g", 1_000_000_000), ("m", 1_000_000), ("k", 1000),
        ("b", 1),
    ]
    for (suffix, multiplier) in units where lower.hasSuffix(suffix) {
        guard let value = Int(lower.dropLast(suffix.count)), value >= 0 else { return nil }
        return value.multipliedReportingOverflow(by: multiplier).overflow ? nil : value * multiplier
    }
    guard let value = Int(lower), value >= 0 else { return nil }
    return value
}

/// One configuration directive: how to read it, set it, and whether CONFIG SET may change it at run time.
struct ConfigParameter: Sendable {
    let name: String
    let aliases: [String]
    let mutable: Bool
    let get: @Sendable (NodeConfiguration) -> String
    let set: @Sendable (inout NodeConfiguration, String) throws -> Void

    /// A yes/no lazyfree-lazy-* directive turning `trigger` on or off.
    private static func lazyFree(_ name: String, _ trigger: LazyFreeTriggers) -> ConfigParameter {
        .init(name: name, aliases: [], mutable: true, get: { $0.lazyFreeTriggers.contains(trigger) ? "yes" : "no" },
              set: { config, value in
                  if try bool(value) { config.lazyFreeTriggers.insert(trigger) } else { config.lazyFreeTriggers.remove(trigger) }
              })
    }

    static func named(_ name: String) -> ConfigParameter? {
        let lower = name.lowercased()
        return all.first { $0.name == lower || $0.aliases.contains(lower) }
    }

    static func int(_ value: String, in range: ClosedRange<Int> = 0...Int.max) throws(ConfigurationError) -> Int {
        guard let number = Int(value), range.contains(number) else {
            throw ConfigurationError("argument must be an integer between \(range.lowerBound) and \(range.upperBound)")
        }
        return number
    }

    static func bool(_ value: String) throws(ConfigurationError) -> Bool {
        switch value.lowercased() {
        case "yes": return true
        case "no": return false
        default: throw ConfigurationError("argument must be 'yes' or 'no'")
        }
    }

    static func memory(_ value: String) throws(ConfigurationError) -> Int {
        guard let amount = parseMemoryAmount(value) else {
            throw ConfigurationError("argument must be a memory value (bytes, or with a unit: 100mb, 1gb)")
        }
        return amount
    }

    /// A memory value of at least `minimum` bytes (redis's lower bound for the setting).
    private static func memory(_ value: String, atLeast minimum: Int) throws(ConfigurationError) -> Int {
        let amount = try memory(value)
        guard amount >= minimum else { throw ConfigurationError("argument must be at least \(minimum) bytes") }
        return amount
    }

    static let all: [ConfigParameter] = [
        .init(name: "port", aliases: [], mutable: false, get: { String($0.port) }, set: { $0.port = try int($1, in: 0...65535) }),
        .init(name: "bind", aliases: [], mutable: false, get: { $0.bind.joined(separator: " ") },
              set: { $0.bind = $1.split(separator: " ").map(String.init) }),
        .init(name: "requirepass", aliases: [], mutable: true, get: { $0.requirePass ?? "" },
              set: { $0.requirePass = $1.isEmpty ? nil : $1 }),
        .init(name: "maxmemory", aliases: [], mutable: true, get: { String($0.maxMemory) }, set: { $0.maxMemory = try memory($1) }),
        .init(name: "notify-keyspace-events", aliases: [], mutable: true, get: { $0.notifyKeyspaceEvents.configurationString },
              set: { config, value in
                  guard let classes = KeyspaceEventClasses(configuration: value) else {
                      throw ConfigurationError("Invalid event class character. Use '\(KeyspaceEventClasses.validCharacters)'.")
                  }
                  config.notifyKeyspaceEvents = classes
              }),
        .init(name: "hll-sparse-max-bytes", aliases: [], mutable: true, get: { String($0.hllSparseMaxBytes) },
              set: { $0.hllSparseMaxBytes = try memory($1) }),
        .init(name: "maxmemory-policy", aliases: [], mutable: true, get: { $0.maxMemoryPolicy.name },
              set: { config, value in
                  guard let policy = EvictionPolicy(name: value) else {
                      throw ConfigurationError("argument(s) must be one of the following: volatile-lru, allkeys-lru, volatile-lfu, allkeys-lfu, volatile-random, allkeys-random, volatile-ttl, noeviction")
                  }
                  config.maxMemoryPolicy = policy
              }),
        .init(name: "busy-reply-threshold", aliases: ["lua-time-limit"], mutable: true, get: { String($0.busyReplyThreshold) },
              set: { $0.busyReplyThreshold = try int($1, in: 0...Int(Int64.max)) }),
        lazyFree("lazyfree-lazy-user-del", .userDelete),
        lazyFree("lazyfree-lazy-server-del", .serverDelete),
        lazyFree("lazyfree-lazy-expire", .expire),
        lazyFree("lazyfree-lazy-eviction", .eviction),
        .init(name: "lazyfree-lazy-user-flush", aliases: [], mutable: true, get: { $0.lazyFreeUserFlush ? "yes" : "no" },
              set: { $0.lazyFreeUserFlush = try bool($1) }),
        .init(name: "maxmemory-samples", aliases: [], mutable: true, get: { String($0.maxMemorySamples) },
              set: { $0.maxMemorySamples = try int($1, in: 1...64) }),
        .init(name: "lfu-log-factor", aliases: [], mutable: true, get: { String($0.lfuLogFactor) },
              set: { $0.lfuLogFactor = try int($1) }),
        .init(name: "lfu-decay-time", aliases: [], mutable: true, get: { String($0.lfuDecayTime) },
              set: { $0.lfuDecayTime = try int($1) }),
        .init(name: "dir", aliases: [], mutable: true, get: { $0.directory }, set: { config, value in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: value, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ConfigurationError("Can't chdir to '\(value)': No such file or directory")
            }
            config.directory = value
        }),
        .init(name: "dbfilename", aliases: [], mutable: true, get: { $0.databaseFilename }, set: { config, value in
            guard !value.isEmpty, !value.contains("/") else { throw ConfigurationError("dbfilename can't be a path, just a filename") }
            config.databaseFilename = value
        }),
        .init(name: "databases", aliases: [], mutable: false, get: { String($0.databases) },
              set: { $0.databases = try int($1, in: 1...1_000_000) }),
        .init(name: "save", aliases: [], mutable: true, get: { $0.save }, set: { config, value in
            _ = try SaveRule.parse(value)
            config.save = value
        }),
        .init(name: "appendonly", aliases: [], mutable: true, get: { $0.appendOnly ? "yes" : "no" },
              set: { $0.appendOnly = try bool($1) }),
        .init(name: "appendfsync", aliases: [], mutable: true, get: { $0.appendFsync }, set: { config, value in
            guard ["always", "everysec", "no"].contains(value.lowercased()) else {
                throw ConfigurationError("argument must be one of always, everysec, no")
            }
            config.appendFsync = value.lowercased()
        }),
        .init(name: "appendfilename", aliases: [], mutable: false, get: { $0.appendFilename }, set: { config, value in
            guard !value.isEmpty, !value.contains("/") else { throw ConfigurationError("appendfilename can't be a path, just a filename") }
            config.appendFilename = value
        }),
        .init(name: "appenddirname", aliases: [], mutable: false, get: { $0.appendDirectoryName }, set: { config, value in
            guard !value.isEmpty, !value.contains("/") else { throw ConfigurationError("appenddirname can't be a path, just a dirname") }
            config.appendDirectoryName = value
        }),
        .init(name: "auto-aof-rewrite-percentage", aliases: [], mutable: true, get: { String($0.autoAOFRewritePercentage) },
              set: { $0.autoAOFRewritePercentage = try int($1, in: 0...Int(Int32.max)) }),
        .init(name: "auto-aof-rewrite-min-size", aliases: [], mutable: true, get: { String($0.autoAOFRewriteMinimumSize) },
              set: { config, value in
                  guard let amount = parseMemoryAmount(value) else { throw ConfigurationError("argument must be a memory value") }
                  config.autoAOFRewriteMinimumSize = amount
              }),
        .init(name: "hz", aliases: [], mutable: true, get: { String($0.hz) }, set: { $0.hz = try int($1, in: 1...500) }),
        .init(name: "proto-max-bulk-len", aliases: [], mutable: true, get: { String($0.protoMaxBulkLength) },
              set: { $0.protoMaxBulkLength = try memory($1, atLeast: 1024 * 1024) }),
        .init(name: "client-query-buffer-limit", aliases: [], mutable: true, get: { String($0.clientQueryBufferLimit) },
              set: { $0.clientQueryBufferLimit = try memory($1, atLeast: 1024 * 1024) }),
        .init(name: "timeout", aliases: [], mutable: true, get: { String($0.timeout) }, set: { $0.timeout = try int($1) }),
        .init(name: "tcp-backlog", aliases: [], mutable: false, get: { String($0.tcpBacklog) },
              set: { $0.tcpBacklog = Int32(try int($1, in: 0...65535)) }),
        .init(name: "tcp-keepalive", aliases: [], mutable: true, get: { String($0.tcpKeepAlive) },
              set: { $0.tcpKeepAlive = try int($1) }),
        .init(name: "loglevel", aliases: [], mutable: true, get: { $0.logLevel }, set: { config, value in
            guard ["debug", "verbose", "notice", "warning", "nothing"].contains(value.lowercased()) else {
                throw ConfigurationError("argument must be one of debug, verbose, notice, warning, nothing")
            }
            config.logLevel = value.lowercased()
        }),
        .init(name: "logfile", aliases: [], mutable: false, get: { $0.logFile }, set: { $0.logFile = $1 }),
        .init(name: "daemonize", aliases: [], mutable: false, get: { _ in "no" }, set: { _, value in
            if try bool(value) { throw ConfigurationError("cache-node does not daemonize; run it under a supervisor") }
        }),
        .init(name: "protected-mode", aliases: [], mutable: true, get: { $0.protectedMode ? "yes" : "no" },
              set: { $0.protectedMode = try bool($1) }),
        .init(name: "replica-read-only", aliases: ["slave-read-only"], mutable: true,
              get: { $0.replicaReadOnly ? "yes" : "no" }, set: { $0.replicaReadOnly = try bool($1) }),
        .init(name: "maxclients", aliases: [], mutable: true, get: { String($0.maxClients) },
              set: { $0.maxClients = try int($1, in: 1...1_000_000) }),
        .init(name: "slowlog-log-slower-than", aliases: [], mutable: true, get: { String($0.slowlogLogSlowerThan) },
              set: { $0.slowlogLogSlowerThan = try int($1, in: -1...Int.max) }),
        .init(name: "slowlog-max-len", aliases: [], mutable: true, get: { String($0.slowlogMaxLength) },
              set: { $0.slowlogMaxLength = try int($1, in: 0...Int(Int32.max)) }),
        .init(name: "acllog-max-len", aliases: [], mutable: true, get: { String($0.aclLogMaxLength) },
              set: { $0.aclLogMaxLength = try int($1, in: 0...Int(Int32.max)) }),
        .init(name: "aclfile", aliases: [], mutable: false, get: { $0.aclFile ?? "" },
              set: { $0.aclFile = $1.isEmpty ? nil : $1 }),
        .init(name: "tracking-table-max-keys", aliases: [], mutable: true, get: { String($0.trackingTableMaxKeys) },
              set: { $0.trackingTableMaxKeys = try int($1) }),
        .init(name: "threads", aliases: ["io-threads"], mutable: false, get: { String($0.threads) },
              set: { $0.threads = try int($1, in: 0...128) }),
        .init(name: "client-output-buffer-limit", aliases: [], mutable: true, get: { $0.clientOutputBufferLimits.description },
              set: { try $0.clientOutputBufferLimits.apply($1) }),
        .init(name: "cluster-enabled", aliases: [], mutable: false, get: { $0.clusterEnabled ? "yes" : "no" },
              set: { $0.clusterEnabled = try bool($1) }),
        .init(name: "cluster-config-file", aliases: [], mutable: false, get: { $0.clusterConfigFile },
              set: { $0.clusterConfigFile = $1 }),
        .init(name: "cluster-announce-ip", aliases: [], mutable: false, get: { $0.clusterAnnounceIP },
              set: { $0.clusterAnnounceIP = $1 }),
        .init(name: "cluster-announce-port", aliases: [], mutable: false, get: { String($0.clusterAnnouncePort) },
              set: { $0.clusterAnnouncePort = try int($1, in: 0...65535) }),
        .init(name: "cluster-announce-bus-port", aliases: [], mutable: false, get: { String($0.clusterAnnounceBusPort) },
              set: { $0.clusterAnnounceBusPort = try int($1, in: 0...65535) }),
        .init(name: "cluster-node-timeout", aliases: [], mutable: true, get: { String($0.clusterNodeTimeout) },
              set: { $0.clusterNodeTimeout = try int($1) }),
        .init(name: "replicaof", aliases: ["slaveof"], mutable: false,
              get: { $0.replicaOf.map { "\($0.host) \($0.port)" } ?? "" }, set: { _, _ in
                  throw ConfigurationError("use REPLICAOF host port at run time")
              }),
        .init(name: "repl-backlog-size", aliases: [], mutable: true, get: { String($0.replBacklogSize) },
              set: { config, value in
                  let size = try memory(value)
                  guard size >= 16 * 1024 else { throw ConfigurationError("repl-backlog-size must be at least 16kb") }
                  config.replBacklogSize = size
              }),
        .init(name: "node-identity", aliases: [], mutable: false, get: { $0.nodeIdentity ?? "" },
              set: { $0.nodeIdentity = $1.isEmpty ? nil : $1 }),
        .init(name: "cluster-authority", aliases: [], mutable: false, get: { $0.clusterAuthority ?? "" },
              set: { $0.clusterAuthority = $1.isEmpty ? nil : $1 }),
        .init(name: "revocation-list", aliases: [], mutable: true, get: { $0.revocationList ?? "" },
              set: { $0.revocationList = $1.isEmpty ? nil : $1 }),
        .init(name: "replication-port", aliases: [], mutable: false, get: { $0.replicationPort.map(String.init) ?? "" },
              set: { $0.replicationPort = $1.isEmpty ? nil : try int($1, in: 0...65535) }),
        .init(name: "replication-plaintext", aliases: [], mutable: false, get: { $0.replicationPlaintext ? "yes" : "no" },
              set: { $0.replicationPlaintext = try bool($1) }),
        .init(name: "pidfile", aliases: [], mutable: false, get: { $0.pidFile ?? "" },
              set: { $0.pidFile = $1.isEmpty ? nil : $1 }),
    ] + RedisCompatibilityDirective.parameters
}
