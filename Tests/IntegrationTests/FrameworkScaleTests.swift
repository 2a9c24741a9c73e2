// End to end through `cachectl serve` with real cache-node members: a 3-shard cluster is scaled out to 5 shards and
// then in to 2 with `cachectl cluster scale --shards`, while a redis-py RedisCluster client writes and reads
// continuously. Afterwards every acknowledged key is present exactly once, `redis-cli --cluster check` passes, no
// member of a removed shard runs, and the client saw no error (redis-py follows MOVED/ASK itself). The scale times
// and the keys the framework moved are printed (the figures in the report); the test bounds them only by deadlines.
// Slots are handed over in batches of up to 1024 (rounds of 128 with CLUSTER SETSLOTSRANGE), so 3 → 5 → 2 (6,554 +
// 11,469 slots) takes well under a minute in a debug build; with per-slot SETSLOTs of ~20 ms each it took 9 minutes.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized)
struct FrameworkScaleTests {
    func ctl(_ arguments: [String], _ dataDirectory: String, timeout: TimeInterval = 90) throws -> ProgramResult {
        try runProgram(CachectlFrameworkTests.cachectl, arguments + ["--data-dir", dataDirectory], timeout: timeout)
    }

    func status(_ dataDirectory: String) throws -> [String: Any] {
        let result = try ctl(["cluster", "status", "scale", "--json"], dataDirectory)
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        else { throw HarnessError(description: "cluster status failed: \(result.output)") }
        return object
    }

    func members(_ status: [String: Any]) -> [[String: Any]] { status["members"] as? [[String: Any]] ?? [] }

    func port(_ member: [String: Any]) -> Int { Int((member["endpoint"] as? String)?.split(separator: ":").last ?? "") ?? 0 }

    func shardSlots(_ status: [String: Any]) -> [[String]] {
        (status["shards"] as? [[String: Any]])?.map { ($0["slots"] as? [String]) ?? [] } ?? []
    }

    /// The even split's ranges for `count` shards, as the API prints them.
    func evenSplit(_ count: Int) -> Set<[String]> {
        let per = 16384.0 / Double(count)
        var ranges: Set<[String]> = []
        var first = 0
        for shard in 0..<count {
            let last = shard == count - 1 ? 16383 : Int((Double(shard) * per + per - 1).rounded())
            ranges.insert(["\(first)-\(last)"])
            first = last + 1
        }
        return ranges
    }

    /// The framework's counter `name` from `/metrics`.
    func metric(_ name: String, _ dataDirectory: String) throws -> Double {
        let url = try CachectlFrameworkTests().apiURL(dataDirectory)
        let text = try runProgram("/usr/bin/curl", ["-s", "-H", "Authorization: Bearer e2e-token", url + "/metrics"]).output
        let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
        return Double(line?.split(separator: " ").last ?? "") ?? 0
    }

    func keyCount(_ ports: [Int]) -> Int {
        ports.reduce(0) { $0 + (Int((try? redisCLI($1, ["DBSIZE"])) ?? "") ?? 0) }
    }

    @Test func scaleOutAndInUnderARunningClientLosesNoKey() async throws {
        let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("scale-e2e-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let firstPort = Int.random(in: 145..<175) * 100
        let serve = try CachectlFrameworkTests.Serve(dataDirectory: dataDirectory, firstPort: firstPort)
        defer { serve.terminate() }

        let created = try ctl(["cluster", "create", "scale", "--shards", "3", "--memory-mb", "32", "--json"], dataDirectory)
        #expect(created.status == 0, "\(created.output)")
        var current = try status(dataDirectory)
        #expect(current["ready"] as? Bool == true)
        let seedPort = port(members(current)[0])

        // The client writes and reads from now until the end.
        let stopFile = dataDirectory + "/stop"
        let resultFile = dataDirectory + "/client.json"
        let client = try ServerProcess.spawn(
            ["/usr/bin/env", "python3", PackagePaths.clientScript("scale_client.py"), "run", String(seedPort), stopFile, resultFile, "6000"],
            logPath: dataDirectory + "/client.log")
        var clientStopped = false
        defer {
            if !clientStopped {
                kill(client, SIGKILL)
                var status: Int32 = 0
                waitpid(client, &status, 0)
            }
        }
        try eventually("the client wrote keys", seconds: 60) { keyCount(members(current).map(port)) >= 1_000 }

        // 3 → 5: new shards launched, slots moved until the even split for 5 (ranges kept in place where they overlap).
        let keysBefore = try metric("cacheframework_migrated_keys_total", dataDirectory)
        var started = Date()
        let out = try ctl(["cluster", "scale", "scale", "--shards", "5", "--timeout", "2400", "--json"], dataDirectory, timeout: 2400)
        let scaleOutSeconds = Date().timeIntervalSince(started)
        #expect(out.status == 0, "\(out.output)")
        current = try status(dataDirectory)
        #expect((current["spec"] as? [String: Any])?["shardCount"] as? Int == 5)
        #expect(Set(shardSlots(current)) == evenSplit(5), "\(shardSlots(current))")
        #expect(current["resharding"] == nil)
        #expect(current["ready"] as? Bool == true)
        let keysOut = try metric("cacheframework_migrated_keys_total", dataDirectory) - keysBefore
        let slotsOut = try metric("cacheframework_migrated_slots_total", dataDirectory)
        let check5 = try runProgram("/usr/bin/redis-cli", ["--cluster", "check", "127.0.0.1:\(seedPort)"])
        #expect(check5.status == 0, "\(check5.output)")
        #expect(check5.output.contains("[OK] All 16384 slots covered."))

        // 5 → 2: the slots of shards 2-4 move away, then their members are stopped and forgotten.
        let removedPorts = members(current).filter { ($0["shard"] as? Int ?? 0) >= 2 }.map(port)
        #expect(removedPorts.count == 3)
        started = Date()
        let inResult = try ctl(["cluster", "scale", "scale", "--shards", "2", "--timeout", "2400", "--json"], dataDirectory, timeout: 2400)
        let scaleInSeconds = Date().timeIntervalSince(started)
        #expect(inResult.status == 0, "\(inResult.output)")
        current = try status(dataDirectory)
        #expect((current["spec"] as? [String: Any])?["shardCount"] as? Int == 2)
        #expect(Set(shardSlots(current)) == evenSplit(2), "\(shardSlots(current))")
        #expect(members(current).count == 2)
        let keysIn = try metric("cacheframework_migrated_keys_total", dataDirectory) - keysBefore - keysOut
        let slotsIn = try metric("cacheframework_migrated_slots_total", dataDirectory) - slotsOut
        try eventually("no member of a removed shard runs", seconds: 30) {
            removedPorts.allSatisfy { port in CachectlFrameworkTests().cacheNodeProcesses(ports: port...port).isEmpty }
        }
        let keptPort = port(members(current)[0])

        // Stop the client and check what it saw, then every acknowledged key, exactly once.
        _ = FileManager.default.createFile(atPath: stopFile, contents: Data())
        var exitStatus: Int32 = 0
        let deadline = Date().addingTimeInterval(60)
        while waitpid(client, &exitStatus, WNOHANG) == 0 && Date() < deadline { usleep(50_000) }
        clientStopped = true
        let log = (try? String(contentsOfFile: dataDirectory + "/client.log", encoding: .utf8)) ?? ""
        let result = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: resultFile))) as? [String: Any], "\(log)")
        let errors = result["errors"] as? [String] ?? ["unreadable"]
        let wrong = result["wrong"] as? [Any] ?? []
        let acked = (result["acked"] as? [Any])?.count ?? 0
        let ops = result["ops"] as? Int ?? 0
        let seconds = result["seconds"] as? Double ?? 1
        let libraryRetries = result["library_retries"] as? Int ?? 0
        #expect(errors.isEmpty, "the client saw only redirects: \(errors.prefix(5))")
        #expect(wrong.isEmpty, "reads matched: \(wrong.prefix(5))")
        #expect(acked > 1_000)
        let verified = try runProgram(
            "/usr/bin/env", ["python3", PackagePaths.clientScript("scale_client.py"), "verify", String(keptPort), resultFile], timeout: 120)
        #expect(verified.status == 0, "\(verified.output)")
        #expect(verified.output.hasPrefix("verified \(acked) missing 0 duplicated 0 stray 0"), "\(verified.output)")
        let check2 = try runProgram("/usr/bin/redis-cli", ["--cluster", "check", "127.0.0.1:\(keptPort)"])
        #expect(check2.status == 0, "\(check2.output)")
        #expect(check2.output.contains("[OK] All 16384 slots covered."))
        #expect(check2.output.contains("[OK] All nodes agree about slots configuration."))

        print(
            "FrameworkScaleTests: 3→5 shards in \(String(format: "%.1f", scaleOutSeconds)) s (\(Int(slotsOut)) slots, \(Int(keysOut)) keys, "
                + "\(String(format: "%.0f", keysOut / scaleOutSeconds)) keys/s); 5→2 in \(String(format: "%.1f", scaleInSeconds)) s "
                + "(\(Int(slotsIn)) slots, \(Int(keysIn)) keys, \(String(format: "%.0f", keysIn / scaleInSeconds)) keys/s); "
                + "client \(ops) ops in \(String(format: "%.1f", seconds)) s (\(String(format: "%.0f", Double(ops) / seconds)) ops/s), \(acked) keys, "
                + "\(libraryRetries) ASKs redis-py could not follow (retried)")
    }
}
