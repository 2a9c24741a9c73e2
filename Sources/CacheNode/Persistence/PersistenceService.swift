// Checks the `save` rules and BGSAVE SCHEDULE every 1/hz seconds (redis serverCron's part that starts background
// saves) and logs how each save ended. Time is injected: tests drive `tick()` directly.
import CacheStore
public import Logging
public import ServiceLifecycle
import Synchronization

/// Starts background saves when the save rules say so, until graceful shutdown.
public struct PersistenceService<SleepClock: Clock>: Service where SleepClock.Duration == Duration {
    private let node: NodeState
    private let clock: SleepClock
    private let logger: Logger

    /// Creates the service for `node`, sleeping on `clock` between checks.
    public init(node: NodeState, clock: SleepClock, logger: Logger = Logger(label: "cache-node.persistence")) {
        self.node = node
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        let node = self.node
        let clock = self.clock
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await clock.sleep(for: .milliseconds(1000 / max(1, node.configuration.hz)))
                    tick()
                }
            }
        } catch is CancellationError {
            // Graceful shutdown interrupts the sleep: a normal end.
        }
    }

    /// One check: hands the AOF's pending writes to the kernel (fsync once a second with `everysec`), starts an
    /// automatic AOF rewrite when the log outgrew its base, and starts a background save if one is due.
    @discardableResult
    public func tick() -> Bool {
        let logger = self.logger
        node.appendOnly.flush(now: node.clock.nowMilliseconds())
        if node.appendOnly.rewriteDue() {
            logger.notice("Starting automatic rewriting of AOF on growth")
            _ = try? node.appendOnly.startRewrite(node: node) { result in
                if case .failure(let error) = result { logger.warning("Background AOF rewrite failed: \(error)") }
            }
        }
        let changes = node.changesSinceSave
        let started = node.persistence.startSaveIfDue(node: node) { result in
            switch result {
            case .success(let outcome):
                logger.notice("Background saving terminated with success", metadata: ["keys": "\(outcome.records)", "bytes": "\(outcome.bytes)"])
            case .failure(let error):
                logger.warning("Background saving error: \(error)")
            }
        }
        if started { logger.notice("\(changes) changes: background saving started") }
        return started
    }
}
