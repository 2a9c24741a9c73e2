// Periodic health checks of running VNFCs as a pure value: which VNFC to check when (each VDU's health check
// interval, counted from when its task was first seen running), consecutive failures per task, and the verdict once
// they reach the VDU's failure threshold. The runtime (`NFVHealthMonitor`) runs the probes it hands out and feeds the
// results back; an unhealthy verdict becomes the state machine's `.healthFailed` input (an automatic HEAL).

public import CacheFramework

/// One health check to run now.
public struct HealthProbe: Hashable, Sendable {
    /// The VNFC's task.
    public var taskID: TaskID
    /// Its instance.
    public var instanceID: String
    /// The VNFC id.
    public var vnfcID: String
    /// The check as a label (`VNFTaskTemplate.healthLabel`): `tcp HOST:PORT`, `http HOST:PORT PATH`, `command …`.
    public var label: String
    /// Seconds the check may take; longer counts as a failure.
    public var timeoutSeconds: Double
}

/// The health of one checked VNFC, for views.
public struct VNFCHealth: Hashable, Codable, Sendable {
    /// The result of the last check (nil: none ran yet).
    public var lastHealthy: Bool?
    /// Failures in a row.
    public var consecutiveFailures: Int
    /// The threshold that makes it unhealthy.
    public var failureThreshold: Int
    /// When it was last checked.
    public var lastCheck: SchedulerTime?
}

/// What a failed check decided.
public struct UnhealthyVNFC: Hashable, Sendable {
    /// The task to heal.
    public var taskID: TaskID
    /// Its instance.
    public var instanceID: String
    /// The VNFC.
    public var vnfcID: String
    /// Why, for logs.
    public var reason: String
}

/// Which VNFC to check when, and consecutive failures; a pure value fed with the current time.
public struct NFVHealthSchedule: Sendable {
    struct Entry: Sendable {
        var probe: HealthProbe
        var intervalSeconds: Double
        var nextDue: SchedulerTime
        var inFlight = false
        /// Reported unhealthy: not checked again (the task is being replaced).
        var reported = false
        var health: VNFCHealth
    }

    private var entries: [TaskID: Entry] = [:]

    /// An empty schedule.
    public init() {}

    /// Follows the instances' running VNFCs: new ones are first checked one interval after they are seen (the backend
    /// reported them RUNNING once their readiness check passed); VNFCs no longer running are forgotten.
    public mutating func sync(_ instances: [VNFInstance], now: SchedulerTime) {
        var seen: Set<TaskID> = []
        for instance in instances where instance.instantiationState == .instantiated {
            for vnfc in instance.vnfcs.values {
                guard vnfc.isRunning, let taskID = vnfc.taskID, let hostname = vnfc.hostname,
                    let spec = instance.vnfd.vdu(vnfc.vdu)?.healthCheck
                else { continue }
                seen.insert(taskID)
                guard entries[taskID] == nil else { continue }
                entries[taskID] = Entry(
                    probe: HealthProbe(
                        taskID: taskID, instanceID: instance.id, vnfcID: vnfc.id,
                        label: VNFTaskTemplate.healthLabel(spec.check, vnfc: vnfc, hostname: hostname),
                        timeoutSeconds: spec.timeoutSeconds),
                    intervalSeconds: max(spec.intervalSeconds, 0.1), nextDue: now.adding(seconds: spec.intervalSeconds),
                    health: VNFCHealth(lastHealthy: nil, consecutiveFailures: 0, failureThreshold: spec.failureThreshold, lastCheck: nil))
            }
        }
        for taskID in entries.keys where !seen.contains(taskID) { entries[taskID] = nil }
    }

    /// The checks due at `now` (each is handed out once until its result is recorded).
    public mutating func due(now: SchedulerTime) -> [HealthProbe] {
        var probes: [HealthProbe] = []
        for taskID in entries.keys.sorted() {
            guard var entry = entries[taskID], !entry.inFlight, !entry.reported, entry.nextDue <= now else { continue }
            entry.inFlight = true
            entries[taskID] = entry
            probes.append(entry.probe)
        }
        return probes
    }

    /// Records a check's result; returns the VNFC when its failures in a row reach the threshold (once per task).
    public mutating func record(_ taskID: TaskID, healthy: Bool, now: SchedulerTime) -> UnhealthyVNFC? {
        guard var entry = entries[taskID] else { return nil }
        entry.inFlight = false
        entry.nextDue = now.adding(seconds: entry.intervalSeconds)
        entry.health.lastHealthy = healthy
        entry.health.lastCheck = now
        entry.health.consecutiveFailures = healthy ? 0 : entry.health.consecutiveFailures + 1
        var verdict: UnhealthyVNFC?
        if !healthy && !entry.reported && entry.health.consecutiveFailures >= entry.health.failureThreshold {
            entry.reported = true
            verdict = UnhealthyVNFC(
                taskID: taskID, instanceID: entry.probe.instanceID, vnfcID: entry.probe.vnfcID,
                reason: "\(entry.health.consecutiveFailures) health checks in a row failed (\(entry.probe.label))")
        }
        entries[taskID] = entry
        return verdict
    }

    /// The verdict was not acted on (the instance was busy with another operation): count afresh.
    public mutating func rearm(_ taskID: TaskID) {
        entries[taskID]?.reported = false
        entries[taskID]?.health.consecutiveFailures = 0
    }

    /// When the next check is due (nil: nothing to check).
    public var nextDue: SchedulerTime? {
        entries.values.filter { !$0.inFlight && !$0.reported }.map(\.nextDue).min()
    }

    /// The health of every checked task.
    public var health: [TaskID: VNFCHealth] { entries.mapValues(\.health) }
}
