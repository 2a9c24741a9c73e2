// redis.conf directives cache-node accepts without acting on them, so that a redis.conf (redis 7.2's own, as shipped)
// starts a node and scripts that CONFIG SET them keep working: encoding thresholds (cache-node picks its own
// representations; the thresholds only set the encoding OBJECT ENCODING reports, as redis would have it), a replica's lazy flush, fsync and RDB tuning of redis's own formats, process titles, logo, THP. Each is
// validated as redis validates it and CONFIG GET shows what was set (redis's default otherwise); the node logs at
// start-up every one set to something other than redis's default, since it has no effect here.

/// One accepted redis directive.
struct RedisCompatibilityDirective: Sendable {
    enum Kind: Sendable {
        case bool
        case integer(ClosedRange<Int>)
        case memory
        /// A memory value, or a percentage of `maxmemory` (`10%`), as redis's PERCENT_CONFIG.
        case memoryOrPercentage
        case choice([String])
        case text
    }

    let name: String
    let aliases: [String]
    /// redis 7.2's default, as CONFIG GET shows it.
    let defaultValue: String
    let kind: Kind

    init(_ name: String, _ defaultValue: String, _ kind: Kind, aliases: [String] = []) {
        self.name = name
        self.aliases = aliases
        self.defaultValue = defaultValue
        self.kind = kind
    }

    /// The value as CONFIG GET shows it, or the error redis would give.
    func canonical(_ value: String) throws(ConfigurationError) -> String {
        switch kind {
        case .bool:
            return try ConfigParameter.bool(value) ? "yes" : "no"
        case .integer(let range):
            return String(try ConfigParameter.int(value, in: range))
        case .memory:
            return String(try ConfigParameter.memory(value))
        case .memoryOrPercentage:
            guard value.hasSuffix("%") else { return String(try ConfigParameter.memory(value)) }
            guard let percentage = Int(value.dropLast()), percentage >= 0 else {
                throw ConfigurationError("argument must be a memory or percent value")
            }
            guard percentage <= 100 else { throw ConfigurationError("percentage argument must be less or equal to 100") }
            return "\(percentage)%"
        case .choice(let choices):
            guard choices.contains(value.lowercased()) else {
                throw ConfigurationError("argument(s) must be one of the following: \(choices.joined(separator: ", "))")
            }
            return value.lowercased()
        case .text:
            return value
        }
    }

    /// The directives, with redis 7.2's defaults.
    static let all: [RedisCompatibilityDirective] = {
        let int = Kind.integer(0...Int(Int32.max))
        return [
            .init("activerehashing", "yes", .bool),
            .init("always-show-logo", "no", .bool),
            .init("aof-load-truncated", "yes", .bool),
            .init("aof-rewrite-incremental-fsync", "yes", .bool),
            .init("aof-timestamp-enabled", "no", .bool),
            .init("aof-use-rdb-preamble", "yes", .bool),
            .init("acllog-max-len", "128", int),
            .init("active-expire-effort", "1", .integer(1...10)),
            .init("disable-thp", "yes", .bool),
            .init("dynamic-hz", "yes", .bool),
            .init("hash-max-listpack-entries", "128", int, aliases: ["hash-max-ziplist-entries"]),
            .init("hash-max-listpack-value", "64", .memory, aliases: ["hash-max-ziplist-value"]),
            .init("jemalloc-bg-thread", "yes", .bool),
            .init("latency-monitor-threshold", "0", int),
            .init("list-compress-depth", "0", int),
            .init("list-max-listpack-size", "-2", .integer(-5...Int(Int32.max)), aliases: ["list-max-ziplist-size"]),
            .init("locale-collate", "", .text),
            .init("maxmemory-clients", "0", .memoryOrPercentage),
            .init("no-appendfsync-on-rewrite", "no", .bool),
            .init("oom-score-adj", "no", .choice(["no", "yes", "relative", "absolute"])),
            .init("oom-score-adj-values", "0 200 800", .text),
            .init("proc-title-template", "{title} {listen-addr} {server-mode}", .text),
            .init("rdb-del-sync-files", "no", .bool),
            .init("rdb-save-incremental-fsync", "yes", .bool),
            .init("rdbchecksum", "yes", .bool),
            .init("rdbcompression", "yes", .bool),
            .init("repl-disable-tcp-nodelay", "no", .bool),
            .init("repl-diskless-load", "disabled", .choice(["disabled", "on-empty-db", "swapdb"])),
            .init("repl-diskless-sync", "yes", .bool),
            .init("repl-diskless-sync-delay", "5", int),
            .init("repl-diskless-sync-max-replicas", "0", int),
            .init("replica-lazy-flush", "no", .bool, aliases: ["slave-lazy-flush"]),
            .init("replica-priority", "100", int, aliases: ["slave-priority"]),
            .init("replica-serve-stale-data", "yes", .bool, aliases: ["slave-serve-stale-data"]),
            .init("set-max-intset-entries", "512", int),
            .init("set-max-listpack-entries", "128", int),
            .init("set-max-listpack-value", "64", .memory),
            .init("set-proc-title", "yes", .bool),
            .init("stop-writes-on-bgsave-error", "yes", .bool),
            .init("stream-node-max-bytes", "4096", .memory),
            .init("stream-node-max-entries", "100", int),
            .init("supervised", "no", .choice(["no", "upstart", "systemd", "auto"])),
            .init("zset-max-listpack-entries", "128", int, aliases: ["zset-max-ziplist-entries"]),
            .init("zset-max-listpack-value", "64", .memory, aliases: ["zset-max-ziplist-value"]),
        ]
    }()

    /// As configuration parameters (CONFIG GET/SET/REWRITE, the config file and flags).
    static var parameters: [ConfigParameter] {
        all.map { directive in
            ConfigParameter(
                name: directive.name, aliases: directive.aliases, mutable: true,
                get: { $0.redisCompatibilitySettings[directive.name] ?? directive.defaultValue },
                set: { configuration, value in
                    configuration.redisCompatibilitySettings[directive.name] = try directive.canonical(value)
                })
        }
    }

    /// Whether the directive is an encoding threshold (`*-max-listpack-*`, `*-max-ziplist-*`, `set-max-intset-entries`,
    /// `list-max-listpack-size`): those set the encoding OBJECT ENCODING reports, nothing else.
    var isEncodingThreshold: Bool {
        name.contains("-max-listpack-") || name == "set-max-intset-entries"
    }

    /// The integer value `configuration` gives directive `name` (redis's default when unset).
    static func integer(_ name: String, in configuration: NodeConfiguration) -> Int {
        let directive = all.first { $0.name == name }
        return Int(configuration.redisCompatibilitySettings[name] ?? directive?.defaultValue ?? "") ?? 0
    }

    /// The directives `configuration` sets to something other than redis's default (logged at start-up).
    static func changed(in configuration: NodeConfiguration) -> [(name: String, value: String)] {
        all.compactMap { directive in
            guard let value = configuration.redisCompatibilitySettings[directive.name], value != directive.defaultValue else {
                return nil
            }
            return (directive.name, value)
        }
    }
}
