// cache-bench: a memtier-style load generator on libhiredis's async API and libevent.
// N connections per run, each keeping P requests outstanding, a GET/SET mix over a key space, and
// per-request latencies in an HdrHistogram; `--populate N` writes keys 0..<N once instead.
import ArgumentParser
import Foundation

@main
struct CacheBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache-bench",
        abstract: "Drive a Redis-compatible server with GET/SET load through hiredis and report throughput and latency.",
        discussion: """
            Keys are named key:%012d over 0..<--keys and chosen uniformly at random; values are --data-size bytes.
            --ratio S:G sends S SETs for every G GETs (as memtier does). Stop after --requests in total, or
            after --duration seconds when given. --populate N instead SETs keys 0..<N exactly once.
            """
    )

    @Option(help: "Server address.") var host = "127.0.0.1"
    @Option(name: [.short, .long], help: "Server port.") var port = 6379
    @Option(name: [.short, .long], help: "Connections in total (split over the threads).") var connections = 50
    @Option(name: [.customShort("P"), .long], help: "Outstanding requests per connection.") var pipeline = 1
    @Option(help: "Key space size: keys are key:000000000000 ..< --keys.") var keys = 100_000
    @Option(name: [.short, .customLong("data-size")], help: "Value size in bytes for SET.") var dataSize = 32
    @Option(help: "SET:GET ratio, e.g. 1:10 (ten GETs per SET).") var ratio = "1:10"
    @Option(name: [.customShort("n"), .long], help: "Requests in total (ignored when --duration is given).") var requests = 100_000
    @Option(help: "Run for this many seconds instead of a request count.") var duration: Double?
    @Option(help: "Threads, each with its own libevent base.") var threads = 1
    @Option(help: "SET keys 0..<N once (one request per key) instead of the mixed workload.") var populate: Int?
    @Option(help: "Seed for the key choice (each connection derives its own stream).") var seed: UInt64 = 1
    @Flag(help: "Also print the results as one JSON line (the last line of output).") var json = false

    mutating func validate() throws {
        guard (1...65_535).contains(port) else { throw ValidationError("--port must be 1...65535") }
        guard connections > 0 else { throw ValidationError("--connections must be positive") }
        guard pipeline > 0 else { throw ValidationError("--pipeline must be positive") }
        guard keys > 0, keys < 1_000_000_000_000 else { throw ValidationError("--keys must be 1..<10^12") }
        guard dataSize >= 0 else { throw ValidationError("--data-size must not be negative") }
        guard requests > 0 else { throw ValidationError("--requests must be positive") }
        guard threads > 0, threads <= connections else {
            throw ValidationError("--threads must be 1...--connections")
        }
        if let duration, !(duration > 0) { throw ValidationError("--duration must be positive") }
        if let populate, populate <= 0 || populate >= 1_000_000_000_000 {
            throw ValidationError("--populate must be 1..<10^12")
        }
        _ = try RequestMix(parsing: ratio)
    }

    func run() throws {
        let mix = try RequestMix(parsing: ratio)
        let workload: Workload
        if let populate {
            workload = .populate(keyCount: populate)
        } else if let duration {
            workload = .mixed(mix, keySpace: keys, stop: .after(seconds: duration))
        } else {
            workload = .mixed(mix, keySpace: keys, stop: .afterRequests(requests))
        }
        let plan = BenchPlan(
            host: host, port: port, connections: connections, pipeline: pipeline, dataSize: dataSize,
            threads: threads, seed: seed, workload: workload
        )
        let result = try BenchRunner(plan: plan).run()
        print(result.humanSummary(plan: plan, ratio: populate == nil ? ratio : "populate"))
        if json {
            print(try result.jsonLine(plan: plan, mode: populate == nil ? "mixed" : "populate", ratio: ratio))
        }
        if result.errors > 0 { throw ExitCode(2) }
    }
}

/// The share of SETs and GETs, as `sets:gets`.
struct RequestMix: Sendable, Equatable {
    var sets: Int
    var gets: Int

    init(sets: Int, gets: Int) {
        self.sets = sets
        self.gets = gets
    }

    /// Parses `S:G` with non-negative integers that are not both zero.
    init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let sets = Int(parts[0]), let gets = Int(parts[1]), sets >= 0, gets >= 0,
            sets + gets > 0
        else {
            throw ValidationError("--ratio must look like SETS:GETS with non-negative integers, e.g. 1:10; got \(text)")
        }
        self.init(sets: sets, gets: gets)
    }

    /// Whether request number `sequence` (0, 1, 2, …) of a connection is a SET.
    func isSet(_ sequence: UInt64) -> Bool {
        sequence % UInt64(sets + gets) < UInt64(sets)
    }
}
