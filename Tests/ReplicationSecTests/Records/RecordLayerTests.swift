// RecordLayerTests: round trips, rekeying, limits, and the adversarial record cases (bit flips, truncation,
// reordering, replay, reflection, splicing across sessions and epochs).
import Crypto
import NIOCore
import Testing
@testable import ReplicationSec

struct RecordLayerTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    static let secret = SymmetricKey(data: [UInt8](repeating: 7, count: 32))
    static let otherSecret = SymmetricKey(data: [UInt8](repeating: 8, count: 32))

    static func pair(
        policy: RekeyPolicy = RekeyPolicy(), ordering: TransportOrdering = .strictInOrder, secret: SymmetricKey = secret
    ) -> (RecordSealer, RecordOpener) {
        (RecordSealer(trafficSecret: secret, policy: policy, now: start),
         RecordOpener(trafficSecret: secret, policy: policy, ordering: ordering, now: start))
    }

    @Test func roundTripsDataAndClose() throws {
        var (sealer, opener) = Self.pair()
        for message in ["", "a", String(repeating: "x", count: 5000)] {
            let frame = try sealer.seal(Array(message.utf8), now: Self.start)
            #expect(frame.count == RecordFormat.minimumRecordLength + message.utf8.count)
            #expect(try opener.open(frame, now: Self.start) == .data(Array(message.utf8)))
        }
        #expect(try opener.open(try sealer.sealClose(now: Self.start), now: Self.start) == .close)
        #expect(throws: SecureChannelError.sessionClosed) { try sealer.seal([1], now: Self.start) }
    }

    @Test func everySingleBitFlipIsRejected() throws {
        var (sealer, _) = Self.pair()
        let frame = try sealer.seal(Array("replicate SET k v".utf8), now: Self.start)
        for bit in 0..<(frame.count * 8) {
            var (_, opener) = Self.pair()
            var tampered = frame
            tampered[bit / 8] ^= 1 << (bit % 8)
            #expect(throws: SecureChannelError.self) { try opener.open(tampered, now: Self.start) }
            // The untouched opener still accepts the genuine frame: a rejected frame changes nothing.
            #expect(try opener.open(frame, now: Self.start) == .data(Array("replicate SET k v".utf8)))
        }
    }

    @Test func bitFlipsInCiphertextAndTagAreBadTag() throws {
        var (sealer, _) = Self.pair()
        let frame = try sealer.seal([1, 2, 3, 4], now: Self.start)
        for index in RecordFormat.recordHeaderLength..<frame.count {
            var (_, opener) = Self.pair()
            var tampered = frame
            tampered[index] ^= 0x80
            #expect(throws: SecureChannelError.badRecordTag) { try opener.open(tampered, now: Self.start) }
        }
    }

    @Test func truncatedAndOverlongFramesAreRejected() throws {
        var (sealer, _) = Self.pair()
        let frame = try sealer.seal([1, 2, 3, 4], now: Self.start)
        for length in 0..<frame.count {
            var (_, opener) = Self.pair()
            #expect(throws: SecureChannelError.self) { try opener.open(Array(frame.prefix(length)), now: Self.start) }
        }
        var (_, opener) = Self.pair()
        #expect(throws: SecureChannelError.malformedFrame) { try opener.open(frame + [0], now: Self.start) }
    }

    @Test func reorderedFramesAreRejectedOnStreams() throws {
        var (sealer, opener) = Self.pair()
        let first = try sealer.seal([1], now: Self.start)
        let second = try sealer.seal([2], now: Self.start)
        #expect(throws: SecureChannelError.recordOutOfOrder) { try opener.open(second, now: Self.start) }
        #expect(try opener.open(first, now: Self.start) == .data([1]))
        #expect(try opener.open(second, now: Self.start) == .data([2]))
    }

    @Test func reorderedFramesAreAcceptedOnceWithAReplayWindow() throws {
        var (sealer, opener) = Self.pair(ordering: .replayWindow)
        let frames = try (0..<5).map { try sealer.seal([UInt8($0)], now: Self.start) }
        for index in [3, 0, 4, 1, 2] { #expect(try opener.open(frames[index], now: Self.start) == .data([UInt8(index)])) }
        for frame in frames { #expect(throws: SecureChannelError.replayedRecord) { try opener.open(frame, now: Self.start) } }
    }

    @Test func replayedFramesAreRejected() throws {
        var (sealer, opener) = Self.pair()
        let frame = try sealer.seal([9], now: Self.start)
        _ = try opener.open(frame, now: Self.start)
        #expect(throws: SecureChannelError.replayedRecord) { try opener.open(frame, now: Self.start) }
    }

    @Test func forgedFrameDoesNotAdvanceTheReplayWindow() throws {
        var (sealer, opener) = Self.pair(ordering: .replayWindow)
        let genuine = try sealer.seal([1], now: Self.start)
        var forged = genuine
        forged[9...16] = [0, 0, 0, 0, 0, 1, 0, 0][...]  // counter 65536, tag now wrong
        #expect(throws: SecureChannelError.badRecordTag) { try opener.open(forged, now: Self.start) }
        #expect(try opener.open(genuine, now: Self.start) == .data([1]))
    }

    @Test func reflectedFramesAreRejected() throws {
        // Each direction has its own traffic secret; a frame sent back to its sender fails the tag check.
        let (keysA, keysB) = try Fixtures.handshake(
            Fixtures.configuration(Fixtures.shardA, expecting: .node("shard-b", role: .cacheNode)),
            Fixtures.configuration(Fixtures.shardB, expecting: .node("shard-a", role: .cacheNode)))
        var sealerA = RecordSealer(trafficSecret: keysA.sendSecret, policy: RekeyPolicy(), now: Self.start)
        var openerA = RecordOpener(trafficSecret: keysA.receiveSecret, policy: RekeyPolicy(), ordering: .strictInOrder, now: Self.start)
        var openerB = RecordOpener(trafficSecret: keysB.receiveSecret, policy: RekeyPolicy(), ordering: .strictInOrder, now: Self.start)
        let frame = try sealerA.seal([1, 2, 3], now: Self.start)
        #expect(throws: SecureChannelError.badRecordTag) { try openerA.open(frame, now: Self.start) }
        #expect(try openerB.open(frame, now: Self.start) == .data([1, 2, 3]))
    }

    @Test func framesSplicedFromAnotherSessionAreRejected() throws {
        var (_, opener) = Self.pair()
        var (otherSealer, _) = Self.pair(secret: Self.otherSecret)
        let foreign = try otherSealer.seal([1], now: Self.start)
        #expect(throws: SecureChannelError.badRecordTag) { try opener.open(foreign, now: Self.start) }
    }

    @Test func framesSplicedIntoAnotherEpochAreRejected() throws {
        let policy = RekeyPolicy(rekeyAfterMessages: 2, rejectAfterMessages: 4)
        var (sealer, opener) = Self.pair(policy: policy)
        let frames = try (0..<3).map { try sealer.seal([UInt8($0)], now: Self.start) }  // epochs 0, 0, 1
        #expect(sealer.epoch == 1)
        _ = try opener.open(frames[0], now: Self.start)
        _ = try opener.open(frames[1], now: Self.start)
        // Relabel the epoch-1 frame as epoch 0: the epoch-0 key does not verify it.
        var relabelled = frames[2]
        relabelled[5...8] = [0, 0, 0, 0][...]
        #expect(throws: SecureChannelError.badRecordTag) { try opener.open(relabelled, now: Self.start) }
        #expect(try opener.open(frames[2], now: Self.start) == .data([2]))
        #expect(opener.epoch == 1)
    }

    @Test func staleAndUnknownEpochsAreRejected() throws {
        let policy = RekeyPolicy(rekeyAfterMessages: 1, rejectAfterMessages: 2)
        var (sealer, opener) = Self.pair(policy: policy, ordering: .replayWindow)
        let frames = try (0..<4).map { try sealer.seal([UInt8($0)], now: Self.start) }  // epochs 0, 1, 2, 3
        _ = try opener.open(frames[0], now: Self.start)
        #expect(throws: SecureChannelError.unknownEpoch) { try opener.open(frames[2], now: Self.start) }
        _ = try opener.open(frames[1], now: Self.start)
        _ = try opener.open(frames[2], now: Self.start)
        var (sealer2, _) = Self.pair(policy: policy, ordering: .replayWindow)
        let epoch0 = try sealer2.seal([0], now: Self.start)
        #expect(throws: SecureChannelError.staleEpoch) { try opener.open(epoch0, now: Self.start) }
    }

    @Test func senderRekeysAfterMessageCountAndReceiverFollows() throws {
        let policy = RekeyPolicy(rekeyAfterMessages: 3, rejectAfterMessages: 5)
        var (sealer, opener) = Self.pair(policy: policy)
        var epochs = [UInt32]()
        for index in 0..<10 {
            let frame = try sealer.seal([UInt8(index)], now: Self.start)
            epochs.append(frame.readBigEndian(UInt32.self, at: 5))
            #expect(try opener.open(frame, now: Self.start) == .data([UInt8(index)]))
        }
        #expect(epochs == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3])
        #expect(opener.epoch == 3)
    }

    @Test func senderRekeysAfterTimeWithInjectedClock() throws {
        let policy = RekeyPolicy(rekeyAfterTime: .seconds(10), rejectAfterTime: .seconds(15))
        var (sealer, opener) = Self.pair(policy: policy)
        _ = try opener.open(try sealer.seal([1], now: Self.start), now: Self.start)
        let later = Self.start + .seconds(10)
        let frame = try sealer.seal([2], now: later)
        #expect(sealer.epoch == 1)
        #expect(try opener.open(frame, now: later) == .data([2]))
        #expect(opener.epoch == 1)
    }

    @Test func receiverRejectsKeyPastHardMessageLimit() throws {
        // A misbehaving sender that never rekeys (its rekey limit is huge) hits the receiver's reject limit.
        var sealer = RecordSealer(trafficSecret: Self.secret, policy: RekeyPolicy(rekeyAfterMessages: 100, rejectAfterMessages: 100), now: Self.start)
        var opener = RecordOpener(trafficSecret: Self.secret, policy: RekeyPolicy(rekeyAfterMessages: 2, rejectAfterMessages: 3), ordering: .strictInOrder, now: Self.start)
        for index in 0..<3 { _ = try opener.open(try sealer.seal([UInt8(index)], now: Self.start), now: Self.start) }
        let fourth = try sealer.seal([3], now: Self.start)
        #expect(throws: SecureChannelError.keyUsageLimitExceeded) { try opener.open(fourth, now: Self.start) }
    }

    @Test func receiverRejectsKeyPastHardTimeLimit() throws {
        var sealer = RecordSealer(trafficSecret: Self.secret, policy: RekeyPolicy(rekeyAfterTime: .hours(1), rejectAfterTime: .hours(1)), now: Self.start)
        var opener = RecordOpener(trafficSecret: Self.secret, policy: RekeyPolicy(rekeyAfterTime: .seconds(10), rejectAfterTime: .seconds(15)), ordering: .strictInOrder, now: Self.start)
        _ = try opener.open(try sealer.seal([1], now: Self.start), now: Self.start)
        let late = Self.start + .seconds(16)
        #expect(throws: SecureChannelError.keyExpired) { try opener.open(try sealer.seal([2], now: late), now: late) }
    }

    @Test func counterExhaustionStopsTheSender() throws {
        var sealer = RecordSealer(trafficSecret: Self.secret, policy: RekeyPolicy(), now: Self.start, firstCounter: UInt64.max - 1)
        _ = try sealer.seal([1], now: Self.start)
        #expect(throws: SecureChannelError.counterExhausted) { try sealer.seal([2], now: Self.start) }
    }

    @Test func truncationIsDetectableBecauseCloseIsAuthenticated() throws {
        var (sealer, opener) = Self.pair()
        var close = try sealer.sealClose(now: Self.start)
        close[0] = FrameType.data.rawValue  // a data record cannot be turned into a close or vice versa
        #expect(throws: SecureChannelError.badRecordTag) { try opener.open(close, now: Self.start) }
    }
}
