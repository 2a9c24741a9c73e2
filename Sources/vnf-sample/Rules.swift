// The decisions of the sample network functions as pure values: firewall rules (source CIDR, destination port,
// payload pattern), the token bucket of the rate limiter and the round-robin choice of the load balancer.

/// An IPv4 network such as `10.0.0.0/8`.
struct CIDR: Hashable, Sendable, CustomStringConvertible {
    var network: UInt32
    var prefix: Int

    /// Parses `a.b.c.d/n` (or a bare address, `/32`).
    init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = CIDR.parseIPv4(String(parts[0])) else { return nil }
        let prefix = parts.count == 2 ? Int(parts[1]) : 32
        guard let prefix, (0...32).contains(prefix) else { return nil }
        self.prefix = prefix
        self.network = address & CIDR.mask(prefix)
    }

    static func mask(_ prefix: Int) -> UInt32 { prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix) }

    static func parseIPv4(_ text: String) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard let byte = UInt8(octet) else { return nil }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    func contains(_ address: UInt32) -> Bool { address & CIDR.mask(prefix) == network }

    var description: String {
        "\(network >> 24).\(network >> 16 & 255).\(network >> 8 & 255).\(network & 255)/\(prefix)"
    }
}

/// Firewall rules: first matching rule wins; without a match the default action applies.
struct FirewallRules: Sendable {
    enum Action: String, Sendable { case allow, deny }

    struct Rule: Sendable {
        var action: Action
        var source: CIDR?
        var destinationPort: Int?
    }

    var rules: [Rule]
    var defaultAction: Action
    /// Byte patterns that, seen anywhere in a connection's payload, close it (nothing after is forwarded).
    var denyPatterns: [[UInt8]]

    /// Parses `allow|deny:src=CIDR,dport=N` rules.
    static func parseRule(_ text: String) -> Rule? {
        let parts = text.split(separator: ":", maxSplits: 1)
        guard let action = Action(rawValue: String(parts[0])) else { return nil }
        var rule = Rule(action: action, source: nil, destinationPort: nil)
        if parts.count == 2 {
            for condition in parts[1].split(separator: ",") {
                let pair = condition.split(separator: "=", maxSplits: 1).map(String.init)
                guard pair.count == 2 else { return nil }
                switch pair[0] {
                case "src":
                    guard let cidr = CIDR(pair[1]) else { return nil }
                    rule.source = cidr
                case "dport":
                    guard let port = Int(pair[1]), (0...65535).contains(port) else { return nil }
                    rule.destinationPort = port
                default: return nil
                }
            }
        }
        return rule
    }

    /// The action for a connection from `source` to local port `destinationPort`.
    func evaluate(source: UInt32?, destinationPort: Int?) -> Action {
        for rule in rules {
            if let cidr = rule.source, !(source.map(cidr.contains) ?? false) { continue }
            if let port = rule.destinationPort, port != destinationPort { continue }
            return rule.action
        }
        return defaultAction
    }
}

/// Finds deny patterns in a byte stream split over reads (keeps the tail that could start a match).
struct PatternScanner: Sendable {
    let patterns: [[UInt8]]
    private var tail: [UInt8] = []

    init(patterns: [[UInt8]]) { self.patterns = patterns.filter { !$0.isEmpty } }

    /// Whether the stream so far, ending with `bytes`, contains a pattern.
    mutating func scan(_ bytes: some Collection<UInt8>) -> Bool {
        guard !patterns.isEmpty else { return false }
        let window = tail + bytes
        for pattern in patterns where window.count >= pattern.count {
            for start in 0...(window.count - pattern.count) where window[start..<(start + pattern.count)].elementsEqual(pattern) {
                return true
            }
        }
        let keep = (patterns.map(\.count).max() ?? 1) - 1
        tail = Array(window.suffix(keep))
        return false
    }
}

/// A token bucket: `rate` tokens per second up to `burst`; each admitted connection takes one.
struct TokenBucket: Sendable {
    let rate: Double
    let burst: Double
    private(set) var tokens: Double
    private var last: Double?

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
        self.tokens = burst
    }

    /// Takes a token at time `now` (seconds) if one is there.
    mutating func take(now: Double) -> Bool {
        if let last { tokens = min(burst, tokens + (now - last) * rate) }
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
