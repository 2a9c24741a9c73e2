// High availability on Mesos end to end: a real etcd, the `fake-mesos-master` program (two masters, two agents running
// real cache-node processes) and two `cachectl serve --etcd … --master …` instances. The leader subscribes and
// provisions a cluster; kill -9 of the leader → the standby leads, resubscribes with the framework id the first
// leader stored in etcd (the master sees one framework, subscribed twice, never removed), reconciles and adopts the
// running members: same processes, data intact, nothing launched again. The instances share no storage: the cluster
// authority is kept in etcd, and both leaders hold the same key.
//
// Runs in the last pass of scripts/test.sh with the other etcd suites.

import EtcdTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized)
struct EtcdHAMesosTests {
    /// The `fake-mesos-master` program, its log and its masters' URLs.
    final class FakeMaster {
        private(set) var pid: pid_t
        let log: String
        let urls: [String]

        init(root: String, firstPort: Int) throws {
            log = root + "/fake-mesos-master.log"
            let build = PackagePaths.root.appendingPathComponent(".build/debug").path
            pid = try EtcdCluster.spawn(
                [build + "/fake-mesos-master", "--ports", "0,0", "--agents", "2", "--first-port", String(firstPort),
                 "--work-dir", root + "/mesos-work", "--bin-dir", build, "--heartbeat-seconds", "1"],
                logPath: log)
            let deadline = Date().addingTimeInterval(30)
            var found: [String] = []
            while found.count < 2 {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                found = text.split(separator: "\n").filter { $0.hasPrefix("fake-mesos-master ") && $0.contains("http://") }.compactMap { line in
                    line.range(of: "http://").map { String(line[$0.lowerBound...].prefix { $0 != " " }) }
                }
                guard EtcdCluster.isRunning(pid), Date() < deadline else {
                    throw HarnessError(description: "fake-mesos-master did not start:\n\(text.suffix(3000))")
                }
                if found.count < 2 { usleep(50_000) }
            }
            urls = found
        }

        var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        /// The framework id of every SUBSCRIBE the master accepted, in order.
        var subscribedFrameworkIDs: [String] {
            output.split(separator: "\n").filter { $0.contains("framework subscribed") }.compactMap { line in
                line.range(of: "framework=").map { String(line[$0.upperBound...].prefix { $0 != " " && $0 != "]" }) }
            }
        }

        func terminate() {
            guard pid > 0 else { return }
            kill(pid, SIGTERM)
            var status: Int32 = 0
            for _ in 0..<1000 {
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

    @Test func aNewLeaderFailsOverTheSameMesosFrameworkAndAdoptsItsTasks() async throws {
        let ha = EtcdHATests()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cachectl-ha-mesos-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let firstPort = Int.random(in: 285..<300) * 100
        let ports = firstPort...(firstPort + 1999)
        let etcd = try EtcdCluster(size: 1)
        let master = try FakeMaster(root: root, firstPort: firstPort)
        var instances: [EtcdHATests.Instance] = []
        defer {
            for instance in instances { instance.terminate() }
            master.terminate()
            for pid in CachectlFrameworkTests().cacheNodeProcesses(ports: ports) { kill(pid, SIGKILL) }
            etcd.stop()
            try? FileManager.default.removeItem(atPath: root)
        }
        for id in ["m1", "m2"] {
            instances.append(try EtcdHATests.Instance(
                id: id, root: root, etcd: etcd.endpoints, firstPort: firstPort, sharedAuthority: false,
                extra: ["--master", master.urls[0]]))
        }

        let first = try #require(try await ha.waitForLeader(instances, seconds: 30), "an instance leads")
        let created = try ha.ctl(["cluster", "create", "hm1", "--shards", "1", "--replicas", "1", "--memory-mb", "32", "--json"], api: first.url)
        #expect(created.status == 0, "\(created.output)")
        let ready = try #require(try await ha.waitReady("hm1", api: first.url, seconds: 60), "hm1 runs on the fake Mesos agents")
        let endpoints = (ready["members"] as? [[String: Any]] ?? []).compactMap { $0["endpoint"] as? String }
        #expect(endpoints.count == 2)
        let primary = (ready["members"] as? [[String: Any]] ?? []).first { $0["role"] as? String == "primary" }
        let port = try #require((primary?["endpoint"] as? String).flatMap { Int($0.split(separator: ":").last ?? "") })
        #expect(try redisCLI(port, ["SET", "k", "v"]) == "OK")
        let pidsBefore = CachectlFrameworkTests().cacheNodeProcesses(ports: ports)
        #expect(pidsBefore.count == 2, "the members run as the fake agents' children")
        let frameworkID = try #require(master.subscribedFrameworkIDs.first, "the leader subscribed:\n\(master.output.suffix(2000))")
        #expect(master.subscribedFrameworkIDs == [frameworkID], "only the leader subscribes; the standby does not")

        first.kill9()
        let killedAt = Date()
        let second = try #require(try await ha.waitForLeader(instances, seconds: 90), "the standby took over")
        #expect(second !== first)
        let hm1 = try #require(try await ha.waitReady("hm1", api: second.url, seconds: 30), "hm1 is ready under the new leader")
        print("EtcdHAMesosTests: \(second.id) leads on Mesos, hm1 ready \(String(format: "%.1f", Date().timeIntervalSince(killedAt))) s after kill -9")
        #expect((hm1["runningMembers"] as? Int) == 2)

        // The same framework, resubscribed: the master kept its tasks and the new leader adopted them.
        let subscriptions = master.subscribedFrameworkIDs
        #expect(subscriptions.count == 2 && Set(subscriptions) == [frameworkID], "\(subscriptions)")
        #expect(!master.output.contains("framework removed"), "the framework was never torn down")
        #expect(CachectlFrameworkTests().cacheNodeProcesses(ports: ports) == pidsBefore, "no member was launched again")
        #expect(try redisCLI(port, ["GET", "k"]) == "v")

        // Both leaders hold the same authority, from etcd (no --authority-dir on shared storage).
        let firstKey = FileManager.default.contents(atPath: first.dataDirectory + "/authority/authority.key")
        #expect(firstKey != nil && firstKey == FileManager.default.contents(atPath: second.dataDirectory + "/authority/authority.key"))
        #expect(try redisCLI(port, ["GET", "k"]) == "v")

        // Deleting the cluster through the new leader kills the members on the agents.
        _ = try ha.ctl(["cluster", "delete", "hm1"], api: second.url)
        let deadline = Date().addingTimeInterval(30)
        while !CachectlFrameworkTests().cacheNodeProcesses(ports: ports).isEmpty && Date() < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(CachectlFrameworkTests().cacheNodeProcesses(ports: ports).isEmpty)
    }
}
