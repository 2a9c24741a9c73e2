// The etcd JSON-gateway client against a real single-member etcd 3.4: KV round trips with binary-safe values,
// prefix ranges, transactions (both branches), leases (attached keys vanish on revoke, keepalive of a revoked lease
// is a typed error), a bounded watch, failover past a dead endpoint, and typed errors when nothing answers.

import CacheFrameworkRuntime
import EtcdTestSupport
import Foundation
import Testing

@Suite(.serialized)
struct EtcdClientTests {
    @Test func keyValuesRangesAndDeletes() async throws {
        let etcd = try EtcdCluster()
        defer { etcd.stop() }
        let client = try EtcdClient(endpoints: etcd.endpoints)
        let binary: [UInt8] = [0, 1, 2, 0xFF, 0x0A, 0x22]
        let revision = try await client.put("/t/a", value: binary)
        try await client.put("/t/b", value: Array("two".utf8))
        try await client.put("/u/c", value: Array("other".utf8))
        let one = try await client.range("/t/a")
        #expect(one.kvs.count == 1)
        #expect(one.kvs.first?.value == binary)
        #expect(one.kvs.first?.createRevision == revision)
        #expect(one.kvs.first?.version == 1)
        let prefixed = try await client.range(prefix: "/t/")
        #expect(prefixed.kvs.map(\.key) == ["/t/a", "/t/b"])
        #expect(try await client.range("/missing").kvs.isEmpty)
        #expect(try await client.delete("/t/", rangeEnd: EtcdClient.prefixEnd("/t/")) == 2)
        #expect(try await client.range(prefix: "/t/").kvs.isEmpty)
        #expect(try await client.range("/u/c").kvs.first?.stringValue == "other")
    }

    @Test func transactionsRunOneBranchAtomically() async throws {
        let etcd = try EtcdCluster()
        defer { etcd.stop() }
        let client = try EtcdClient(endpoints: etcd.endpoints)
        // Create-if-absent: the first succeeds, the second reads the holder instead.
        let first = try await client.txn(
            compare: [EtcdCompare(key: "/lock", .equal, .createRevision(0))],
            success: [.put(key: "/lock", value: Array("A".utf8)), .put(key: "/side", value: Array("1".utf8))],
            failure: [.range(key: "/lock")])
        #expect(first.succeeded)
        #expect(first.results == [.put, .put])
        let second = try await client.txn(
            compare: [EtcdCompare(key: "/lock", .equal, .createRevision(0))],
            success: [.put(key: "/lock", value: Array("B".utf8)), .deleteRange(key: "/side")],
            failure: [.range(key: "/lock")])
        #expect(!second.succeeded)
        guard case .range(let kvs)? = second.results.first else {
            Issue.record("the failure branch answers the range")
            return
        }
        #expect(kvs.first?.stringValue == "A")
        #expect(kvs.first?.createRevision == first.revision)
        #expect(try await client.range("/side").kvs.first?.stringValue == "1", "the success branch did not run")
        // A value compare and a delete in the success branch.
        let third = try await client.txn(
            compare: [EtcdCompare(key: "/lock", .equal, .value(Array("A".utf8)))], success: [.deleteRange(key: "/side")])
        #expect(third.succeeded)
        #expect(third.results == [.deleteRange(deleted: 1)])
    }

    @Test func leasesKeepKeysAliveUntilRevoked() async throws {
        let etcd = try EtcdCluster()
        defer { etcd.stop() }
        let client = try EtcdClient(endpoints: etcd.endpoints)
        let lease = try await client.grantLease(ttl: 5)
        #expect(lease.id != 0)
        #expect(lease.ttl == 5)
        try await client.put("/leased", value: Array("x".utf8), lease: lease.id)
        #expect(try await client.range("/leased").kvs.first?.lease == lease.id)
        #expect(try await client.keepAlive(lease.id) == 5)
        try await client.revokeLease(lease.id)
        #expect(try await client.range("/leased").kvs.isEmpty, "revoking the lease deletes its keys")
        await #expect(throws: EtcdError.self) { _ = try await client.keepAlive(lease.id) }
        do {
            _ = try await client.keepAlive(lease.id)
        } catch {
            #expect(error.code == .leaseExpired)
        }
        try await client.revokeLease(lease.id)  // already gone: not an error
        // A put on a lease that does not exist: etcd's NotFound, typed.
        do {
            try await client.put("/k", value: [1], lease: lease.id)
            Issue.record("a put on a revoked lease must fail")
        } catch {
            #expect(error.code == .server)
            #expect(error.grpcCode == 5)
            #expect(error.message.contains("lease not found"))
        }
    }

    @Test func watchReportsTheNextChangeOrNothingInTime() async throws {
        let etcd = try EtcdCluster()
        defer { etcd.stop() }
        let client = try EtcdClient(endpoints: etcd.endpoints)
        let start = try await client.range("/w").revision
        let quiet = try await client.watchOnce("/w", afterRevision: start, timeout: .milliseconds(300))
        #expect(quiet.isEmpty)
        async let events = client.watchOnce("/w", afterRevision: start, timeout: .seconds(10))
        try await Task.sleep(for: .milliseconds(200))
        try await client.put("/w", value: Array("v".utf8))
        let seen = try await events
        #expect(seen.map(\.kind) == [.put])
        #expect(seen.first?.kv.stringValue == "v")
        // A change before the call (after the revision given) is reported at once; deletes are reported as such.
        try await client.delete("/w")
        let later = try await client.watchOnce("/w", afterRevision: seen[0].kv.modRevision, timeout: .seconds(10))
        #expect(later.map(\.kind) == [.delete])
    }

    @Test func failsOverPastDeadEndpointsAndSaysWhenNoneAnswers() async throws {
        let etcd = try EtcdCluster()
        defer { etcd.stop() }
        let dead = "http://127.0.0.1:\(try EtcdCluster.freeLoopbackPort())"
        let client = try EtcdClient(endpoints: [dead] + etcd.endpoints)
        try await client.put("/f", value: Array("1".utf8))
        #expect(client.currentEndpoint == etcd.endpoints[0], "the client sticks to the endpoint that answered")
        #expect(try await client.range("/f").kvs.first?.stringValue == "1")

        var configuration = EtcdClient.Configuration()
        configuration.requestTimeout = .milliseconds(500)
        let nobody = try EtcdClient(endpoints: [dead], configuration: configuration)
        do {
            _ = try await nobody.range("/f")
            Issue.record("no endpoint answers: the request must fail")
        } catch {
            #expect(error.code == .unavailable)
            #expect(error.message.contains(dead))
        }
        #expect(throws: EtcdError.self) { _ = try EtcdClient(endpoints: []) }
        #expect(throws: EtcdError.self) { _ = try EtcdClient(endpoints: ["127.0.0.1:2379"]) }
    }
}
