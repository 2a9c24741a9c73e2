// Leader election over etcd, as a swift-service-lifecycle `Service`: of several framework instances exactly one leads
// and runs the scheduler (the `whileLeader` body); the others stand by and take over when the leader's lease expires.
//
// Campaign: grant a lease of `leaseTTL`, then one transaction: if the election key does not exist (create revision 0),
// put it with value = this instance's `LeaderIdentity` (id + API URL) attached to the lease; otherwise read who holds
// it. The key's create revision is the leader's fencing token (`EtcdFence`): every state write of the leader compares
// it, so a deposed leader cannot write even before it notices.
//
// Leading: the body runs in a child task while a monitor renews the lease every `keepAliveInterval` (TTL/3) and checks
// that the key is still ours. The leader keeps a local, conservative deadline (`LeaseDeadline`): the moment a renewal
// request was *sent* plus the granted TTL, minus `stepDownMargin`. etcd cannot expire the lease before the sent moment
// plus the TTL, so stopping at the local deadline (cancelling the body and waiting for it to end) finishes before any
// other instance can win. When the deadline passes without a renewal (etcd unreachable, partitioned, without
// quorum), when etcd says the lease is gone, or when the key changed, the body is cancelled and the instance stands by.
// A body that ends on its own (the driver failed) resigns: the lease is revoked so a standby takes over at once.
//
// Standing by: read the key; if it is absent, campaign; else wait for a change with a watch bounded by `pollInterval`
// (so a lost watch costs at most one poll interval), and read again.
//
// Graceful shutdown: the body is cancelled, the lease revoked (a standby takes over without waiting for the TTL).

public import Logging
public import ServiceLifecycle
import Foundation
import Synchronization

/// Who leads, as written in the election key.
public struct LeaderIdentity: Codable, Hashable, Sendable, CustomStringConvertible {
    /// The instance id (`--instance-id`).
    public var instanceID: String
    /// Where its API answers, e.g. `http://127.0.0.1:7380`.
    public var apiURL: String?

    /// Creates an identity.
    public init(instanceID: String, apiURL: String?) {
        self.instanceID = instanceID
        self.apiURL = apiURL
    }

    public var description: String { apiURL.map { "\(instanceID) at \($0)" } ?? instanceID }
}

/// One period of leadership.
public struct LeadershipTerm: Hashable, Sendable {
    /// This instance.
    public var identity: LeaderIdentity
    /// The fencing token: the election key and its create revision.
    public var fence: EtcdFence
    /// The lease the key is attached to.
    public var leaseID: Int64
}

/// What an instance is, now.
public enum LeadershipRole: Hashable, Sendable {
    /// Not yet known (starting, or etcd unreachable while standing by).
    case unknown
    /// Another instance leads (or nobody, between terms: `leader` is nil).
    case standby(leader: LeaderIdentity?)
    /// This instance leads.
    case leader(LeadershipTerm)
}

/// A change of leadership, reported to `onEvent` (for logs, and the tests' event log).
public enum LeadershipEvent: Hashable, Sendable {
    /// This instance won; the body starts.
    case elected(LeadershipTerm)
    /// This instance stopped leading; the body has ended. `reason` says why.
    case steppedDown(LeadershipTerm, reason: String)
    /// Another instance leads.
    case following(LeaderIdentity)
    /// etcd could not be reached while standing by or campaigning.
    case etcdUnavailable(String)
}

/// The leader's local deadline: when it must have stopped acting unless a renewal succeeded.
///
/// etcd expires a lease no sooner than TTL after it received the last renewal, so no sooner than TTL after the
/// renewal was sent; the leader stops `margin` before that moment.
public struct LeaseDeadline<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    /// Time kept in hand for stopping the body before the lease can expire.
    public let margin: Duration
    /// The moment the leader must have stopped, unless renewed.
    public private(set) var stopBy: Instant

    /// A deadline for a lease granted (or created) by a request sent at `sentAt` with `ttl`.
    public init(sentAt: Instant, ttl: Duration, margin: Duration) {
        self.margin = margin
        self.stopBy = sentAt.advanced(by: ttl - margin)
    }

    /// A renewal sent at `sentAt` succeeded with `ttl`: the deadline moves (never backwards).
    public mutating func renewed(sentAt: Instant, ttl: Duration) {
        let candidate = sentAt.advanced(by: ttl - margin)
        if candidate > stopBy { stopBy = candidate }
    }

    /// Whether the leader must stop now.
    public func expired(at now: Instant) -> Bool { now >= stopBy }
}

/// Leader election through an etcd lease and transaction; runs `whileLeader` while this instance leads.
public final class EtcdLeaderElection<C: Clock>: Service, Sendable where C.Duration == Duration {
    /// Election settings.
    public struct Configuration: Sendable {
        /// The election key (`EtcdStateStore.leaderKey(prefix:)`).
        public var key: String
        /// This instance, as written into the key.
        public var identity: LeaderIdentity
        /// Lease TTL in seconds: how long after the leader dies (or loses etcd) a standby takes over.
        public var leaseTTL: Int64 = 10
        /// How often the leader renews its lease (default TTL/3).
        public var keepAliveInterval: Duration?
        /// How long before the lease could expire the leader stops acting (default TTL/3).
        public var stepDownMargin: Duration?
        /// How long a standby waits on a watch before reading the key again (default TTL/3).
        public var pollInterval: Duration?
        /// Pause after etcd was unreachable before trying again.
        public var retryInterval: Duration = .milliseconds(500)

        /// Settings for `identity` on `key`.
        public init(key: String, identity: LeaderIdentity, leaseTTL: Int64 = 10) {
            self.key = key
            self.identity = identity
            self.leaseTTL = leaseTTL
        }

        var ttl: Duration { .seconds(leaseTTL) }
        var keepAlive: Duration { keepAliveInterval ?? ttl / 3 }
        var margin: Duration { stepDownMargin ?? ttl / 3 }
        var poll: Duration { pollInterval ?? ttl / 3 }
    }

    /// The settings.
    public let configuration: Configuration
    private let client: EtcdClient
    private let clock: C
    private let logger: Logger
    private let onEvent: @Sendable (LeadershipEvent) -> Void
    private let whileLeader: @Sendable (LeadershipTerm) async throws -> Void
    private let state = Mutex(LeadershipRole.unknown)

    /// Creates the election.
    /// - Parameters:
    ///   - client: the etcd client.
    ///   - configuration: key, identity and timings.
    ///   - clock: the clock deadlines and pauses are measured on.
    ///   - logger: where transitions are logged.
    ///   - onEvent: called on every leadership change, in order.
    ///   - whileLeader: runs while this instance leads; it is cancelled when leadership ends and must then return
    ///     promptly (stop acting). If it returns or throws on its own, the instance resigns.
    public init(
        client: EtcdClient, configuration: Configuration, clock: C, logger: Logger = Logger(label: "cache-framework.election"),
        onEvent: @escaping @Sendable (LeadershipEvent) -> Void = { _ in },
        whileLeader: @escaping @Sendable (LeadershipTerm) async throws -> Void
    ) {
        self.client = client
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.onEvent = onEvent
        self.whileLeader = whileLeader
    }

    /// This instance's role now.
    public var role: LeadershipRole { state.withLock { $0 } }

    // MARK: Service

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    if let won = try await self.campaignOrWait() {
                        await self.lead(won.term, deadline: won.deadline)
                    }
                } catch {
                    if Task.isCancelled { break }
                    self.state.withLock { if case .leader = $0 {} else { $0 = .unknown } }
                    self.logger.warning("etcd unavailable: \(error)")
                    self.onEvent(.etcdUnavailable("\(error)"))
                    try? await self.clock.sleep(for: self.configuration.retryInterval)
                }
            }
        }
    }

    /// Reads the key; campaigns if it is absent. Returns a term if this instance won, nil after waiting for a change.
    private func campaignOrWait() async throws -> (term: LeadershipTerm, deadline: LeaseDeadline<C.Instant>)? {
        let current = try await client.range(configuration.key)
        if let holder = current.kvs.first {
            follow(holder)
            do {
                _ = try await client.watchOnce(configuration.key, afterRevision: current.revision, timeout: configuration.poll)
            } catch {
                // No watch (the member went away, or the revision was compacted): poll instead.
                try? await clock.sleep(for: configuration.poll)
            }
            return nil
        }
        let sentAt = clock.now
        let lease = try await client.grantLease(ttl: configuration.leaseTTL)
        let value = Array(try JSONEncoder().encode(configuration.identity))
        let result: EtcdTxnResult
        do {
            result = try await client.txn(
                compare: [EtcdCompare(key: configuration.key, .equal, .createRevision(0))],
                success: [.put(key: configuration.key, value: value, lease: lease.id)],
                failure: [.range(key: configuration.key)])
        } catch {
            try? await client.revokeLease(lease.id)
            throw error
        }
        guard result.succeeded else {
            try? await client.revokeLease(lease.id)
            if case .range(let kvs)? = result.results.first, let holder = kvs.first { follow(holder) }
            return nil
        }
        let term = LeadershipTerm(
            identity: configuration.identity, fence: EtcdFence(key: configuration.key, createRevision: result.revision),
            leaseID: lease.id)
        // The lease may have been granted a while before the key was written: count from the grant request.
        return (term, LeaseDeadline(sentAt: sentAt, ttl: .seconds(lease.ttl), margin: configuration.margin))
    }

    private func follow(_ holder: EtcdKeyValue) {
        let identity = (try? JSONDecoder().decode(LeaderIdentity.self, from: Data(holder.value)))
            ?? LeaderIdentity(instanceID: holder.stringValue, apiURL: nil)
        let changed = state.withLock { role -> Bool in
            if case .standby(let leader) = role, leader == identity { return false }
            role = .standby(leader: identity)
            return true
        }
        if changed {
            logger.notice("standing by: \(identity) leads")
            onEvent(.following(identity))
        }
    }

    /// Runs the body while the lease is renewed and the key is ours; returns once the body has ended.
    private func lead(_ term: LeadershipTerm, deadline: LeaseDeadline<C.Instant>) async {
        state.withLock { $0 = .leader(term) }
        logger.notice("elected leader: \(term.identity), term \(term.fence)")
        onEvent(.elected(term))
        let body = whileLeader
        let outcome: TermOutcome = await withTaskGroup(of: TermOutcome.self) { group in
            group.addTask {
                do {
                    try await body(term)
                    return .bodyEnded("the scheduler stopped")
                } catch {
                    return .bodyEnded("the scheduler failed: \(error)")
                }
            }
            group.addTask {
                .lost(await self.monitor(term, deadline: deadline))
            }
            let first = await group.next() ?? .lost("cancelled")
            group.cancelAll()
            // Wait for the body to have stopped acting before anything else happens.
            while await group.next() != nil {}
            return first
        }
        let reason: String
        switch outcome {
        case .bodyEnded(let why): reason = Task.isCancelled ? "shutting down" : why
        case .lost(let why): reason = why
        }
        state.withLock { $0 = .standby(leader: nil) }
        // The body has stopped acting: report it now, before the revoke below, which may wait out a request timeout
        // against an unreachable member while etcd expires the lease and a standby is elected.
        logger.notice("stepped down: \(reason)")
        onEvent(.steppedDown(term, reason: reason))
        // Resign: without the lease, the key is deleted and a standby campaigns at once. The revoke runs outside this
        // task so a graceful shutdown's cancellation does not stop it.
        let client = self.client
        await Task { try? await client.revokeLease(term.leaseID) }.value
    }

    /// Renews the lease until leadership is lost; returns why.
    private func monitor(_ term: LeadershipTerm, deadline initial: LeaseDeadline<C.Instant>) async -> String {
        var deadline = initial
        var nextRenewal = clock.now.advanced(by: configuration.keepAlive)
        while !Task.isCancelled {
            let wake = min(nextRenewal, deadline.stopBy)
            do { try await clock.sleep(until: wake, tolerance: nil) } catch { return "cancelled" }
            if deadline.expired(at: clock.now) {
                return "the lease could not be renewed in time (etcd unreachable or without quorum)"
            }
            let sentAt = clock.now
            // Give up on this renewal at the deadline; the loop then steps down.
            let answer = await renew(term, until: deadline.stopBy)
            switch answer {
            case .renewed(let ttl):
                deadline.renewed(sentAt: sentAt, ttl: .seconds(ttl))
                nextRenewal = sentAt.advanced(by: configuration.keepAlive)
            case .lost(let why):
                return why
            case .failed(let why):
                logger.warning("lease renewal failed, retrying: \(why)")
                nextRenewal = clock.now.advanced(by: min(configuration.retryInterval, configuration.keepAlive))
            }
        }
        return "cancelled"
    }

    private enum Renewal: Sendable {
        case renewed(Int64)
        case lost(String)
        case failed(String)
    }

    private func renew(_ term: LeadershipTerm, until stopBy: C.Instant) async -> Renewal {
        let client = self.client
        let clock = self.clock
        let key = configuration.key
        return await withTaskGroup(of: Renewal?.self) { group in
            group.addTask {
                do {
                    let ttl = try await client.keepAlive(term.leaseID)
                    let current = try await client.range(key)
                    guard let kv = current.kvs.first, kv.createRevision == term.fence.createRevision else {
                        return .lost("the election key was deleted or taken over")
                    }
                    return .renewed(ttl)
                } catch let error as EtcdError where error.code == .leaseExpired {
                    return .lost("etcd expired the lease")
                } catch {
                    return .failed("\(error)")
                }
            }
            group.addTask {
                try? await clock.sleep(until: stopBy, tolerance: nil)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .failed("no answer before the lease deadline")
        }
    }
}

/// How a term ended: the body returned or threw on its own, or leadership was lost.
private enum TermOutcome: Sendable {
    case bodyEnded(String)
    case lost(String)
}
