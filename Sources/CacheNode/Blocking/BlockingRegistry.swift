// Clients blocked in BLPOP/BRPOP/BLMOVE/BZPOPMIN… (skeleton: the list family fills it in).
public import CacheStore
public import Synchronization

/// Blocked clients by the keys they wait on.
public final class BlockingRegistry: Sendable {
    private let waiterCount = Atomic<Int>(0)

    init() {}

    /// Whether any client is blocked (writers skip recording ready keys otherwise).
    public var hasWaiters: Bool { waiterCount.load(ordering: .relaxed) > 0 }

    /// Keys that may now satisfy blocked clients.
    func signal(_ keys: [DatabaseKey], node: NodeState) {}

    /// Removes a closing client's wait.
    func cancel(_ session: ClientSession) {}
}
