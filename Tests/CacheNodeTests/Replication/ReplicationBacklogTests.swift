// The replication backlog ring buffer, replication ids and the PSYNC decision.
@testable import CacheNode
import Testing

struct ReplicationBacklogTests {
    @Test func holdsTheTailAndItsOffsets() {
        var backlog = ReplicationBacklog(capacity: 8, masterOffset: 100)
        #expect(backlog.firstByteOffset == 101)
        #expect(backlog.bytes(from: 101) == [])
        backlog.append(Array("abcde".utf8))
        #expect(backlog.masterOffset == 105)
        #expect(backlog.historyLength == 5)
        #expect(backlog.bytes(from: 101) == Array("abcde".utf8))
        #expect(backlog.bytes(from: 104) == Array("de".utf8))
        #expect(backlog.bytes(from: 106) == [])
        #expect(backlog.bytes(from: 107) == nil)
        // Wrap around: only the last 8 bytes are kept.
        backlog.append(Array("fghij".utf8))
        #expect(backlog.masterOffset == 110)
        #expect(backlog.historyLength == 8)
        #expect(backlog.firstByteOffset == 103)
        #expect(backlog.bytes(from: 103) == Array("cdefghij".utf8))
        #expect(backlog.bytes(from: 102) == nil)
        #expect(backlog.canServe(from: 111))
        #expect(!backlog.canServe(from: 112))
    }

    @Test func appendLargerThanCapacityKeepsTheNewestBytes() {
        var backlog = ReplicationBacklog(capacity: 4)
        backlog.append(Array("0123456789".utf8))
        #expect(backlog.masterOffset == 10)
        #expect(backlog.bytes(from: 7) == Array("6789".utf8))
        #expect(backlog.bytes(from: 6) == nil)
    }

    @Test func resizeKeepsTheNewestHistory() {
        var backlog = ReplicationBacklog(capacity: 8)
        backlog.append(Array("abcdefgh".utf8))
        backlog.resize(to: 4)
        #expect(backlog.masterOffset == 8)
        #expect(backlog.bytes(from: 5) == Array("efgh".utf8))
        backlog.resize(to: 16)
        #expect(backlog.bytes(from: 5) == Array("efgh".utf8))
        backlog.append(Array("ij".utf8))
        #expect(backlog.bytes(from: 5) == Array("efghij".utf8))
    }

    @Test func psyncDecisionFollowsIdsAndBacklog() {
        var backlog = ReplicationBacklog(capacity: 100, masterOffset: 0)
        backlog.append([UInt8](repeating: 1, count: 50))
        let identity = ReplicationIdentity(replid: String(repeating: "a", count: 40))
        #expect(identity.decide(requestedID: "?", offset: -1, backlog: backlog) == .full(reason: "replica asked for a full resync"))
        #expect(identity.decide(requestedID: identity.replid, offset: 31, backlog: backlog) == .partial(from: 31))
        #expect(identity.decide(requestedID: identity.replid, offset: 51, backlog: backlog) == .partial(from: 51))
        if case .partial = identity.decide(requestedID: identity.replid, offset: 52, backlog: backlog) { Issue.record("offset beyond the stream") }
        if case .partial = identity.decide(requestedID: String(repeating: "b", count: 40), offset: 10, backlog: backlog) {
            Issue.record("unknown id must not continue")
        }
        if case .partial = identity.decide(requestedID: identity.replid, offset: 10, backlog: nil) { Issue.record("no backlog") }
    }

    @Test func promotionKeepsThePreviousIdUpToItsOffset() {
        var backlog = ReplicationBacklog(capacity: 100, masterOffset: 0)
        backlog.append([UInt8](repeating: 1, count: 40))
        let old = String(repeating: "a", count: 40)
        var identity = ReplicationIdentity(replid: old)
        identity.shift(to: String(repeating: "c", count: 40), at: 40)
        #expect(identity.replid2 == old)
        #expect(identity.secondReplOffset == 41)
        // A replica of the old primary at offset 40 asks for 41: continue from the promoted node.
        #expect(identity.decide(requestedID: old, offset: 41, backlog: backlog) == .partial(from: 41))
        #expect(identity.decide(requestedID: old, offset: 30, backlog: backlog) == .partial(from: 30))
        // Beyond the old history's end the data diverged: full.
        backlog.append([UInt8](repeating: 2, count: 5))
        if case .partial = identity.decide(requestedID: old, offset: 43, backlog: backlog) { Issue.record("past the old history") }
        #expect(identity.decide(requestedID: identity.replid, offset: 43, backlog: backlog) == .partial(from: 43))
    }
}
