// provision-bench: how long the framework takes to provision a cluster on the local backend, from the create
// request until every member answers PING (target: 16 shards × 2 replicas within 5 s on this machine). It runs the
// real driver, SQLite store and local backend with real member processes, and prints a table.
//
//   swift build -c release --product provision-bench --product cache-node
//   .build/release/provision-bench [--shards 16] [--replicas 2] [--runs 3] [--engine cache-node|redis-server]
//
// With `--failover` it measures healing instead: a secure cache-node cluster (default 3 shards × 2 members) is
// provisioned, keys are written, one primary is killed with SIGKILL, and it prints per run the time from the kill to
// the framework seeing the loss, to the replica's promotion, to the shard's slots being served again (a write to a
// key of the shard, following MOVED from another shard's node, succeeds), and to the replacement replica being
// attached (cluster ready again).
//
//   .build/release/provision-bench --failover [--shards 3] [--replicas 1] [--runs 5]

import CacheFramework
import CacheFrameworkRuntime
import Foundation
import Logging

struct Arguments {
    var shards = 16
    var replicas = 2
    var runs = 3
    var engines: [CacheEngine] = [.cacheNode, .redisServer]
    var binDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    var failover = false

    init() {
        var iterator = CommandLine.arguments.dropFirst().makeIterator()
        if CommandLine.arguments.contains("--failover") {
            failover = true
            shards = 3
            replicas = 1
            runs = 5
        }
        while let flag = iterator.next() {
            if flag == "--failover" { continue }
            let value = iterator.next() ?? ""
            switch flag {
            case "--shards": shards = Int(value) ?? shards
            case "--replicas": replicas = Int(value) ?? replicas
            case "--runs": runs = Int(value) ?? runs
            case "--engine": engines = CacheEngine(rawValue: value).map { [$0] } ?? engines
            case "--bin-dir": binDirectory = value
            default:
                FileHandle.standardError.write(Data("unknown flag \(flag)\n".utf8))
                exit(64)
            }
        }
    }
}

struct Measurement {
    var engine: CacheEngine
    var run: Int
    var firstLaunch: Double
    var allRunning: Double
    var replicasWired: Double?
    var members: Int
}

let arguments = Arguments()
var logger = Logger(label: "provision-bench")
logger.logLevel = .error
var results: [Measurement] = []

if arguments.failover {
    try await FailoverBench.run(arguments, logger: logger)
    exit(0)
}

for engine in arguments.engines {
    for run in 1...arguments.runs {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("provision-bench-\(UUID().uuidString.prefix(8))").path
        let store = try SQLiteStateStore(directory: directory)
        let control = RESPNodeControl(timeout: .milliseconds(500))
        let firstPort = UInt64.random(in: 200..<280) * 100
        let backend = LocalBackend(
            configuration: LocalBackendConfiguration(
                agents: LocalAgentSpec.split(
                    count: arguments.replicas + 1, cpus: 64, memMB: 16_384, firstPort: firstPort, portsPerAgent: 300),
                sandboxDirectory: directory + "/sandboxes", executableSearchPaths: [arguments.binDirectory],
                offerInterval: .milliseconds(200)),
            journal: store, frameworkID: FrameworkID("bench"), logger: logger, readiness: control.pingReadiness())
        var configuration = FrameworkDriver.Configuration()
        configuration.tickInterval = .milliseconds(200)
        let driver = FrameworkDriver(backend: backend, store: store, control: control, configuration: configuration, logger: logger)
        let runner = Task { try await driver.run() }
        while driver.phaseName != "ready" { try await Task.sleep(for: .milliseconds(5)) }

        let spec = ClusterSpec(
            name: "bench", shardCount: arguments.shards, replicasPerShard: arguments.replicas, memoryMBPerNode: 16,
            cpusPerNode: 0.1, engine: engine, secureReplication: false)
        let clock = ContinuousClock()
        let start = clock.now
        try await driver.createCluster(spec)
        var firstLaunch: Duration?
        var lastReport = clock.now
        while true {
            let status = driver.clusterStatus("bench")!
            if lastReport.duration(to: clock.now) > .seconds(5) {
                lastReport = clock.now
                let applied = status.members.filter { $0.topologyEpoch != nil && $0.topologyEpoch == status.topologyEpoch }.count
                FileHandle.standardError.write(Data(
                    "waiting: \(status.runningMembers)/\(status.members.count) running, \(status.members.filter { $0.clusterNodeID != nil }.count) node ids, topology epoch \(status.topologyEpoch.map(String.init) ?? "-") acknowledged by \(applied)\n".utf8))
                for event in driver.events().filter({ $0.kind == "error" }).suffix(2) {
                    FileHandle.standardError.write(Data("  \(event.message)\n".utf8))
                }
            }
            if firstLaunch == nil, status.members.contains(where: { $0.taskID != nil }) { firstLaunch = start.duration(to: clock.now) }
            if status.ready { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        let allRunning = start.duration(to: clock.now)
        // Replication wiring (works with redis-server today; cache-node answers REPLICAOF once replication lands).
        var wired: Duration?
        if engine == .redisServer && arguments.replicas > 0 {
            let replicas = driver.taskRecords().filter { $0.role == .replica }.map(\.endpoint)
            let deadline = clock.now.advanced(by: .seconds(20))
            while clock.now < deadline {
                var up = 0
                for replica in replicas where (try? await control.replicationInfo(replica))?.linkUp == true { up += 1 }
                if up == replicas.count {
                    wired = start.duration(to: clock.now)
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        results.append(
            Measurement(
                engine: engine, run: run, firstLaunch: firstLaunch.map(seconds) ?? 0, allRunning: seconds(allRunning),
                replicasWired: wired.map(seconds), members: spec.shardCount * spec.membersPerShard))
        runner.cancel()
        _ = try? await runner.value
        try? FileManager.default.removeItem(atPath: directory)
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

print("Provisioning \(arguments.shards) shards × \(arguments.replicas + 1) members on the local backend (\(ProcessInfo.processInfo.activeProcessorCount) CPUs)")
print("engine        run  members  first launch  ready (s)     replicas linked (s)   (ready: every member answers PING; cache-node: and acknowledged the topology)")
for result in results {
    let engine = result.engine.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
    print(
        "\(engine)  \(String(format: "%3d", result.run))  \(String(format: "%7d", result.members))  "
            + "\(String(format: "%10.3f", result.firstLaunch))    \(String(format: "%10.3f", result.allRunning))    "
            + (result.replicasWired.map { String(format: "%10.3f", $0) } ?? "         -"))
}
