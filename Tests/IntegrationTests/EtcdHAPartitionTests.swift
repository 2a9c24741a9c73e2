// High availability under a real network partition: the leading `cachectl serve --etcd` instance runs in a network
// namespace of its own and reaches the 3-member etcd only through a veth pair; taking that link down cuts it off
// from etcd while etcd and the standby (on loopback) carry on. From the instances' own event logs (each line carries
// its time in ms): the cut-off leader steps down, because its lease could not be renewed, before the standby is
// elected; it never leads again while cut off; once the link is back it follows the new leader.
//
// Runs in the last pass of scripts/test.sh with the other HA tests. Needs root and iproute2 (CI runs as root).

import EtcdTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Whether this machine can create network namespaces (root and iproute2).
private let partitionsPossible = geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")

@Suite(.serialized, .enabled(if: partitionsPossible, "needs root and iproute2"))
struct EtcdHAPartitionTests {
    /// A network namespace joined to the host by a veth pair `<host end>` ↔ `eth0`, with a /30 between them.
    final class PartitionedNamespace {
        let name: String
        let hostEnd: String
        let hostAddress: String
        let namespaceAddress: String

        init() throws {
            let tag = String(UInt32.random(in: 0..<0xFFFF), radix: 16)
            name = "cfha-\(tag)"
            hostEnd = "cfha\(tag)h"
            let third = Int.random(in: 1...254)
            hostAddress = "10.253.\(third).1"
            namespaceAddress = "10.253.\(third).2"
            do {
                try Self.ip(["netns", "add", name])
                try Self.ip(["link", "add", hostEnd, "type", "veth", "peer", "name", "eth0", "netns", name])
                try Self.ip(["addr", "add", "\(hostAddress)/30", "dev", hostEnd])
                try Self.ip(["link", "set", hostEnd, "up"])
                try Self.ip(["-n", name, "addr", "add", "\(namespaceAddress)/30", "dev", "eth0"])
                try Self.ip(["-n", name, "link", "set", "eth0", "up"])
                try Self.ip(["-n", name, "link", "set", "lo", "up"])
            } catch {
                remove()
                throw error
            }
        }

        /// `ip netns exec NAME`: what runs a program inside.
        var launchPrefix: [String] { ["/usr/sbin/ip", "netns", "exec", name] }

        /// Takes the namespace's end of the link down (the partition) or up again.
        func setLink(up: Bool) throws { try Self.ip(["-n", name, "link", "set", "eth0", up ? "up" : "down"]) }

        /// Deletes the namespace (and with it the veth pair).
        func remove() {
            _ = try? Self.ip(["netns", "del", name])
            _ = try? Self.ip(["link", "del", hostEnd])
        }

        /// Runs `ip`. The deadline is generous: in CI's last pass the other suites' process start-ups load both
        /// cores, and one `ip netns add` there once outlasted 10 s.
        @discardableResult
        static func ip(_ arguments: [String]) throws -> String {
            let result = try runProgram("/usr/sbin/ip", arguments, timeout: 60)
            guard result.status == 0 else {
                throw HarnessError(description: "ip \(arguments.joined(separator: " ")) failed: \(result.output)")
            }
            return result.output
        }
    }

    /// One leadership event from an instance's log: `cachectl serve: <what> at <ms since 1970>`.
    struct LoggedEvent {
        var line: String
        var atMilliseconds: Int64
    }

    /// Whether a log line of `instance` starts with `prefix` (after `cachectl serve: `).
    static func said(_ instance: EtcdHATests.Instance, _ prefix: String) -> Bool {
        instance.output.contains("cachectl serve: " + prefix)
    }

    /// The log lines of `instance` that start with `prefix` and end with `at <ms>`.
    static func events(_ instance: EtcdHATests.Instance, _ prefix: String) -> [LoggedEvent] {
        instance.output.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "cachectl serve: " + prefix) else { return nil }
            let text = String(line[range.lowerBound...])
            guard let at = text.range(of: " at ", options: .backwards), let ms = Int64(text[at.upperBound...]) else { return nil }
            return LoggedEvent(line: text, atMilliseconds: ms)
        }
    }

    static func waitFor(_ seconds: Double, _ condition: () -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return condition()
    }

    @Test func aLeaderPartitionedFromEtcdStepsDownBeforeTheStandbyLeads() async throws {
        let namespace = try PartitionedNamespace()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cachectl-hap-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var etcd: EtcdCluster?
        var instances: [EtcdHATests.Instance] = []
        defer {
            for instance in instances { instance.terminate() }
            etcd?.stop()
            namespace.remove()
            try? FileManager.default.removeItem(atPath: root)
        }
        let cluster = try EtcdCluster(size: 3, extraClientHost: namespace.hostAddress)
        etcd = cluster
        let firstPort = Int.random(in: 215..<245) * 100

        // The instance in the namespace reaches etcd only through the veth pair; it starts first and leads.
        let cutOff = try EtcdHATests.Instance(
            id: "p1", root: root, etcd: cluster.extraEndpoints, firstPort: firstPort, launchPrefix: namespace.launchPrefix)
        instances.append(cutOff)
        #expect(try await Self.waitFor(30) { !Self.events(cutOff, "elected leader p1").isEmpty }, "\(cutOff.output.suffix(2000))")
        let standby = try EtcdHATests.Instance(id: "p2", root: root, etcd: cluster.endpoints, firstPort: firstPort)
        instances.append(standby)
        #expect(
            try await Self.waitFor(30) { Self.said(standby, "standby p2, leader is p1") },
            "\(standby.output.suffix(2000))")

        // The partition: the namespace's link goes down; etcd (3 members, quorum intact) and the standby carry on.
        let partitionedAt = Int64(Date().timeIntervalSince1970 * 1000)
        try namespace.setLink(up: false)
        #expect(
            try await Self.waitFor(30) { !Self.events(standby, "elected leader p2").isEmpty }, "the standby takes over:\n\(standby.output.suffix(2000))")

        let steppedDown = Self.events(cutOff, "stepped down p1")
        let elected = try #require(Self.events(standby, "elected leader p2").first)
        #expect(steppedDown.count == 1, "\(cutOff.output.suffix(2000))")
        if let down = steppedDown.first {
            #expect(down.atMilliseconds > partitionedAt, "it stepped down because of the partition")
            #expect(down.atMilliseconds < elected.atMilliseconds, "p1 stopped acting (\(down.line)) before p2 was elected (\(elected.line))")
            #expect(down.line.contains("lease"), "the reason names the lease: \(down.line)")
            print(
                "EtcdHAPartitionTests: the cut-off leader stepped down \(down.atMilliseconds - partitionedAt) ms after the cut, "
                    + "the standby was elected \(elected.atMilliseconds - partitionedAt) ms after it (lease TTL 6 s)")
        }
        #expect(Self.events(cutOff, "elected leader p1").count == 1, "p1 never leads again while cut off")

        // The link is back: p1 finds p2 leading and stands by.
        try namespace.setLink(up: true)
        #expect(
            try await Self.waitFor(30) { Self.said(cutOff, "standby p1, leader is p2") }, "\(cutOff.output.suffix(2000))")
        #expect(Self.events(cutOff, "elected leader p1").count == 1)
        #expect(Self.events(standby, "stepped down p2").isEmpty, "p2 still leads")
    }
}
