// ReplayWindow: the RFC 6479 / WireGuard sliding bitmap of received record counters.
//
// The bitmap is a ring of 64-bit words; the window covers `size` counters below the highest one seen. A counter
// is acceptable when it is newer than the highest, or inside the window and not yet marked. Checking is pure;
// only `markReceived` moves the window, and the record layer calls it after the tag has verified, so forged
// frames cannot advance the window and make genuine ones look old.

/// A sliding replay window over 64-bit record counters.
public struct ReplayWindow: Sendable, Hashable {
    /// Number of 64-bit words in the ring (a power of two).
    public static let wordCount = 128
    /// Counters older than `highest - size` are rejected (8128, as in WireGuard).
    public static let size: UInt64 = UInt64(wordCount - 1) * 64

    private var bitmap = [UInt64](repeating: 0, count: ReplayWindow.wordCount)
    /// Highest accepted counter plus one (zero while nothing has been accepted).
    private var highestPlusOne: UInt64 = 0

    public init() {}

    /// Whether `counter` would be accepted: not older than the window and not already marked.
    public func isAcceptable(_ counter: UInt64) -> Bool {
        guard counter < UInt64.max else { return false }
        let shifted = counter + 1
        if shifted > highestPlusOne { return true }
        if highestPlusOne - shifted >= Self.size { return false }
        let word = Int((shifted >> 6) & UInt64(Self.wordCount - 1))
        return bitmap[word] & (1 << (shifted & 63)) == 0
    }

    /// Marks `counter` received and slides the window forward if it is the newest.
    /// - Returns: `false` if the counter was not acceptable (nothing changes then).
    @discardableResult
    public mutating func markReceived(_ counter: UInt64) -> Bool {
        guard isAcceptable(counter) else { return false }
        let shifted = counter + 1
        let wordIndex = shifted >> 6
        if shifted > highestPlusOne {
            let currentIndex = highestPlusOne >> 6
            let wordsToClear = min(wordIndex - currentIndex, UInt64(Self.wordCount))
            if wordsToClear > 0 {
                for step in 1...wordsToClear {
                    bitmap[Int((currentIndex + step) & UInt64(Self.wordCount - 1))] = 0
                }
            }
            highestPlusOne = shifted
        }
        bitmap[Int(wordIndex & UInt64(Self.wordCount - 1))] |= 1 << (shifted & 63)
        return true
    }
}
