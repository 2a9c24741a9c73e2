// CLIENT PAUSE (redis networking.c pauseActions): for a while, clients' write commands (WRITE) or all their commands
// (ALL) are held back, and the keyspace removes no expired or evicted key, so that a primary's data and replication
// stream stand still (a failover hands over without losing writes). The dispatcher reads `mode` (one relaxed load)
// before each command; a held command is parked here with its connection suspended, and runs, in arrival order, when
// CLIENT UNPAUSE or the deadline ends the pause. Replicas' links to their primary are never paused.
import CacheStore
import NIOCore
import RESPServer
import Synchronization

/// What a pause holds back.
enum ClientPauseMode: Int, Sendable, Comparable {
    case none = 0
    /// Commands that write or may replicate (PUBLISH, PFCOUNT, EVAL without `no-writes`), EXEC of such commands.
    case write = 1
    /// Every command.
    case all = 2

    static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A command held back by a pause, with what it needs to run later.
struct PostponedCommand: Sendable {
    let session: ClientSession
    let arguments: CommandArguments
    let protocolVersion: RESPVersion
}

/// The node's pause state and the commands waiting for its end.
final class ClientPause: Sendable {
    private struct State {
        var mode = ClientPauseMode.none
        /// When the pause ends, unix ms.
        var endMilliseconds: Int64 = 0
        var postponed: [PostponedCommand] = []
        /// Bumped by every change of the deadline, so that a timer for an older deadline does nothing.
        var generation = 0
    }

    private let state = Mutex(State())
    private let modeStorage = Atomic<Int>(ClientPauseMode.none.rawValue)
    private let postponedCountStorage = Atomic<Int>(0)

    /// What is paused now (a relaxed load; the deadline is checked separately).
    var mode: ClientPauseMode {
        @inline(__always) get { ClientPauseMode(rawValue: modeStorage.load(ordering: .relaxed)) ?? .none }
    }

    /// How many commands wait for the pause to end (INFO counts them as blocked clients, as redis does).
    var postponedCount: Int { postponedCountStorage.load(ordering: .relaxed) }

    /// When the current pause ends (unix ms), 0 if none.
    var endMilliseconds: Int64 { state.withLock { $0.mode == .none ? 0 : $0.endMilliseconds } }

    /// Pauses `mode` until `end` (unix ms), as redis combines pauses: the later deadline and the stricter mode of
    /// a pause already running win. Returns the deadline now in force and a generation for its timer.
    func pause(_ mode: ClientPauseMode, until end: Int64, keyspace: Keyspace) -> (end: Int64, generation: Int) {
        state.withLock { state in
            keyspace.keyRemovalPaused = true
            if state.mode == .none {
                state.mode = mode
                state.endMilliseconds = end
            } else {
                state.mode = max(state.mode, mode)
                state.endMilliseconds = max(state.endMilliseconds, end)
            }
            state.generation += 1
            modeStorage.store(state.mode.rawValue, ordering: .relaxed)
            return (state.endMilliseconds, state.generation)
        }
    }

    /// Ends the pause (CLIENT UNPAUSE, or its deadline: `onlyIfDueAt` a time, with the timer's `generation`) and
    /// returns the commands that waited, in arrival order; `nil` if there was nothing to end.
    func unpause(onlyIfDueAt now: Int64? = nil, generation: Int? = nil, keyspace: Keyspace) -> [PostponedCommand]? {
        state.withLock { state -> [PostponedCommand]? in
            guard state.mode != .none else { return nil }
            if let now, now < state.endMilliseconds { return nil }
            if let generation, generation != state.generation { return nil }
            keyspace.keyRemovalPaused = false
            state.mode = .none
            state.endMilliseconds = 0
            state.generation += 1
            modeStorage.store(ClientPauseMode.none.rawValue, ordering: .relaxed)
            let waiting = state.postponed
            state.postponed = []
            postponedCountStorage.store(0, ordering: .relaxed)
            return waiting
        }
    }

    /// Parks `command` until the pause ends; `false` (nothing parked) if it ended meanwhile.
    func postpone(_ command: PostponedCommand) -> Bool {
        state.withLock { state in
            guard state.mode != .none else { return false }
            state.postponed.append(command)
            postponedCountStorage.store(state.postponed.count, ordering: .relaxed)
            return true
        }
    }

    /// How long until the pause of timer `generation` ends (ms from `now`), `nil` if that pause is over or changed.
    func remaining(at now: Int64, generation: Int) -> Int64? {
        state.withLock { state in
            guard state.mode != .none, state.generation == generation else { return nil }
            return state.endMilliseconds - now
        }
    }

    /// Forgets what `session` had waiting (its connection closed).
    func forget(_ session: ClientSession) {
        guard postponedCount > 0 else { return }
        state.withLock { state in
            state.postponed.removeAll { $0.session === session }
            postponedCountStorage.store(state.postponed.count, ordering: .relaxed)
        }
    }
}

extension NodeState {
    /// CLIENT PAUSE: pauses `mode` for `timeout` ms from now (combined with a pause already running), with a timer on
    /// `timerLoop` that ends it.
    func pauseClients(_ mode: ClientPauseMode, forMilliseconds timeout: Int64, timerLoop: any EventLoop) {
        let now = clock.nowMilliseconds()
        let (end, generation) = clientPause.pause(mode, until: now + timeout, keyspace: keyspace)
        let node = self
        timerLoop.scheduleTask(in: .milliseconds(max(0, end - now))) {
            NodeDispatcher.endPause(node: node, dueAt: node.clock.nowMilliseconds(), generation: generation, timerLoop: timerLoop)
        }
    }
}
