// redis's busy script (scriptIsTimedout): once a script or function has run for busy-reply-threshold milliseconds,
// other clients are answered -BUSY instead of waiting, except for the commands that stop it or that a connection
// needs (SCRIPT KILL, FUNCTION KILL and STATS, SHUTDOWN NOSAVE, AUTH, HELLO, MULTI, DISCARD, RESET, QUIT); commands
// already waiting for the keys it holds give up with the same error. The script's Lua hook reports it (on the
// script's thread); the run clears it when the script ends.
import Synchronization

/// Whether a script or function is busy, and which.
final class BusyScript: Sendable {
    enum Kind: UInt8 {
        case none = 0, eval, function
    }

    static let evalRefusal = CommandError(
        code: "BUSY", "Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
    static let functionRefusal = CommandError(
        code: "BUSY", "Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.")

    private let state = Atomic<UInt8>(0)
    private let abandoned = Atomic<Bool>(false)

    /// The busy script's kind, or `.none`.
    var kind: Kind { Kind(rawValue: state.load(ordering: .relaxed)) ?? .none }
    /// One relaxed load: whether commands must be refused.
    var isBusy: Bool { state.load(ordering: .relaxed) != 0 }

    /// The -BUSY error for the running kind (redis slowevalerr / slowscripterr).
    var refusal: CommandError { kind == .function ? Self.functionRefusal : Self.evalRefusal }

    /// The running script has passed the threshold.
    func report(_ kind: Kind) {
        state.store(kind.rawValue, ordering: .releasing)
    }

    /// Ends the busy state once the script ended; returns whether SHUTDOWN NOSAVE abandoned it (its writes are then
    /// not replicated, as redis exits before they are).
    func scriptEnded() -> Bool {
        state.store(0, ordering: .releasing)
        return abandoned.exchange(false, ordering: .acquiringAndReleasing)
    }

    /// SHUTDOWN NOSAVE: the script is to be stopped whatever it wrote, and its writes dropped.
    func abandon() {
        abandoned.store(true, ordering: .releasing)
    }
}
