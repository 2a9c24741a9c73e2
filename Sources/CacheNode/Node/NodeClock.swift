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

    /// The time as a cheaper, coarser reading (microseconds since the epoch), advancing in steps of
    /// ``coarseResolutionMicroseconds``; it lags ``nowMicroseconds()`` by a step or more, so it is only compared with
    /// itself. The slow log reads it before and after every command and takes a precise reading only when the two
    /// say the command may have been slow.
    func coarseNowMicroseconds() -> Int64

    /// The step of ``coarseNowMicroseconds()`` (0: it is as precise as ``nowMicroseconds()``).
    var coarseResolutionMicroseconds: Int64 { get }

    /// Blocks the calling thread for `microseconds` (DEBUG SLEEP); a test clock moves forward instead.
    func sleep(microseconds: Int64)
}

extension NodeClock {
    public func nowMicroseconds() -> Int64 { nowMilliseconds() * 1000 }
    public func coarseNowMicroseconds() -> Int64 { nowMicroseconds() }
    public var coarseResolutionMicroseconds: Int64 { 0 }
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

    /// `CLOCK_REALTIME_COARSE`: the time of the kernel's last tick, read without touching the TSC (about a fifth of
    /// a precise reading's cost here).
    public func coarseNowMicroseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }

    public var coarseResolutionMicroseconds: Int64 { Self.coarseResolution }

    /// One kernel tick (4 ms at 250 Hz), rounded up to whole microseconds.
    private static let coarseResolution: Int64 = {
        var spec = timespec()
        guard clock_getres(CLOCK_REALTIME_COARSE, &spec) == 0 else { return 10_000 }
        return Int64(spec.tv_sec) * 1_000_000 + (Int64(spec.tv_nsec) + 999) / 1000
    }()

    public func sleep(microseconds: Int64) {
        guard microseconds > 0 else { return }
        var request = timespec(tv_sec: Int(microseconds / 1_000_000), tv_nsec: Int(microseconds % 1_000_000) * 1000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
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

    /// Moves the clock forward instead of sleeping (whole milliseconds, rounded up).
    public func sleep(microseconds: Int64) {
        guard microseconds > 0 else { return }
        advance(by: (microseconds + 999) / 1000)
    }

    /// Moves the clock forward by `milliseconds`.
    public func advance(by milliseconds: Int64) {
        current.add(milliseconds, ordering: .relaxed)
    }
}
