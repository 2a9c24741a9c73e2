// The wall clock the node reads once per command (redis caches `mstime()` the same way). Injected, so tests of
// expiry and eviction move time by hand instead of sleeping.
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Synchronization

/// A source of the current time in unix milliseconds.
public protocol NodeClock: Sendable {
    /// Milliseconds since 1970-01-01 UTC.
    func nowMilliseconds() -> Int64

    /// Microseconds since 1970-01-01 UTC (MONITOR's timestamps); by default the milliseconds' precision.
    func nowMicroseconds() -> Int64
}

extension NodeClock {
    public func nowMicroseconds() -> Int64 { nowMilliseconds() * 1000 }
}

/// The system's real-time clock.
public struct SystemNodeClock: NodeClock {
    public init() {}

    public func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    public func nowMicroseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }
}

/// A clock that only moves when told to (tests).
public final class ManualNodeClock: NodeClock {
    private let current: Atomic<Int64>

    /// Starts at `milliseconds` since the epoch.
    public init(milliseconds: Int64 = 1_700_000_000_000) {
        current = Atomic(milliseconds)
    }

    public func nowMilliseconds() -> Int64 { current.load(ordering: .relaxed) }

    /// Moves the clock forward by `milliseconds`.
    public func advance(by milliseconds: Int64) {
        current.add(milliseconds, ordering: .relaxed)
    }
}
