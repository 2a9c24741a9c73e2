// SecureChannelConfiguration: everything a secure channel endpoint needs, plus the half-open handshake bound.
public import Logging
public import NIOCore
import Synchronization

/// Settings of one secure channel endpoint (client or server).
public struct SecureChannelConfiguration: Sendable {
    /// Identity, trust and negotiation settings.
    public var handshake: HandshakeConfiguration
    /// Key lifetime limits.
    public var rekeyPolicy: RekeyPolicy
    /// Largest plaintext per record; larger writes are split.
    public var maximumRecordPayload: Int
    /// How long a handshake may take before the connection is closed.
    public var handshakeTimeout: TimeAmount
    /// Monotonic clock for rekey timing (injectable for tests).
    public var monotonicNow: @Sendable () -> NIODeadline
    /// Logger for handshake outcomes and failures.
    public var logger: Logger

    public init(
        handshake: HandshakeConfiguration,
        rekeyPolicy: RekeyPolicy = RekeyPolicy(),
        maximumRecordPayload: Int = 16 * 1024,
        handshakeTimeout: TimeAmount = .seconds(10),
        monotonicNow: @escaping @Sendable () -> NIODeadline = { .now() },
        logger: Logger = Logger(label: "replication-sec")
    ) {
        precondition(maximumRecordPayload > 0 && maximumRecordPayload <= 1 << 24, "record payload out of range")
        self.handshake = handshake
        self.rekeyPolicy = rekeyPolicy
        self.maximumRecordPayload = maximumRecordPayload
        self.handshakeTimeout = handshakeTimeout
        self.monotonicNow = monotonicNow
        self.logger = logger
    }

    /// The decoder cap: one full record, or the largest handshake message, whichever is larger.
    public var maximumFrameLength: Int {
        max(maximumRecordPayload + RecordFormat.minimumRecordLength, 4096)
    }
}

/// Bounds the number of half-open (not yet authenticated) handshakes a server holds. Share one per listener.
public final class HandshakeAdmission: Sendable {
    /// Maximum concurrent half-open handshakes.
    public let limit: Int
    private let pending = Mutex(0)

    public init(limit: Int = 256) { self.limit = limit }

    /// Current number of half-open handshakes.
    public var pendingCount: Int { pending.withLock { $0 } }

    /// Reserves a slot; returns false when the limit is reached.
    public func tryAcquire() -> Bool {
        pending.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    /// Releases a slot reserved by ``tryAcquire()``.
    public func release() { pending.withLock { $0 -= 1 } }
}
