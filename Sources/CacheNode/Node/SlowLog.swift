// The slow log (redis slowlog.c): commands whose execution took at least `slowlog-log-slower-than` microseconds,
// newest first, at most `slowlog-max-len` of them, with their arguments trimmed as redis trims them (32 arguments,
// 128 bytes each) and passwords redacted. The dispatcher reads `threshold` (one relaxed load) after each command
// and appends here only for a command that was slow; SLOWLOG GET/LEN/RESET read and clear it.
import DequeModule
import RESPServer
import Synchronization

/// One logged command.
struct SlowLogEntry: Sendable {
    /// Increasing from 0 since the node started (RESET does not restart it).
    let id: Int
    /// When the command ended, unix seconds.
    let unixSeconds: Int64
    /// How long it ran, microseconds.
    let microseconds: Int64
    /// The arguments as logged: trimmed and redacted.
    let arguments: [[UInt8]]
    /// The client's `ip:port`.
    let clientAddress: String
    /// The client's name (CLIENT SETNAME), empty if none.
    let clientName: String
}

/// The slow log of a node.
final class SlowLog: Sendable {
    /// redis's SLOWLOG_ENTRY_MAX_ARGC: more arguments are summed up in the last one.
    static let maximumArguments = 32
    /// redis's SLOWLOG_ENTRY_MAX_STRING: longer arguments are cut, saying how much was left out.
    static let maximumArgumentLength = 128

    private struct State {
        var entries = Deque<SlowLogEntry>()
        var nextID = 0
        var maximumLength = 128
    }

    private let state = Mutex(State())
    private let thresholdStorage = Atomic<Int64>(10_000)

    /// `slowlog-log-slower-than`: the least duration logged, microseconds; negative when the log is off.
    var threshold: Int64 {
        @inline(__always) get { thresholdStorage.load(ordering: .relaxed) }
    }

    /// Applies `slowlog-log-slower-than` and `slowlog-max-len` (a shorter maximum drops the oldest entries).
    func configure(threshold: Int, maximumLength: Int) {
        thresholdStorage.store(Int64(threshold), ordering: .relaxed)
        state.withLock { state in
            state.maximumLength = max(0, maximumLength)
            while state.entries.count > state.maximumLength { state.entries.removeLast() }
        }
    }

    /// Logs a command that ran for `microseconds` if that reaches the threshold (redis slowlogPushEntryIfNeeded).
    func record(
        _ arguments: CommandArguments, commandName: String, microseconds: Int64, endedAtMicroseconds: Int64,
        clientAddress: String, clientName: String
    ) {
        let threshold = self.threshold
        guard threshold >= 0, microseconds >= threshold else { return }
        let logged = Self.loggedArguments(arguments, commandName: commandName)
        state.withLock { state in
            let entry = SlowLogEntry(
                id: state.nextID, unixSeconds: endedAtMicroseconds / 1_000_000, microseconds: microseconds,
                arguments: logged, clientAddress: clientAddress, clientName: clientName)
            state.nextID += 1
            state.entries.prepend(entry)
            while state.entries.count > state.maximumLength { state.entries.removeLast() }
        }
    }

    /// The newest `count` entries (all of them if `count` is nil), newest first.
    func newest(_ count: Int?) -> [SlowLogEntry] {
        state.withLock { state in Array(state.entries.prefix(count ?? state.entries.count)) }
    }

    /// How many entries the log holds.
    var count: Int { state.withLock { $0.entries.count } }

    /// Empties the log (entry ids keep counting).
    func reset() {
        state.withLock { $0.entries.removeAll() }
    }

    /// The arguments as redis logs them: at most 32 (the last one then says how many more there were), each cut to
    /// 128 bytes (saying how many more it had), passwords as `(redacted)`.
    static func loggedArguments(_ arguments: CommandArguments, commandName: String) -> [[UInt8]] {
        let redacted = CommandRedaction.redactedPositions(arguments, commandName: commandName)
        let kept = min(arguments.count, maximumArguments)
        var logged: [[UInt8]] = []
        logged.reserveCapacity(kept)
        for index in 0..<kept {
            if kept < arguments.count && index == kept - 1 {
                logged.append(Array("... (\(arguments.count - kept + 1) more arguments)".utf8))
            } else if redacted.contains(index) {
                logged.append(Array(CommandRedaction.placeholder.utf8))
            } else {
                logged.append(arguments.withBytes(index) { bytes in
                    guard bytes.count > maximumArgumentLength else { return Array(bytes) }
                    return Array(bytes.prefix(maximumArgumentLength)) + Array("... (\(bytes.count - maximumArgumentLength) more bytes)".utf8)
                })
            }
        }
        return logged
    }
}
