// Namespace isolation of the local backend: the address pool and cgroup detection as values, then (as root, with
// iproute2) a secure cache-node cluster provisioned with one network namespace, IP and cgroup per member, serving a
// cluster client across namespaces, healing a killed member and leaving no namespace, veth or cgroup behind.

import CacheFramework
import CacheFrameworkRuntime
import Foundation
import Testing

@Suite struct TaskAddressPoolTests {
    @Test func handsOutDistinctAddressesSkippingClaimedOnesAndReusesReleasedOnes() {
        var pool = TaskAddressPool(network: NamespaceNetwork(bridge: "cft0", prefix: (10, 77)))
        pool.claim("10.77.1.2")
        let first = pool.allocate()
        let second = pool.allocate()
        #expect(first == "10.77.1.1")
        #expect(second == "10.77.1.3", "the claimed address is skipped")
        var seen: Set<String> = [first!, second!, "10.77.1.2"]
        for _ in 0..<600 {
            let address = pool.allocate()!
            #expect(seen.insert(address).inserted)
            let octets = address.split(separator: ".").compactMap { Int($0) }
            #expect(octets.count == 4 && (1...254).contains(octets[2]) && (1...254).contains(octets[3]))
        }
        pool.release("10.77.1.3")
        // The pool goes round before it reuses: exhaust it and the released address comes back.
        var reused = false
        while let address = pool.allocate() { if address == "10.77.1.3" { reused = true } }
        #expect(reused)
        #expect(pool.allocate() == nil, "an exhausted pool says so")
    }

    @Test func detectsTheCgroupHierarchyOnOffer() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cg-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        #expect(CgroupMode.detect(root: root) == .none)
        try FileManager.default.createDirectory(atPath: root + "/memory", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/cpu", withIntermediateDirectories: true)
        #expect(CgroupMode.detect(root: root) == .v1)
        try "cpuset cpu io memory pids\n".write(toFile: root + "/cgroup.controllers", atomically: true, encoding: .utf8)
        #expect(CgroupMode.detect(root: root) == .v2)
    }
}

/// Whether this machine can run namespace isolation (root and iproute2).
private let namespacesAvailable = geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")

@Suite(.serialized, .enabled(if: namespacesAvailable, "needs root and iproute2"))
struct NamespaceIsolatedClusterTests {
    let control = RESPNodeControl(timeout: .seconds(1))

    /// The inode of a network namespace file (`/proc/PID/ns/net` or `/run/netns/NAME`).
    func namespaceInode(_ path: String) -> UInt64? {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_ino) : nil
    }

    func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test func membersGetTheirOwnNamespaceAddressAndLimitsAndServeAcrossNamespaces() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let network = NamespaceNetwork(bridge: "cft\(Int.random(in: 1000..<9999))", prefix: (10, UInt8.random(in: 100..<200)))
        let isolation = try NamespaceIsolation(network: network)
        defer { isolation.removeBridge() }
        let framework = try FrameworkFixture(
            directory: directory, agents: 2, firstPort: FrameworkFixture.portBase(), isolation: .networkNamespace,
            network: network)
        let spec = ClusterSpec(name: "n1", shardCount: 3, replicasPerShard: 1, memoryMBPerNode: 32, cpusPerNode: 0.2)
        try await framework.driver.createCluster(spec)
        try await FrameworkFixture.waitUntil("the 3×2 cluster is ready", seconds: 60) {
            framework.driver.clusterStatus("n1")?.ready == true
        }
        let records = framework.driver.taskRecords()
        #expect(records.count == 6)
        let addresses = records.map(\.hostname)
        #expect(Set(addresses).count == 6, "every member has its own address: \(addresses)")
        #expect(addresses.allSatisfy { $0.hasPrefix("10.\(network.prefix.1).") }, "addresses come from the task subnet")

        let hostNamespace = namespaceInode("/proc/self/ns/net")
        let views = await framework.backend.taskViews()
        for record in records {
            let view = try #require(views.first { $0.taskID == record.taskID })
            let pid = try #require(view.pid)
            #expect(view.address == record.hostname)
            // The member runs inside the namespace named after its task, not in the host's.
            let memberNamespace = namespaceInode("/proc/\(pid)/ns/net")
            #expect(memberNamespace != nil && memberNamespace != hostNamespace)
            #expect(memberNamespace == namespaceInode("/run/netns/\(isolation.namespace(of: record.taskID))"))
            // …under the memory limit of its resources, in its cgroup.
            let cgroups = isolation.cgroupDirectories(for: isolation.namespace(of: record.taskID))
            if isolation.cgroupMode != .none {
                let limitFile = isolation.cgroupMode == .v2 ? "/memory.max" : "/memory.limit_in_bytes"
                let limit = try String(contentsOfFile: cgroups[0] + limitFile, encoding: .utf8)
                #expect(UInt64(limit.trimmingCharacters(in: .whitespacesAndNewlines)) == UInt64(spec.taskMemoryMB * 1_048_576))
                let members = try String(contentsOfFile: cgroups[0] + "/cgroup.procs", encoding: .utf8)
                #expect(members.split(separator: "\n").contains(Substring("\(pid)")))
            }
            #expect(await control.ping(record.endpoint), "\(record.endpoint) answers at its own address")
        }
        // Replication crosses namespaces (secure by default): every replica's link to its primary is up.
        for replica in records where replica.role == .replica {
            try await FrameworkFixture.waitUntil("\(replica.taskID)'s link is up") {
                (try? await control.replicationInfo(replica.endpoint))?.linkUp == true
            }
        }
        // A cluster client from the host follows redirects between the members' addresses.
        let entry = try #require(records.first { $0.role == .primary }).endpoint
        let check = try run("/usr/bin/redis-cli", ["--cluster", "check", "\(entry.hostname):\(entry.port)"])
        #expect(check.status == 0 && check.output.contains("[OK] All 16384 slots covered"), "\(check.output)")
        for index in 0..<30 {
            let set = try run("/usr/bin/redis-cli", ["-c", "-h", entry.hostname, "-p", "\(entry.port)", "SET", "key:\(index)", "v\(index)"])
            #expect(set.output.trimmingCharacters(in: .whitespacesAndNewlines) == "OK")
        }
        let get = try run("/usr/bin/redis-cli", ["-c", "-h", entry.hostname, "-p", "\(entry.port)", "GET", "key:29"])
        #expect(get.output.trimmingCharacters(in: .whitespacesAndNewlines) == "v29")

        // kill -9 a replica: it is replaced, and its namespace and cgroups are removed.
        let victim = try #require(records.first { $0.role == .replica })
        let victimPID = try #require(views.first { $0.taskID == victim.taskID }?.pid)
        kill(victimPID, SIGKILL)
        try await FrameworkFixture.waitUntil("the killed replica is replaced", seconds: 60) {
            guard let status = framework.driver.clusterStatus("n1"), status.ready else { return false }
            return !framework.driver.taskRecords().contains { $0.taskID == victim.taskID }
        }
        try await FrameworkFixture.waitUntil("the dead member's namespace is gone") {
            !isolation.existingNamespaces().contains(isolation.namespace(of: victim.taskID))
        }
        for directory in isolation.cgroupDirectories(for: isolation.namespace(of: victim.taskID)) {
            #expect(!FileManager.default.fileExists(atPath: directory))
        }

        // A graceful stop kills every member and leaves no namespace or veth behind.
        await framework.stop()
        #expect(isolation.existingNamespaces().isEmpty)
        let links = try run("/usr/sbin/ip", ["-o", "link", "show", "master", network.bridge])
        #expect(links.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "no veth left on the bridge: \(links.output)")
    }

    @Test func aRestartedFrameworkAdoptsNamespacedMembersAtTheirAddresses() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let network = NamespaceNetwork(bridge: "cft\(Int.random(in: 1000..<9999))", prefix: (10, UInt8.random(in: 100..<200)))
        let isolation = try NamespaceIsolation(network: network)
        defer { isolation.removeBridge() }
        let firstPort = FrameworkFixture.portBase()
        let first = try FrameworkFixture(
            directory: directory, agents: 2, firstPort: firstPort, keepTasksOnShutdown: true, isolation: .networkNamespace,
            network: network)
        let spec = ClusterSpec(name: "a1", shardCount: 2, replicasPerShard: 1, memoryMBPerNode: 32, cpusPerNode: 0.1)
        try await first.driver.createCluster(spec)
        try await FrameworkFixture.waitUntil("all 4 members run", seconds: 60) { first.driver.clusterStatus("a1")?.ready == true }
        let before = await first.backend.taskViews()
        await first.stop()
        #expect(isolation.existingNamespaces().count == 4, "namespaces stay with their running members")

        let second = try FrameworkFixture(
            directory: directory, agents: 2, firstPort: firstPort, isolation: .networkNamespace, network: network)
        try await FrameworkFixture.waitUntil("the restarted framework is ready", seconds: 60) {
            second.driver.phaseName == "ready" && second.driver.clusterStatus("a1")?.ready == true
        }
        let after = await second.backend.taskViews()
        #expect(after.allSatisfy { $0.adopted })
        #expect(
            Dictionary(uniqueKeysWithValues: after.map { ($0.taskID, $0.address) })
                == Dictionary(uniqueKeysWithValues: before.map { ($0.taskID, $0.address) }),
            "each adopted member's address is read back from its namespace")
        for record in second.driver.taskRecords() { #expect(await control.ping(record.endpoint)) }
        // A new member after the restart gets an address no adopted member holds.
        let victim = try #require(after.first { $0.taskID.value.contains(".m1") })
        kill(victim.pid!, SIGKILL)
        try await FrameworkFixture.waitUntil("the killed member is replaced", seconds: 60) {
            guard let status = second.driver.clusterStatus("a1"), status.ready else { return false }
            return !status.members.contains { $0.taskID == victim.taskID }
        }
        let addresses = second.driver.taskRecords().map(\.hostname)
        #expect(Set(addresses).count == 4, "\(addresses)")
        await second.stop()
        #expect(isolation.existingNamespaces().isEmpty)
    }
}
