// How cache-bench prints results: a human summary and one machine-readable JSON line.
import Foundation
import Histogram

/// The JSON line of a run (field names are stable: benchmarks/run.sh reads them).
struct BenchReport: Codable {
    var mode: String
    var host: String
    var port: Int
    var connections: Int
    var pipeline: Int
    var threads: Int
    var dataSize: Int
    var ratio: String
    var requests: UInt64
    var errors: UInt64
    var getMisses: UInt64
    var firstError: String?
    var elapsedSeconds: Double
    var opsPerSec: Double
    var p50Ms: Double
    var p99Ms: Double
    var p999Ms: Double
    var maxMs: Double

    enum CodingKeys: String, CodingKey {
        case mode, host, port, connections, pipeline, threads, ratio, requests, errors
        case dataSize = "data_size"
        case getMisses = "get_misses"
        case firstError = "first_error"
        case elapsedSeconds = "elapsed_s"
        case opsPerSec = "ops_per_sec"
        case p50Ms = "p50_ms"
        case p99Ms = "p99_ms"
        case p999Ms = "p99_9_ms"
        case maxMs = "max_ms"
    }
}

extension BenchResult {
    func humanSummary(plan: BenchPlan, ratio: String) -> String {
        func format(_ value: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", value) }
        var lines = [
            "cache-bench \(plan.host):\(plan.port)  connections=\(plan.connections) pipeline=\(plan.pipeline) "
                + "threads=\(plan.threads) data-size=\(plan.dataSize) ratio=\(ratio)",
            "  requests \(completed) in \(format(elapsedSeconds))s  ->  \(format(opsPerSecond, 0)) ops/s",
            "  latency ms: p50 \(format(milliseconds(atPercentile: 50)))  p99 \(format(milliseconds(atPercentile: 99)))"
                + "  p99.9 \(format(milliseconds(atPercentile: 99.9)))  max \(format(Double(latencies.max) / 1000))",
            "  errors \(errors)  get misses \(getMisses)",
        ]
        if let firstError { lines.append("  first error: \(firstError)") }
        return lines.joined(separator: "\n")
    }

    func jsonLine(plan: BenchPlan, mode: String, ratio: String) throws -> String {
        let report = BenchReport(
            mode: mode, host: plan.host, port: plan.port, connections: plan.connections, pipeline: plan.pipeline,
            threads: plan.threads, dataSize: plan.dataSize, ratio: ratio, requests: completed, errors: errors,
            getMisses: getMisses, firstError: firstError, elapsedSeconds: elapsedSeconds, opsPerSec: opsPerSecond,
            p50Ms: milliseconds(atPercentile: 50), p99Ms: milliseconds(atPercentile: 99),
            p999Ms: milliseconds(atPercentile: 99.9), maxMs: Double(latencies.max) / 1000)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }
}
