// End to end through the real `cachectl` binary: `cachectl serve` in a temp data dir, `cachectl cluster create`,
// redis-cli reads and writes on the members, kill -9 of the framework and a restart that re-adopts the running
// members without launching duplicates (processes counted from /proc), the not-enough-resources and
// framework-not-running error paths with their exit codes, and a graceful stop that takes the members down.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized)
struct CachectlFrameworkTests {
    static var cachectl: String {
        ProcessInfo.processInfo.environment["CACHECTL_BIN"] ?? PackagePaths.root.appendingPathComponent(".build/debug/cachectl").path
    }

    /// A `cachectl serve` process (posix_spawn + waitpid: Foundation.Process did not reap a SIGKILLed child here).
    final class Serve {
        private(set) var pid: pid_t = 0
        let dataDirectory: String

        init(dataDirectory: String, firstPort: Int) throws {
            self.dataDirectory = dataDirectory
            try? FileManager.default.removeItem(atPath: dataDirectory + "/framework.json")
            let arguments = [
                CachectlFrameworkTests.cachectl, "serve", "--data-dir", dataDirectory, "--port", "0", "--token", "e2e-token",
                "--agents", "2", "--agent-cpus", "4", "--agent-mem-mb", "1000", "--first-port", String(firstPort),
                "--ports-per-agent", "100", "--bin-dir", PackagePaths.root.appendingPathComponent(".build/debug").path,
            ]
            let log = dataDirectory + "/serve.log"
            pid = try ServerProcess.spawn(arguments, logPath: log)
            let deadline = Date().addingTimeInterval(30)
            while !FileManager.default.fileExists(atPath: dataDirectory + "/framework.json") {
                var exitStatus: Int32 = 0
                guard waitpid(pid, &exitStatus, WNOHANG) == 0, Date() < deadline else {
                    if Date() >= deadline { stop(SIGKILL) }  // still starting: do not leave it running
                    pid = 0
                    throw HarnessError(description: "cachectl serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
                }
                usleep(20_000)
            }
        }

        func kill9() { stop(SIGKILL) }

        /// SIGTERM (graceful: the members are stopped) and wait up to 30 s.
        func terminate() { stop(SIGTERM) }

        private func stop(_ signal: Int32) {
            guard pid > 0 else { return }
            kill(pid, signal)
            var status: Int32 = 0
            for _ in 0..<3000 {
                if waitpid(pid, &status, WNOHANG) != 0 { break }
                usleep(10_000)
            }
            if kill(pid, 0) == 0 {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
            }
            pid = 0
        }
    }

    func ctl(_ arguments: [String], dataDirectory: String) throws -> ProgramResult {
        try runProgram(Self.cachectl, arguments + ["--data-dir", dataDirectory], timeout: 90)
    }

    func json(_ result: ProgramResult) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(result.output.utf8))
    }

    /// Pids of cache-node processes listening on a port in `ports` (from /proc/*/cmdline).
    func cacheNodeProcesses(ports: ClosedRange<Int>) -> Set<Int32> {
        var pids: Set<Int32> = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry),
                let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else { continue }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard arguments.first?.hasSuffix("cache-node") == true, let flag = arguments.firstIndex(of: "--port"),
                flag + 1 < arguments.count, let port = Int(arguments[flag + 1]), ports.contains(port)
            else { continue }
            let stat = (try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8)) ?? ""
            if let close = stat.lastIndex(of: ")"), stat[stat.index(after: close)...].split(separator: " ").first == "Z" { continue }
            pids.insert(pid)
        }
        return pids
    }

    func taskPids(_ dataDirectory: String) throws -> Set<Int32> {
        let tasks = try json(try ctl(["tasks", "--json"], dataDirectory: dataDirectory)) as? [[String: Any]] ?? []
        return Set(tasks.compactMap { ($0["pid"] as? NSNumber)?.int32Value })
    }

    @Test func serveCreateReadWriteCrashRestartAdoptsWithoutDuplicates() async throws {
        let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("cachectl-e2e-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let firstPort = Int.random(in: 110..<140) * 100
        let ports = firstPort...(firstPort + 199)

        var serve = try Serve(dataDirectory: dataDirectory, firstPort: firstPort)
        defer { serve.terminate() }

        // Create: 3 shards × 1 replica; waits until every member answers PING.
        let created = try ctl(["cluster", "create", "e2e", "--shards", "3", "--replicas", "1", "--memory-mb", "32", "--json"], dataDirectory: dataDirectory)
        #expect(created.status == 0, "\(created.output)")
        let status = try #require(try json(created) as? [String: Any])
        #expect(status["ready"] as? Bool == true)
        let members = try #require(status["members"] as? [[String: Any]])
        #expect(members.count == 6)
        let endpoints = members.compactMap { $0["endpoint"] as? String }
        #expect(endpoints.count == 6)

        // redis-cli -c writes and reads through every member (members run in cluster mode and redirect).
        for (index, endpoint) in endpoints.enumerated() {
            let port = Int(endpoint.split(separator: ":").last!)!
            #expect(try redisCLI(port, ["SET", "key\(index)", "value\(index)"], extra: ["-c"]) == "OK")
            #expect(try redisCLI(port, ["GET", "key\(index)"], extra: ["-c"]) == "value\(index)")
        }

        // The table form names every member.
        let table = try ctl(["cluster", "status", "e2e"], dataDirectory: dataDirectory)
        #expect(table.status == 0)
        #expect(table.output.contains("6/6 running (ready)"))

        let pidsBefore = try taskPids(dataDirectory)
        #expect(pidsBefore.count == 6)
        #expect(cacheNodeProcesses(ports: ports) == pidsBefore)

        // kill -9 the framework: the members keep serving.
        serve.kill9()
        #expect(cacheNodeProcesses(ports: ports) == pidsBefore)
        let down = try ctl(["cluster", "status", "e2e"], dataDirectory: dataDirectory)
        #expect(down.status == 3, "framework not running: \(down.output)")
        #expect(down.output.contains("not running"))

        // Restart: it reconciles, re-adopts the six members and launches nothing new.
        serve = try Serve(dataDirectory: dataDirectory, firstPort: firstPort)
        var ready = false
        for _ in 0..<300 {
            let again = try ctl(["cluster", "status", "e2e", "--json"], dataDirectory: dataDirectory)
            if again.status == 0, (try? json(again) as? [String: Any])?["ready"] as? Bool == true {
                ready = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(ready, "the restarted framework reports the cluster ready")
        #expect(try taskPids(dataDirectory) == pidsBefore, "the same processes, adopted")
        #expect(cacheNodeProcesses(ports: ports) == pidsBefore, "no duplicate member was launched")
        let port = Int(endpoints[0].split(separator: ":").last!)!
        #expect(try redisCLI(port, ["GET", "key0"], extra: ["-c"]) == "value0", "the adopted member kept its data")

        // Not enough resources: exit 4 and say what is missing.
        let huge = try ctl(["cluster", "create", "huge", "--shards", "10", "--memory-mb", "500"], dataDirectory: dataDirectory)
        #expect(huge.status == 4, "\(huge.output)")
        #expect(huge.output.contains("not enough resources for cluster 'huge'"))
        #expect(huge.output.contains("mem MB: needs 6250"))

        // Unknown cluster: exit 5. Wrong token: exit 8.
        #expect(try ctl(["cluster", "status", "nope"], dataDirectory: dataDirectory).status == 5)
        let unauthorized = try runProgram(Self.cachectl, ["tasks", "--api", try apiURL(dataDirectory), "--token", "wrong"])
        #expect(unauthorized.status == 8, "\(unauthorized.output)")

        // Graceful stop takes the members down.
        serve.terminate()
        #expect(cacheNodeProcesses(ports: ports).isEmpty, "no member outlives a graceful stop")
    }

    func apiURL(_ dataDirectory: String) throws -> String {
        let data = try #require(FileManager.default.contents(atPath: dataDirectory + "/framework.json"))
        return try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["url"] as? String)
    }
}
