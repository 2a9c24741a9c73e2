// RekeyPolicy: when a sender moves to the next key epoch, and when a receiver refuses an over-used key.
public import NIOCore

/// Key lifetime limits, per direction and per epoch. Times are measured on an injected monotonic clock
/// (`NIODeadline` values passed into the record layer), so tests move time without sleeping.
public struct RekeyPolicy: Sendable, Hashable {
    /// A sender moves to the next epoch after this many records under one key.
    public var rekeyAfterMessages: UInt64
    /// A sender moves to the next epoch when its key is this old.
    public var rekeyAfterTime: TimeAmount
    /// A receiver refuses records under one key after this many (the sender should have rekeyed).
    public var rejectAfterMessages: UInt64
    /// A receiver refuses records under a key it installed longer ago than this.
    public var rejectAfterTime: TimeAmount

    /// Creates a policy; the reject limits must be above the rekey limits.
    public init(
        rekeyAfterMessages: UInt64 = 1 << 30,
        rekeyAfterTime: TimeAmount = .seconds(120),
        rejectAfterMessages: UInt64 = 1 << 31,
        rejectAfterTime: TimeAmount = .seconds(180)
    ) {
        precondition(rekeyAfterMessages > 0 && rejectAfterMessages >= rekeyAfterMessages, "reject limit below rekey limit")
        precondition(rejectAfterTime >= rekeyAfterTime, "reject time below rekey time")
        self.rekeyAfterMessages = rekeyAfterMessages
        self.rekeyAfterTime = rekeyAfterTime
        self.rejectAfterMessages = rejectAfterMessages
        self.rejectAfterTime = rejectAfterTime
    }
}
