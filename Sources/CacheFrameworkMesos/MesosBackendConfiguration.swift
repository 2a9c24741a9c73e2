// Settings of the Mesos backend: the master to start from, the FrameworkInfo it registers (with a failover timeout
// of days, not the proto's default 0 which kills every task the moment the scheduler disconnects), and the limits
// of the connection (heartbeat misses before reconnecting, backoff, record size, request timeout, redirects).

import Foundation

/// Settings of a `MesosBackend`.
public struct MesosBackendConfiguration: Sendable {
    /// The master (any master of the cluster: a standby redirects to the leader), `http://host:5050`.
    public var master: MasterURL
    /// The framework info registered on SUBSCRIBE; `id` is filled in by the backend.
    public var frameworkInfo: Mesos.FrameworkInfo
    /// Consecutive heartbeat intervals without any event after which the stream is presumed dead (the docs
    /// suggest 5).
    public var missedHeartbeats: Double
    /// The heartbeat interval assumed until SUBSCRIBED says (Mesos' default is 15 s).
    public var defaultHeartbeatInterval: Duration
    /// How often the heartbeat watchdog looks at the time of the last event.
    public var heartbeatCheckInterval: Duration
    /// First delay before resubscribing after a failed attempt; doubles up to `maximumBackoff`. A subscription
    /// that was established is retried at once.
    public var initialBackoff: Duration
    /// The largest delay between subscription attempts (the docs suggest 15 s).
    public var maximumBackoff: Duration
    /// The largest RecordIO record accepted on the event stream.
    public var maximumRecordSize: Int
    /// Timeout of non-SUBSCRIBE calls (the docs suggest 75 s).
    public var requestTimeout: Duration
    /// How many 307 redirects one request follows.
    public var maximumRedirects: Int
    /// Where a member's persistent volume is mounted, relative to its sandbox (it runs with `--dir` there).
    public var volumeContainerPath = "data"
    /// Size of a new member's persistent volume per MB of its memory (snapshot plus room for the next one).
    public var volumeMBPerMemoryMB: Double = 4
    /// The smallest persistent volume created.
    public var minimumVolumeMB: Double = 64

    /// The default framework info: name `cache-framework`, the current user, role `cache`, failover timeout of
    /// `failoverTimeout` seconds (a week by default), checkpointing on, principal `principal` (the reserver and
    /// creator of the members' persistent volumes), MULTI_ROLE + PARTITION_AWARE + TASK_KILLING_STATE +
    /// RESERVATION_REFINEMENT.
    public static func defaultFrameworkInfo(
        name: String = "cache-framework", role: String = "cache", failoverTimeout: Double = 7 * 24 * 3600,
        principal: String? = "cache-framework"
    ) -> Mesos.FrameworkInfo {
        Mesos.FrameworkInfo(
            user: ProcessInfo.processInfo.environment["USER"] ?? "root", name: name,
            failoverTimeout: failoverTimeout, checkpoint: true, roles: [role],
            hostname: ProcessInfo.processInfo.hostName, principal: principal,
            capabilities: [.multiRole, .partitionAware, .taskKillingState, .reservationRefinement])
    }

    /// Creates a configuration.
    public init(
        master: MasterURL,
        frameworkInfo: Mesos.FrameworkInfo = MesosBackendConfiguration.defaultFrameworkInfo(),
        missedHeartbeats: Double = 5,
        defaultHeartbeatInterval: Duration = .seconds(15),
        heartbeatCheckInterval: Duration = .seconds(1),
        initialBackoff: Duration = .milliseconds(100),
        maximumBackoff: Duration = .seconds(15),
        maximumRecordSize: Int = 16 * 1024 * 1024,
        requestTimeout: Duration = .seconds(75),
        maximumRedirects: Int = 5
    ) {
        self.master = master
        self.frameworkInfo = frameworkInfo
        self.missedHeartbeats = missedHeartbeats
        self.defaultHeartbeatInterval = defaultHeartbeatInterval
        self.heartbeatCheckInterval = heartbeatCheckInterval
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.maximumRecordSize = maximumRecordSize
        self.requestTimeout = requestTimeout
        self.maximumRedirects = maximumRedirects
    }
}

extension Duration {
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
