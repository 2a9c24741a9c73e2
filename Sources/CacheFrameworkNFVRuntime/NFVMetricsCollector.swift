// The metrics collector service: auto-scaling on VNFD monitoring parameters. `NFVAutoScaler` (pure) says which
// parameters are due and decides; this service reads each VNFC's metric through an `NFVMetricsReading` (by default
// `GET /metrics` on the VNFC's `metrics` port, lines of `name value`, as `vnf-sample --metrics-port` serves) and
// submits the decisions to the manager as automatic SCALE operations.

import CacheFramework
import CacheFrameworkNFV
public import CacheFrameworkRuntime
import Dispatch
public import Logging
public import ServiceLifecycle
import Synchronization

/// Reads one metric of one VNFC.
public protocol NFVMetricsReading: Sendable {
    /// The value of `metric` at `endpoint` (the VNFC's metrics port), or nil when it cannot be read.
    func read(_ metric: String, from endpoint: String) async -> Double?
}

/// `GET /metrics` over HTTP/1.0 on a Dispatch thread; the answer is lines of `name value` (Prometheus text without
/// labels; `#` lines are skipped).
public struct NFVMetricsHTTPReader: NFVMetricsReading {
    /// Creates the reader.
    public init() {}

    public func read(_ metric: String, from endpoint: String) async -> Double? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: NFVHealth.httpBody(endpoint, path: "/metrics").flatMap { Self.value(of: metric, in: $0) })
            }
        }
    }

    /// The value of `metric` in a `name value` text.
    public static func value(of metric: String, in text: String) -> Double? {
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, fields[0] == metric, let value = Double(fields[1]) { return value }
        }
        return nil
    }
}

/// Collects monitoring parameters and auto-scales.
public final class NFVMetricsCollector: Service, Sendable {
    private let manager: NFVManager
    private let reader: any NFVMetricsReading
    private let clock: any FrameworkClock
    private let pollInterval: Duration
    private let logger: Logger
    private let scaler = Mutex(NFVAutoScaler())

    /// Collects from `manager`'s VNFCs, looking for due parameters every `pollInterval`.
    public init(
        manager: NFVManager, reader: any NFVMetricsReading = NFVMetricsHTTPReader(), clock: any FrameworkClock = WallClock(),
        pollInterval: Duration = .milliseconds(500), logger: Logger = Logger(label: "cache-framework.nfv.metrics")
    ) {
        self.manager = manager
        self.reader = reader
        self.clock = clock
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.collect()
                do { try await self.clock.sleep(for: self.pollInterval) } catch { break }
            }
        }
    }

    /// One round: collects every due parameter and submits what the scaler decides.
    func collect() async {
        let due = scaler.withLock { $0.due(manager.instances(), now: clock.now()) }
        for collection in due {
            var values: [Double] = []
            for endpoint in collection.endpoints.values.sorted() {
                if let value = await reader.read(collection.parameter.metric, from: endpoint) { values.append(value) }
            }
            guard let instance = manager.instance(collection.instanceID) else { continue }
            let busy = manager.operations().contains { $0.vnfInstanceID == instance.id && !$0.state.isFinal }
            let now = clock.now()
            guard let decision = scaler.withLock({
                $0.observe(instance, parameter: collection.parameter, values: values, busy: busy, now: now)
            }) else { continue }
            logger.notice("nfv: auto-scaling \(decision.instanceID) \(decision.aspect) \(decision.type.rawValue): \(decision.reason)")
            do {
                try await manager.submit(.autoScale(decision.instanceID, aspect: decision.aspect, type: decision.type, cause: decision.reason))
            } catch {
                logger.warning("nfv: auto-scaling \(decision.instanceID) was refused: \(error)")
            }
        }
    }
}
