// The replica link's handshake and reconnect logic as a pure value: events in, actions out.
@testable import CacheNode
import Testing

struct ReplicaLinkStateMachineTests {
    let primaryID = String(repeating: "f", count: 40)

    @Test func handshakeThenFullResync() {
        var machine = ReplicaLinkStateMachine(listeningPort: 7001)
        #expect(machine.start() == .connect)
        #expect(machine.connected() == .send(["PING"]))
        #expect(machine.received(.simpleString("PONG")) == .send(["REPLCONF", "listening-port", "7001"]))
        #expect(machine.received(.simpleString("OK")) == .send(["REPLCONF", "capa", "eof", "capa", "psync2"]))
        #expect(machine.received(.simpleString("OK")) == .send(["PSYNC", "?", "-1"]))
        #expect(machine.received(.simpleString("FULLRESYNC \(primaryID) 1234")) == .receiveSnapshot(replid: primaryID, offset: 1234))
        #expect(machine.isSyncing)
        #expect(machine.snapshotLoaded(replid: primaryID, offset: 1234) == .none)
        #expect(machine.isUp)
        machine.processed(10)
        #expect(machine.offset == 1244)
    }

    @Test func reconnectAsksForPartialResyncFromTheNextByte() {
        var machine = ReplicaLinkStateMachine(listeningPort: 1, cachedReplID: primaryID, offset: 99)
        _ = machine.start()
        _ = machine.connected()
        _ = machine.received(.simpleString("PONG"))
        _ = machine.received(.simpleString("OK"))
        #expect(machine.received(.simpleString("OK")) == .send(["PSYNC", primaryID, "100"]))
        #expect(machine.received(.simpleString("CONTINUE")) == .continueStream(newReplID: nil))
        #expect(machine.isUp)
    }

    @Test func continueWithANewIdIsAdopted() {
        let promoted = String(repeating: "e", count: 40)
        var machine = ReplicaLinkStateMachine(listeningPort: 1, cachedReplID: primaryID, offset: 5)
        _ = machine.start()
        _ = machine.connected()
        _ = machine.received(.simpleString("PONG"))
        _ = machine.received(.simpleString("OK"))
        _ = machine.received(.simpleString("OK"))
        #expect(machine.received(.simpleString("CONTINUE \(promoted)")) == .continueStream(newReplID: promoted))
        #expect(machine.cachedReplID == promoted)
    }

    @Test func refusalsDisconnectAndBackOffExponentially() {
        var machine = ReplicaLinkStateMachine(listeningPort: 1, minimumDelay: 100, maximumDelay: 1000)
        _ = machine.start()
        _ = machine.connected()
        #expect(machine.received(.error("NOAUTH Authentication required.")) == .disconnect(reason: "primary refused PING: NOAUTH Authentication required."))
        #expect(machine.linkLost(reason: "refused") == .scheduleReconnect(milliseconds: 100))
        #expect(machine.state == .waitingToReconnect)
        #expect(machine.reconnectDue() == .connect)
        #expect(machine.linkLost(reason: "refused") == .scheduleReconnect(milliseconds: 200))
        _ = machine.reconnectDue()
        #expect(machine.linkLost(reason: "x") == .scheduleReconnect(milliseconds: 400))
        _ = machine.reconnectDue()
        #expect(machine.linkLost(reason: "x") == .scheduleReconnect(milliseconds: 800))
        _ = machine.reconnectDue()
        #expect(machine.linkLost(reason: "x") == .scheduleReconnect(milliseconds: 1000))
        #expect(machine.lastError == "x")
    }

    @Test func securityRefusalAtCapaEndsTheAttempt() {
        var machine = ReplicaLinkStateMachine(listeningPort: 1)
        _ = machine.start()
        _ = machine.connected()
        _ = machine.received(.simpleString("PONG"))
        _ = machine.received(.error("ERR secure replication required: …"))
        guard case .disconnect(let reason) = machine.received(.error("ERR secure replication required: …")) else {
            Issue.record("expected a disconnect")
            return
        }
        #expect(reason.contains("secure replication required"))
    }

    @Test func aSuccessfulSyncResetsTheBackoffAndStopKeepsTheOffset() {
        var machine = ReplicaLinkStateMachine(listeningPort: 1, minimumDelay: 100)
        _ = machine.start()
        _ = machine.linkLost(reason: "down")
        _ = machine.reconnectDue()
        _ = machine.linkLost(reason: "down")
        #expect(machine.failures == 2)
        _ = machine.reconnectDue()
        _ = machine.connected()
        _ = machine.received(.simpleString("PONG"))
        _ = machine.received(.simpleString("OK"))
        _ = machine.received(.simpleString("OK"))
        _ = machine.received(.simpleString("FULLRESYNC \(primaryID) 7"))
        _ = machine.snapshotLoaded(replid: primaryID, offset: 7)
        #expect(machine.failures == 0)
        #expect(machine.linkLost(reason: "gone") == .scheduleReconnect(milliseconds: 100))
        machine.stop()
        #expect(machine.state == .idle)
        #expect(machine.offset == 7)
        #expect(machine.linkLost(reason: "late") == .none)
        #expect(machine.reconnectDue() == .none)
    }

    @Test func malformedRepliesDisconnect() {
        var machine = ReplicaLinkStateMachine(listeningPort: 1)
        _ = machine.start()
        _ = machine.connected()
        _ = machine.received(.simpleString("PONG"))
        _ = machine.received(.simpleString("OK"))
        _ = machine.received(.simpleString("OK"))
        guard case .disconnect = machine.received(.simpleString("FULLRESYNC nonsense")) else {
            Issue.record("expected a disconnect")
            return
        }
    }
}
