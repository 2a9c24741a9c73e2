// maxmemory eviction, approximated by sampling as redis does (evict.c).
//
// Each entry keeps a 16-bit access clock: for LRU policies the time of last access in seconds (mod 2^16, so idle
// times up to ~18 hours compare correctly); for LFU policies an 8-bit logarithmic counter (redis's LFULogIncr with
// `lfu-log-factor`) and an 8-bit minute clock for decay (`lfu-decay-time`). To free memory the keyspace samples
// `maxmemory-samples` random entries per round from random stripes (entries are dense, so a sample is O(1)), keeps
// the best candidates in a small pool across rounds, and evicts the best; it repeats until the estimate is under
// the limit or nothing evictable is left.
import Synchronization

/// The `maxmemory-policy` values.
public enum EvictionPolicy: Int, Sendable, CaseIterable {
    case noEviction, allKeysLRU, allKeysLFU, allKeysRandom, volatileLRU, volatileLFU, volatileRandom, volatileTTL

    /// The name used in configuration (`allkeys-lru`…).
    public var name: String {
        switch self {
        case .noEviction: return "noeviction"
        case .allKeysLRU: return "allkeys-lru"
        case .allKeysLFU: return "allkeys-lfu"
        case .allKeysRandom: return "allkeys-random"
        case .volatileLRU: return "volatile-lru"
        case .volatileLFU: return "volatile-lfu"
        case .volatileRandom: return "volatile-random"
        case .volatileTTL: return "volatile-ttl"
        }
    }

    /// Parses a configuration name (case-insensitive).
    public init?(name: String) {
        guard let policy = Self.allCases.first(where: { $0.name == name.lowercased() }) else { return nil }
        self = policy
    }

    /// Whether only keys with an expiry may be evicted.
    public var volatileOnly: Bool {
        switch self {
        case .volatileLRU, .volatileLFU, .volatileRandom, .volatileTTL: return true
        default: return false
        }
    }

    /// Whether the access clock counts frequency rather than recency.
    public var usesLFU: Bool { self == .allKeysLFU || self == .volatileLFU }
}

/// The outcome of an attempt to get under `maxmemory`.
public enum EvictionResult: Sendable, Hashable {
    /// Under the limit (possibly after evicting `evicted` keys).
    case withinLimit(evicted: Int)
    /// Still over the limit and nothing more may be evicted (noeviction, or no volatile keys): write commands
    /// must fail with OOM.
    case outOfMemory
}

extension Keyspace {
    /// The LFU counter a new key starts with (redis LFU_INIT_VAL).
    static let lfuInitialValue: UInt16 = 5

    func initializeAccess(_ meta: inout EntryMeta, now: Int64) {
        if evictionPolicy.usesLFU {
            meta.access = UInt16(truncatingIfNeeded: now / 60_000) & 0xFF | Self.lfuInitialValue << 8
        } else {
            meta.access = UInt16(truncatingIfNeeded: now / 1000)
        }
    }

    /// Updates an entry's access clock on a read or write.

    func recordAccess(_ meta: inout EntryMeta, now: Int64) {
        let access = evictionPolicy.usesLFU ? lfuTouched(meta.access, now: now) : UInt16(truncatingIfNeeded: now / 1000)
        // Stored only when it changes (for LRU, once a second): a read then leaves the entry's cache line clean, so
        // event loops reading the same hot key on different cores do not keep taking the line from each other.
        if meta.access != access { meta.access = access }
    }

    /// Seconds since `access` (LRU clock), for OBJECT IDLETIME.
    public func idleSeconds(access: UInt16, now: Int64) -> Int {
        Int(UInt16(truncatingIfNeeded: now / 1000) &- access)
    }

    /// The LFU counter of an access clock (OBJECT FREQ), decayed to `now`.
    public func frequency(access: UInt16, now: Int64) -> Int {
        Int(lfuDecayed(access, now: now))
    }

    func lfuDecayed(_ access: UInt16, now: Int64) -> UInt16 {
        let counter = access >> 8
        let lastMinutes = access & 0xFF
        let nowMinutes = UInt16(truncatingIfNeeded: now / 60_000) & 0xFF
        let elapsed = (nowMinutes &- lastMinutes) & 0xFF
        let decayTime = lfuDecayTime
        guard decayTime > 0 else { return counter }
        let periods = UInt16(Int(elapsed) / decayTime)
        return periods >= counter ? 0 : counter - periods
    }

    func lfuTouched(_ access: UInt16, now: Int64) -> UInt16 {
        var counter = lfuDecayed(access, now: now)
        if counter < 255 {
            // LFULogIncr: increment with probability 1 / ((counter - initial) * factor + 1).
            let base = Double(max(0, Int(counter) - Int(Self.lfuInitialValue)))
            let probability = 1.0 / (base * Double(lfuLogFactor) + 1)
            var random = SystemRandomNumberGenerator()
            if Double.random(in: 0..<1, using: &random) < probability { counter += 1 }
        }
        let nowMinutes = UInt16(truncatingIfNeeded: now / 60_000) & 0xFF
        return counter << 8 | nowMinutes
    }

    /// Whether the estimated size is over `maxmemory` (cheap: reads published per-stripe sizes).
    public var isOverMemoryLimit: Bool {
        let limit = maxMemory
        return limit > 0 && estimatedBytes(locked: false) > limit
    }

    /// Evicts keys until the estimate is under `maxmemory`. Call with no stripe locked.
    /// - Parameters:
    ///   - now: current time, unix ms (for TTL and LFU decay).
    ///   - baseline: bytes the process uses outside the keyspace, counted against the limit.
    public func evictIfNeeded(now: Int64, baseline: Int = 0) -> EvictionResult {
        let limit = maxMemory
        // Nothing is evicted while clients are paused (redis PAUSE_ACTION_EVICT); nor is anything refused for memory.
        guard limit > 0, !keyRemovalPaused else { return .withinLimit(evicted: 0) }
        var evicted = 0
        var attempts = 0
        while estimatedBytes(locked: false) + baseline > limit {
            let policy = evictionPolicy
            if policy == .noEviction { return .outOfMemory }
            guard let victim = pickVictim(policy: policy, now: now) else { return .outOfMemory }
            let stripeIndex = victim.stripe
            lock(stripe: stripeIndex)
            let stripe = stripes[stripeIndex]
            if let table = stripe.existingTable(victim.database), let position = table.find(victim.key) {
                let removed = table.remove(at: position)
                if lazyFreeTriggers.contains(.eviction) { lazyFree.release(removed.value) }
                stripe.keyModified(database: victim.database, key: removed.key)
                evictedKeys.add(1, ordering: .relaxed)
                observer?.keyEvicted(database: victim.database, key: removed.key)
                evicted += 1
            }
            unlock(stripe: stripeIndex)
            attempts += 1
            if attempts > 1_000_000 { return .outOfMemory }
        }
        return .withinLimit(evicted: evicted)
    }

    private struct Victim {
        var stripe: Int
        var database: Int
        var key: KeyRef
        var score: Double  // higher = better to evict
    }

    /// The first stripe from `start` on (wrapping around) whose published size says it holds keys, or `start` if none
    /// does. With few keys most stripes are empty, and stripes picked purely at random would miss the keys that
    /// exist often enough for eviction to give up with keys left.
    private func nonEmptyStripe(from start: Int) -> Int {
        for step in 0..<stripes.count {
            let index = (start + step) & stripeMask
            if stripes[index].publishedBytes.load(ordering: .relaxed) > 0 { return index }
        }
        return start
    }

    /// Samples random entries and returns the best eviction candidate, locking one stripe at a time.
    private func pickVictim(policy: EvictionPolicy, now: Int64) -> Victim? {
        var best: Victim?
        let samples = evictionSamples
        var tries = 0
        var sampled = 0
        // Sample across stripes; give up once many tries found nothing evictable (no volatile keys, say).
        while sampled < samples && tries < samples * 16 {
            tries += 1
            let stripeIndex = nonEmptyStripe(from: samplingRandom.withLock { Int.random(in: 0..<stripes.count, using: &$0) })
            lock(stripe: stripeIndex)
            let stripe = stripes[stripeIndex]
            for database in 0..<databaseCount {
                guard let table = stripe.existingTable(database), table.count > 0 else { continue }
                if policy.volatileOnly && table.volatileCount == 0 { continue }
                let entry = table.entry(at: Int.random(in: 0..<table.count, using: &stripe.random))
                let expireAt = entry.pointee.meta.expireAt
                if policy.volatileOnly && expireAt == nil { continue }
                sampled += 1
                let score: Double
                switch policy {
                case .allKeysLRU, .volatileLRU:
                    score = Double(idleSeconds(access: entry.pointee.meta.access, now: now))
                case .allKeysLFU, .volatileLFU:
                    score = 255 - Double(frequency(access: entry.pointee.meta.access, now: now))
                case .volatileTTL:
                    score = -Double(expireAt ?? .max)
                case .allKeysRandom, .volatileRandom, .noEviction:
                    score = 0
                }
                if best == nil || score > best!.score {
                    best = Victim(stripe: stripeIndex, database: database, key: KeyRef(entry.pointee.key), score: score)
                }
                if policy == .allKeysRandom || policy == .volatileRandom { break }
            }
            unlock(stripe: stripeIndex)
            if best != nil && (policy == .allKeysRandom || policy == .volatileRandom) { break }
        }
        return best
    }
}
