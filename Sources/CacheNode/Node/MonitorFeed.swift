// MONITOR (redis replicationFeedMonitors): every command the node runs, as one line per command, to each client in
// monitor mode, e.g. `+1700000000.123456 [0 127.0.0.1:50412] "set" "k" "v"`. The dispatcher asks `isActive` per
// command (one relaxed atomic load) and formats nothing while nobody monitors. Lines reach each monitor through the
// same per-loop outboxes as pub/sub messages, so they keep the order the commands ran in on any one thread.
import CacheStore
import NIOCore
import RESPServer
import Synchronization

/// The clients in monitor mode and the feed of executed commands to them.
final class MonitorFeed: Sendable {
    private struct State {
        var outboxes: [ObjectIdentifier: Outbox] = [:]
        var flushers: [ObjectIdentifier: LoopFlusher] = [:]
    }

    private let state = Mutex(State())
    private let monitorCount = Atomic<Int>(0)

    /// Whether any client monitors (checked before formatting a line).
    var isActive: Bool { monitorCount.load(ordering: .relaxed) > 0 }

    /// Puts `session` in monitor mode (MONITOR); a second MONITOR changes nothing.
    func add(_ session: ClientSession) {
        let added = state.withLock { state -> Bool in
            let id = ObjectIdentifier(session)
            guard state.outboxes[id] == nil else { return false }
            let loop = session.connection.eventLoop
            let flusher = state.flushers[ObjectIdentifier(loop)] ?? LoopFlusher(loop: loop)
            state.flushers[ObjectIdentifier(loop)] = flusher
            state.outboxes[id] = Outbox(session: session, flusher: flusher)
            return true
        }
        if added {
            monitorCount.add(1, ordering: .relaxed)
            session.updateInfo { $0.isMonitor = true }
        }
    }

    /// Takes `session` out of monitor mode (RESET, or the connection closing).
    func remove(_ session: ClientSession) {
        guard isActive else { return }
        let removed = state.withLock { $0.outboxes.removeValue(forKey: ObjectIdentifier(session)) != nil }
        if removed {
            monitorCount.subtract(1, ordering: .relaxed)
            session.updateInfo { $0.isMonitor = false }
        }
    }

    /// Sends one executed command to every monitor. `microseconds`: when it ran (unix time); `client` nil for a
    /// command a script ran (shown as `lua`).
    func feed(_ arguments: CommandArguments, commandName: String, database: Int, client: ClientSession?, microseconds: Int64) {
        let outboxes = state.withLock { Array($0.outboxes.values) }
        guard !outboxes.isEmpty else { return }
        var line = ByteBuffer()
        line.reserveCapacity(64 + arguments.frame.readableBytes * 2)
        line.writeString("+\(microseconds / 1_000_000).")
        let fraction = String(microseconds % 1_000_000)
        line.writeString(String(repeating: "0", count: 6 - fraction.count) + fraction)
        line.writeString(" [\(database) \(client?.connection.remoteAddress ?? "lua")]")
        let redacted = CommandRedaction.redactedPositions(arguments, commandName: commandName)
        for index in 0..<arguments.count {
            line.writeStaticString(" ")
            if redacted.contains(index) {
                line.writeString("\"\(CommandRedaction.placeholder)\"")
            } else {
                arguments.withBytes(index) { Self.writeQuoted($0, into: &line) }
            }
        }
        line.writeStaticString("\r\n")
        for outbox in outboxes { outbox.enqueue(line) }
    }

    /// redis's `sdscatrepr`: in double quotes, `\\ \" \n \r \t \a \b` escaped, other unprintable bytes as `\xhh`.
    static func writeQuoted(_ bytes: UnsafeRawBufferPointer, into line: inout ByteBuffer) {
        let hex = Array("0123456789abcdef".utf8)
        line.writeInteger(UInt8(ascii: "\""))
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\\"): line.writeStaticString("\\\\")
            case UInt8(ascii: "\""): line.writeStaticString("\\\"")
            case 0x0A: line.writeStaticString("\\n")
            case 0x0D: line.writeStaticString("\\r")
            case 0x09: line.writeStaticString("\\t")
            case 0x07: line.writeStaticString("\\a")
            case 0x08: line.writeStaticString("\\b")
            case 0x20...0x7E: line.writeInteger(byte)
            default:
                line.writeStaticString("\\x")
                line.writeInteger(hex[Int(byte >> 4)])
                line.writeInteger(hex[Int(byte & 0x0F)])
            }
        }
        line.writeInteger(UInt8(ascii: "\""))
    }
}
