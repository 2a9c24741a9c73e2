// snapshot-bench: what a point-in-time snapshot costs the hot path, in-process (release build:
// `swift run -c release snapshot-bench [keys]`). Fills a keyspace with N string keys (16-byte names, 32-byte
// values), then measures: the freeze (beginSnapshot: all stripes locked, markers set), the stall one write pays
// when it is the first to lock a pending stripe (that stripe's serialization), a write to an already captured
// stripe, the whole snapshot read out by nextChunk, and lock+unlock with no snapshot running. Prints a table.
import CacheStore
import Foundation

let keyCount = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1_000_000 : 1_000_000
let now: Int64 = 1_700_000_000_000
let keyspace = Keyspace(databases: 16)
let db = keyspace.database(0, now: now)
let value = StoredValue.string(String(repeating: "v", count: 32))
var keys: [KeyRef] = []
keys.reserveCapacity(keyCount)
for index in 0..<keyCount { keys.append(KeyRef(String(format: "key:%012d", index))) }
keyspace.withAllLocked { for (index, key) in keys.enumerated() { db.set(key, value, expiry: index % 10 == 0 ? .at(now + 3_600_000) : .remove) } }

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}
let clock = ContinuousClock()

/// CPU time of this thread in ms: unlike wall time, not inflated when other processes take the cores.
func threadCPUMilliseconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) * 1000 + Double(spec.tv_nsec) / 1e6
}

// Baseline: lock + unlock of a stripe with no snapshot running.
let rounds = 1_000_000
var start = clock.now
for round in 0..<rounds { keyspace.lock(stripe: round & 63); keyspace.unlock(stripe: round & 63) }
let baselineNs = milliseconds(clock.now - start) * 1e6 / Double(rounds)

// Freeze, then the first write to each stripe (the per-write stall), then a second write (already captured).
start = clock.now
let snapshot = keyspace.beginSnapshot(createdAt: now)
let freeze = milliseconds(clock.now - start)
var stalls: [Double] = []
var stallCPU: [Double] = []
var second: [Double] = []
for stripe in 0..<keyspace.stripes.count {
    let key = keys.first { keyspace.stripeIndex(for: $0) == stripe }!
    start = clock.now
    let cpuStart = threadCPUMilliseconds()
    keyspace.withLocked([key]) { db.set(key, value) }
    stallCPU.append(threadCPUMilliseconds() - cpuStart)
    stalls.append(milliseconds(clock.now - start))
    start = clock.now
    keyspace.withLocked([key]) { db.set(key, value) }
    second.append(milliseconds(clock.now - start))
}
start = clock.now
var bytes = 0
while let chunk = snapshot.nextChunk() { bytes += chunk.count }
let readOut = milliseconds(clock.now - start)

// A whole snapshot where nextChunk captures every stripe itself (no writers): the total serialization cost.
start = clock.now
let quiet = keyspace.beginSnapshot(createdAt: now)
var quietBytes = 0
while let chunk = quiet.nextChunk() { quietBytes += chunk.count }
let total = milliseconds(clock.now - start)

stalls.sort()
stallCPU.sort()
func row(_ name: String, _ value: String) { print("| \(name.padding(toLength: 52, withPad: " ", startingAt: 0)) | \(value) |") }
print("| snapshot-bench, \(keyCount) keys, 64 stripes | value |")
print("|---|---|")
row("lock+unlock, no snapshot running", String(format: "%.1f ns", baselineNs))
var load = [Double](repeating: 0, count: 3)
_ = getloadavg(&load, 3)
row("machine load average (1 min)", String(format: "%.1f on %d cores", load[0], ProcessInfo.processInfo.activeProcessorCount))
row("freeze (beginSnapshot)", String(format: "%.3f ms", freeze))
row("first write to a pending stripe: median", String(format: "%.2f ms", stalls[stalls.count / 2]))
row("first write to a pending stripe: p90", String(format: "%.2f ms", stalls[stalls.count * 9 / 10]))
row("first write to a pending stripe: max", String(format: "%.2f ms", stalls.last!))
row("first write to a pending stripe, thread CPU: median", String(format: "%.2f ms", stallCPU[stallCPU.count / 2]))
row("first write to a pending stripe, thread CPU: max", String(format: "%.2f ms", stallCPU.last!))
row("second write to the stripe: max", String(format: "%.4f ms", second.max()!))
row("read out (checksum, stripes already captured)", String(format: "%.1f ms", readOut))
row("whole snapshot serialized by nextChunk", String(format: "%.1f ms (%.1f MB)", total, Double(quietBytes) / 1e6))
let crcInput = [UInt8](repeating: 0x5A, count: 64 << 20)
start = clock.now
var crc = CRC64()
crc.update(crcInput)
row("CRC-64 throughput", String(format: "%.0f MB/s (checksum %llx)", 64 * 1.048576 / (milliseconds(clock.now - start) / 1000), crc.value))

// Latency of single-key SETs on another thread while snapshots are serialized back to back on this one (the
// in-process part of a BGSAVE: no network, no file).
final class LatencyProbe: @unchecked Sendable {
    var latencies: [Double] = []
    var stop = false
}
let probe = LatencyProbe()
let probeKeys = keys
let probeThread = Thread {
    var random = SplitMix64(seed: 9)
    let clock = ContinuousClock()
    let db = keyspace.database(0, now: now)
    let value = StoredValue.string(String(repeating: "w", count: 32))
    while !probe.stop {
        let key = probeKeys[Int.random(in: 0..<probeKeys.count, using: &random)]
        let begin = clock.now
        keyspace.withLocked([key]) { db.set(key, value) }
        probe.latencies.append(milliseconds(clock.now - begin))
    }
}
probeThread.start()
start = clock.now
var snapshots = 0
while milliseconds(clock.now - start) < 5000 {
    let running = keyspace.beginSnapshot(createdAt: now)
    if let path = ProcessInfo.processInfo.environment["SNAPSHOT_BENCH_FILE"] {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        while let chunk = running.nextChunk() { _ = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress!, $0.count) } }
        fsync(descriptor)
        close(descriptor)
    } else {
        while running.nextChunk() != nil {}
    }
    snapshots += 1
}
probe.stop = true
Thread.sleep(forTimeInterval: 0.1)
let sortedLatencies = probe.latencies.sorted()
row("SETs on a 2nd thread during \(snapshots) snapshots: p99.9", String(format: "%.3f ms", sortedLatencies[sortedLatencies.count * 999 / 1000]))
row("SETs on a 2nd thread during snapshots: max", String(format: "%.3f ms (%d SETs)", sortedLatencies.last!, sortedLatencies.count))
