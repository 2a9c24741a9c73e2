// The health monitor service: periodic health checks of every running VNFC after it started (readiness only checks
// once, at launch). `NFVHealthSchedule` (pure) says what is due and counts failures; this service follows the
// manager's instances, runs the due probes through an `NFVHealthChecking` (real checks off the concurrency pool, or
// results injected by tests) and reports a VNFC that reached its failure threshold to the manager, which starts an
// automatic HEAL (`NFVEvent.healthFailed`).

public import CacheFramework
public import CacheFrameworkNFV
public import CacheFrameworkRuntime
import Dispatch
public import Logging
public import ServiceLifecycle
import Synchronization

/// Runs one health check.
public protocol NFVHealthChecking: Sendable {
    /// Whether the probe's VNFC is healthy (a check past its timeout is not).
    func check(_ probe: HealthProbe) async -> Bool
}

/// The real checks (`NFVHealth.checkBlocking`), each on a Dispatch thread so blocking sockets and child processes do
/// not hold the concurrency pool.
public struct NFVProbeRunner: NFVHealthChecking {
    /// Creates the runner.
    public init() {}

    public func check(_ probe: HealthProbe) async -> Bool {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: NFVHealth.checkBlocking(probe.label, timeoutSeconds: probe.timeoutSeconds))
            }
        }
    }
}

/// Periodic VNFC health checks feeding auto-heal.
public final class NFVHealthMonitor: Service, Sendable {
    private struct State {
        var schedule = NFVHealthSchedule()
        var results: [(taskID: TaskID, healthy: Bool, at: SchedulerTime)] = []
    }

    private let manager: NFVManager
    private let checker: any NFVHealthChecking
    private let clock: any FrameworkClock
    private let pollInterval: Duration
    private let logger: Logger
    private let state = Mutex(State())

    /// Monitors `manager`'s VNFCs, looking for due checks every `pollInterval`.
    public init(
        manager: NFVManager, checker: any NFVHealthChecking = NFVProbeRunner(), clock: any FrameworkClock = WallClock(),
        pollInterval: Duration = .milliseconds(250), logger: Logger = Logger(label: "cache-framework.nfv.health")
    ) {
        self.manager = manager
        self.checker = checker
        self.clock = clock
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                while !Task.isCancelled {
                    let (probes, verdicts) = self.step(now: self.clock.now())
                    for verdict in verdicts {
                        self.logger.warning("nfv: \(verdict.instanceID)/\(verdict.vnfcID): \(verdict.reason); healing it")
                        if await !self.manager.healthFailed(verdict.taskID) {
                            // Another operation runs on the instance: count afresh and report again if it still fails.
                            self.state.withLock { $0.schedule.rearm(verdict.taskID) }
                        }
                    }
                    for probe in probes {
                        group.addTask {
                            let healthy = await self.checker.check(probe)
                            let at = self.clock.now()
                            self.state.withLock { $0.results.append((probe.taskID, healthy, at)) }
                        }
                    }
                    do { try await self.clock.sleep(for: self.pollInterval) } catch { break }
                }
                group.cancelAll()
            }
        }
    }

    /// Records finished checks, follows the instances and hands out the due probes.
    private func step(now: SchedulerTime) -> ([HealthProbe], [UnhealthyVNFC]) {
        let instances = manager.instances()
        return state.withLock { state in
            var verdicts: [UnhealthyVNFC] = []
            for result in state.results {
                if let verdict = state.schedule.record(result.taskID, healthy: result.healthy, now: result.at) { verdicts.append(verdict) }
            }
            state.results = []
            state.schedule.sync(instances, now: now)
            return (state.schedule.due(now: now), verdicts)
        }
    }

    /// The health of every monitored VNFC task.
    public func health() -> [TaskID: VNFCHealth] { state.withLock { $0.schedule.health } }
}
