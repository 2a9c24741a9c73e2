// vnf-sample: small but real network functions on SwiftNIO, used by the NFV samples (`samples/nfv`) and tests:
// `firewall` (allow/deny by source CIDR and destination port, deny by payload pattern), `ratelimit` (a token bucket
// on new connections), `lb` (round-robin over backends) and `echo` (a TCP echo target). Each forwards TCP to its
// `--next` hops. `--next-link LINK` follows the framework's file of that link (a rolling update of the VNFC it leads to
// moves it; a network service binds it once the next VNF is placed, so `--next` may be empty then); `--metrics-port` serves `GET /metrics` (connections_active, connections_total) for auto-scaling.

import ArgumentParser
import Foundation
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct HopOptions: ParsableArguments {
    @Option(help: "Port to listen on.")
    var port: Int

    @Option(help: "Address to listen on.")
    var bind: String = "127.0.0.1"

    @Option(name: .customLong("next"), help: "Upstream host:port; repeat or comma-separate for several (round-robin).")
    var next: [String] = []

    @Option(
        name: .customLong("next-link"),
        help: "Follow this external link's file in $VNF_LINKS_DIR (written by the framework): its endpoints replace --next.")
    var nextLink: String?

    @Option(name: .customLong("metrics-port"), help: "Serve GET /metrics (connections_active, connections_total) on this port.")
    var metricsPort: Int?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        // With --next-link the hops may come later: a network service starts its VNFs at once and binds each one's
        // link when the next VNF is placed (connections are closed until then).
        guard !addresses().isEmpty || nextLink != nil else { throw ValidationError("give at least one --next host:port, or --next-link") }
        for hop in addresses() where parse(hop) == nil { throw ValidationError("--next \(hop) is not host:port") }
    }

    func addresses() -> [String] { next.flatMap { $0.split(separator: ",").map(String.init) } }

    func parse(_ hop: String) -> SocketAddress? { Self.address(hop) }

    /// `host:port` as an address (nil if it is not one).
    static func address(_ hop: String) -> SocketAddress? {
        guard let colon = hop.lastIndex(of: ":"), let port = Int(hop[hop.index(after: colon)...]) else { return nil }
        return try? SocketAddress.makeAddressResolvingHost(String(hop[..<colon]), port: port)
    }

    func upstreams() -> Upstreams { Upstreams(addresses().compactMap(parse)) }

    /// Starts what runs next to the proxy: the link file watcher and the metrics endpoint.
    func startSideServices(_ upstreams: Upstreams, name: String) async throws {
        if let nextLink, let directory = ProcessInfo.processInfo.environment["VNF_LINKS_DIR"] {
            let path = "\(directory)/\(nextLink)"
            Task { await LinkFollower(path: path, upstreams: upstreams, name: name).run() }
        }
        if let metricsPort { try await Metrics.serve(bind: bind, port: metricsPort) }
    }
}

@main
struct VNFSample: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vnf-sample", abstract: "Sample TCP network functions for the NFV samples.",
        subcommands: [Firewall.self, RateLimit.self, LoadBalancer.self, Echo.self])
}

extension VNFSample {
    struct Firewall: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forward TCP connections that the rules allow; close those they deny.",
            discussion: "Rules are tried in order, the first match wins: allow|deny[:src=CIDR][,dport=PORT].")

        @OptionGroup var hop: HopOptions

        @Option(name: .customLong("rule"), help: "A rule: allow|deny[:src=CIDR][,dport=PORT]; repeatable.")
        var rules: [String] = []

        @Option(name: .customLong("default"), help: "allow or deny when no rule matches.")
        var defaultAction: String = "allow"

        @Option(name: .customLong("deny-pattern"), help: "Close a connection whose bytes contain this text; repeatable.")
        var denyPatterns: [String] = []

        func validate() throws {
            for rule in rules where FirewallRules.parseRule(rule) == nil {
                throw ValidationError("--rule \(rule) is not allow|deny[:src=CIDR][,dport=PORT]")
            }
            guard FirewallRules.Action(rawValue: defaultAction) != nil else { throw ValidationError("--default is allow or deny") }
        }

        func run() async throws {
            let rules = FirewallRules(
                rules: rules.compactMap(FirewallRules.parseRule), defaultAction: FirewallRules.Action(rawValue: defaultAction)!,
                denyPatterns: denyPatterns.map { Array($0.utf8) })
            let policy = ProxyPolicy(
                admit: { remote, localPort in
                    let source = remote?.ipAddress.flatMap(CIDR.parseIPv4)
                    return rules.evaluate(source: source, destinationPort: localPort) == .allow
                },
                denyPatterns: rules.denyPatterns)
            let upstreams = hop.upstreams()
            try await hop.startSideServices(upstreams, name: "firewall")
            try await Proxy.run(bind: hop.bind, port: hop.port, upstreams: upstreams, policy: policy, name: "firewall")
        }
    }

    struct RateLimit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ratelimit", abstract: "Forward at most --rate new connections per second (burst --burst); close the rest.")

        @OptionGroup var hop: HopOptions

        @Option(help: "New connections per second.")
        var rate: Double = 100

        @Option(help: "Bucket size (connections admitted at once).")
        var burst: Double = 100

        func validate() throws {
            guard rate >= 0, burst >= 1 else { throw ValidationError("--rate must be ≥ 0 and --burst ≥ 1") }
        }

        func run() async throws {
            let bucket = Mutex(TokenBucket(rate: rate, burst: burst))
            let policy = ProxyPolicy(admit: { _, _ in
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let seconds = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
                return bucket.withLock { $0.take(now: seconds) }
            })
            let upstreams = hop.upstreams()
            try await hop.startSideServices(upstreams, name: "ratelimit")
            try await Proxy.run(bind: hop.bind, port: hop.port, upstreams: upstreams, policy: policy, name: "ratelimit")
        }
    }

    struct LoadBalancer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lb", abstract: "Spread connections round-robin over the --next backends.")

        @OptionGroup var hop: HopOptions

        func run() async throws {
            let upstreams = hop.upstreams()
            try await hop.startSideServices(upstreams, name: "lb")
            try await Proxy.run(bind: hop.bind, port: hop.port, upstreams: upstreams, policy: ProxyPolicy(), name: "lb")
        }
    }

    struct Echo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A TCP echo server (the chain's target).")

        @Option(help: "Port to listen on.")
        var port: Int

        @Option(help: "Address to listen on.")
        var bind: String = "127.0.0.1"

        @Option(help: "Text written before each echoed read.")
        var tag: String = ""

        func run() async throws { try await Proxy.echo(bind: bind, port: port, tag: tag) }
    }
}
