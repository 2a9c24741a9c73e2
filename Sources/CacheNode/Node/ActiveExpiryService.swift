// The node's periodic housekeeping as a Service (redis serverCron): an active-expiry cycle every 1/hz seconds,
// CLIENT TRACKING's table kept within `tracking-table-max-keys`, and the ops-per-second sample INFO shows. Time is injected; tests run cycles directly with a manual clock.
import CacheStore
public import ServiceLifecycle
import Synchronization

/// Runs active expiry and statistics sampling until graceful shutdown.
public struct HousekeepingService<SleepClock: Clock>: Service where SleepClock.Duration == Duration {
    private let node: NodeState
    private let clock: SleepClock

    /// Creates the service for `node`, sleeping on `clock` between cycles.
    public init(node: NodeState, clock: SleepClock) {
        self.node = node
        self.clock = clock
    }

    public func run() async throws {
        let node = self.node
        let clock = self.clock
        do {
            try await runCycles(node: node, clock: clock)
        } catch is CancellationError {
            // Graceful shutdown interrupts the sleep between cycles: a normal end, not a failure.
        }
    }

    /// One housekeeping cycle at `now`, nothing while DEBUG PAUSE-CRON is on: active expiry and the tracking table's
    /// limit.
    public static func cycle(node: NodeState, now: Int64) {
        guard !node.housekeepingPaused.load(ordering: .relaxed) else { return }
        expiryCycle(node: node, now: now)
        node.enforceTrackingLimit()
    }

    /// One active-expiry cycle at `now`, unless DEBUG SET-ACTIVE-EXPIRE 0 turned them off.
    public static func expiryCycle(node: NodeState, now: Int64) {
        if node.activeExpiryEnabled.load(ordering: .relaxed) { node.keyspace.activeExpireCycle(now: now) }
    }

    private func runCycles(node: NodeState, clock: SleepClock) async throws {
        try await cancelWhenGracefulShutdown {
            var lastTotal = 0
            var lastSample = node.clock.nowMilliseconds()
            while true {
                let hz = max(1, node.configuration.hz)
                try await clock.sleep(for: .milliseconds(1000 / hz))
                let now = node.clock.nowMilliseconds()
                Self.cycle(node: node, now: now)
                if now - lastSample >= 1000 {
                    let total = node.stats.total { $0.commandsProcessed.load(ordering: .relaxed) }
                    let rate = (total - lastTotal) * 1000 / Int(max(1, now - lastSample))
                    node.instantaneousOpsPerSecond.store(max(0, rate), ordering: .relaxed)
                    lastTotal = total
                    lastSample = now
                }
            }
        }
    }
}
