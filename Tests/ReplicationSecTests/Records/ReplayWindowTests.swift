// ReplayWindowTests: RFC 6479 window behaviour — reordering inside the window, duplicates, old counters, jumps.
import Testing
@testable import ReplicationSec

struct ReplayWindowTests {
    @Test func acceptsEachCounterOnceInAnyOrderInsideTheWindow() {
        var window = ReplayWindow()
        for counter: UInt64 in [5, 3, 0, 4, 1, 2, 9] {
            let accepted = window.markReceived(counter)
            #expect(accepted)
        }
        for counter: UInt64 in [0, 1, 2, 3, 4, 5, 9] { #expect(!window.isAcceptable(counter)) }
        #expect(window.isAcceptable(6) && window.isAcceptable(7) && window.isAcceptable(8))
    }

    @Test func rejectsCountersOlderThanTheWindow() {
        var window = ReplayWindow()
        window.markReceived(10_000)
        #expect(!window.isAcceptable(10_000 - ReplayWindow.size))
        #expect(window.isAcceptable(10_000 - ReplayWindow.size + 1))
    }

    @Test func aLargeJumpClearsStaleBits() {
        var window = ReplayWindow()
        window.markReceived(1)
        window.markReceived(1 + 64 * UInt64(ReplayWindow.wordCount) * 3)
        // Counters that map to the same ring slot as 1 must be acceptable again once inside the new window.
        let reused = 1 + 64 * UInt64(ReplayWindow.wordCount) * 3 - 64
        #expect(window.isAcceptable(reused))
        #expect(!window.isAcceptable(1))
    }

    @Test func checkingDoesNotMoveTheWindow() {
        var window = ReplayWindow()
        window.markReceived(100)
        _ = window.isAcceptable(1_000_000)
        #expect(window.isAcceptable(99))
        #expect(!window.isAcceptable(UInt64.max))
    }

    @Test func matchesAReferenceSetOverAPseudoRandomStream() {
        var window = ReplayWindow()
        var seen = Set<UInt64>()
        var highest: UInt64 = 0
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<20_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let counter = (state >> 33) % 30_000
            let tooOld = !seen.isEmpty && counter + ReplayWindow.size <= highest
            let expected = !tooOld && !seen.contains(counter)
            let accepted = window.markReceived(counter)
            #expect(accepted == expected)
            if expected {
                seen.insert(counter)
                highest = max(highest, counter)
            }
        }
    }
}
