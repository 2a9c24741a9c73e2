// The mutex of a keyspace stripe. Stripes are locked in index order by the command dispatcher (one lock for
// single-key commands, several in order for multi-key ones, all of them for transactions), so lock and unlock are
// separate calls rather than a closure.
//
// Critical sections are a few hundred nanoseconds (one command on one stripe), so a waiter spins briefly before it
// sleeps (glibc's adaptive mutex): with a plain mutex, two event loops serving one hot key put every other lock
// through a futex wait and wake — two system calls and a context switch for a lock held far shorter than either.
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// A non-recursive mutex (pthread, adaptive where available) with explicit lock and unlock.
public final class StripeLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        #if canImport(Glibc)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        #endif
        let result = pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
        precondition(result == 0, "pthread_mutex_init failed: \(result)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Blocks until the lock is held.
    public func lock() { pthread_mutex_lock(mutexPointer) }

    /// Takes the lock if it is free, without waiting.
    public func tryLock() -> Bool { pthread_mutex_trylock(mutexPointer) == 0 }

    /// Takes the lock unless `abandon` says to stop waiting; it is asked after each 10 ms of waiting (a lock is held
    /// that long only by a long-running holder, such as a script). Returns whether the lock is held.
    public func lock(abandoningWhen abandon: () -> Bool) -> Bool {
        if pthread_mutex_trylock(mutexPointer) == 0 { return true }
        while true {
            var deadline = timespec()
            clock_gettime(CLOCK_REALTIME, &deadline)
            deadline.tv_nsec += 10_000_000
            if deadline.tv_nsec >= 1_000_000_000 {
                deadline.tv_sec += 1
                deadline.tv_nsec -= 1_000_000_000
            }
            // Spins a little first, as lock() does on this adaptive mutex.
            if pthread_mutex_timedlock(mutexPointer, &deadline) == 0 { return true }
            if abandon() { return false }
        }
    }
    /// Releases the lock.
    public func unlock() { pthread_mutex_unlock(mutexPointer) }

    var mutexPointer: UnsafeMutablePointer<pthread_mutex_t> { mutex }
}

/// A small, fast pseudo-random generator (SplitMix64) for sampling; seeded by the caller so tests are repeatable.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator from `seed`.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z &>> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z &>> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z &>> 31)
    }
}
