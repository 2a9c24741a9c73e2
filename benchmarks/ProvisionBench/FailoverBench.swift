// provision-bench --failover: how long the framework takes to heal a secure cache-node cluster after kill -9 of a
// primary, measured from outside as a client sees it (see main.swift for the columns).

import CacheFramework
import CacheFrameworkRuntime
import Foundation
import Logging

enum FailoverBench {
    struct Run {
        var detected: Double
        var promoted: Double
        var served: Double
        var attached: Double
    }

    static func run(_ arguments: Arguments, logger: Logger) async throws {
        var runs: [Run] = []
        for run in 1...arguments.runs {
            runs.append(try await once(arguments, logger: logger))
            FileHandle.standardError.write(Data("run \(run) done\n".utf8))
        }
        print("Failover of a \(arguments.shards) shards × \(arguments.replicas + 1) members secure cache-node cluster "
            + "(\(ProcessInfo.processInfo.activeProcessorCount) CPUs): seconds after kill -9 of a primary")
        print("run  loss seen  promoted  slots served  replica attached")
        for (index, run) in runs.enumerated() {
            print(String(format: "%3d  %9.3f  %8.3f  %12.3f  %16.3f", index + 1, run.detected, run.promoted, run.served, run.attached))
        }
        let served = runs.map(\.served).sorted()
        print(String(format: "slots served: median %.3f s, max %.3f s (target: 2 s; Sentinel's default down-after is 30 s)",
                     served[served.count / 2], served.last ?? 0))
    }

    static func once(_ arguments: Arguments, logger: Logger) async throws -> Run {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("failover-bench-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteStateStore(directory: directory)
        let control = RESPNodeControl(timeout: .milliseconds(500))
        let backend = LocalBackend(
            configuration: LocalBackendConfiguration(
                agents: LocalAgentSpec.split(
                    count: arguments.replicas + 1, cpus: 64, memMB: 16_384, firstPort: UInt64.random(in: 200..<280) * 100,
                    portsPerAgent: 300),
                sandboxDirectory: directory + "/sandboxes", executableSearchPaths: [arguments.binDirectory],
                offerInterval: .milliseconds(200)),
            journal: store, frameworkID: FrameworkID("bench"), logger: logger, readiness: control.pingReadiness())
        var configuration = FrameworkDriver.Configuration()
        configuration.tickInterval = .milliseconds(200)
        let driver = FrameworkDriver(
            backend: backend, store: store, control: control, configuration: configuration, logger: logger,
            credentials: try FrameworkAuthority(directory: directory + "/authority"))
        let runner = Task { try await driver.run() }
        do {
            return try await measure(driver: driver, backend: backend, control: control, arguments: arguments, runner: runner)
        } catch {
            // Stop the driver so it kills the members before the error ends the process.
            runner.cancel()
            _ = try? await runner.value
            throw error
        }
    }

    static func measure(
        driver: FrameworkDriver, backend: LocalBackend, control: RESPNodeControl, arguments: Arguments,
        runner: Task<Void, any Error>
    ) async throws -> Run {
        let spec = ClusterSpec(
            name: "bench", shardCount: arguments.shards, replicasPerShard: arguments.replicas, memoryMBPerNode: 16,
            cpusPerNode: 0.1)
        while driver.phaseName != "ready" { try await Task.sleep(for: .milliseconds(5)) }
        try await driver.createCluster(spec)
        try await until(seconds: 60) { driver.clusterStatus("bench")?.ready == true }

        let records = driver.taskRecords()
        let victim = records.first { $0.slot.shard == 0 && $0.role == .primary }!
        let other = records.first { $0.slot.shard == arguments.shards - 1 && $0.role == .primary }!.endpoint
        // Keys on the victim's shard, and one to probe it with.
        var probe = ""
        for index in 0... {
            guard case .integer(let slot) = try await control.command(["CLUSTER", "KEYSLOT", "probe:\(index)"], to: other) else { continue }
            if ClusterPlan.slots(shard: 0, of: arguments.shards).closedRange.contains(Int(slot)) {
                probe = "probe:\(index)"
                break
            }
        }
        for index in 0..<1000 { _ = try await control.command(["SET", "{\(probe)}:\(index)", "\(index)"], to: victim.endpoint) }
        _ = try await control.command(["WAIT", "1", "2000"], to: victim.endpoint)
        let pid = await backend.taskViews().first { $0.taskID == victim.taskID }!.pid!
        let clock = ContinuousClock()
        let killed = clock.now
        kill(pid, SIGKILL)
        func elapsed() -> Double {
            let duration = killed.duration(to: clock.now)
            return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }
        var detected: Double?
        var promoted: Double?
        var served: Double?
        while served == nil || detected == nil || promoted == nil {
            let records = driver.taskRecords()
            if detected == nil, !records.contains(where: { $0.taskID == victim.taskID }) { detected = elapsed() }
            if promoted == nil, records.contains(where: { $0.slot.shard == 0 && $0.role == .primary && $0.taskID != victim.taskID }) {
                promoted = elapsed()
            }
            if served == nil, await write(probe, through: other, control: control) { served = elapsed() }
            guard elapsed() < 60 else { throw BenchError(description: "not healed within 60 s") }
            try await Task.sleep(for: .milliseconds(2))
        }
        try await until(seconds: 60) {
            guard let status = driver.clusterStatus("bench"), status.ready else { return false }
            return status.members.allSatisfy { $0.taskID != victim.taskID }
        }
        let attached = elapsed()
        if served! > 2 {
            // Slow heal: show what the framework did after the kill.
            let killTime = Date().timeIntervalSince1970 - attached
            for event in driver.events() where event.time >= killTime - 0.01 {
                FileHandle.standardError.write(Data(String(format: "  +%.3f %@ %@\n", event.time - killTime, event.kind, event.message).utf8))
            }
        }
        runner.cancel()
        _ = try? await runner.value
        return Run(detected: detected!, promoted: promoted!, served: served!, attached: attached)
    }

    /// SET through `node`, following one MOVED: whether the owner of the key's slot accepted it.
    static func write(_ key: String, through node: TaskEndpoint, control: RESPNodeControl) async -> Bool {
        guard let reply = try? await control.command(["SET", key, "x"], to: node) else { return false }
        switch reply {
        case .simple("OK"): return true
        case .error(let message) where message.hasPrefix("MOVED"):
            let target = message.split(separator: " ").last.map(String.init) ?? ""
            guard let colon = target.lastIndex(of: ":"), let port = UInt64(target[target.index(after: colon)...]) else { return false }
            let owner = TaskEndpoint(taskID: node.taskID, hostname: String(target[..<colon]), port: port)
            return (try? await control.command(["SET", key, "x"], to: owner)) == .simple("OK")
        default: return false
        }
    }

    static func until(seconds: Double, _ condition: () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !(await condition()) {
            guard Date() < deadline else { throw BenchError(description: "timed out after \(seconds) s") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
}
