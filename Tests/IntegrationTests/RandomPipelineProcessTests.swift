// Random pipelines against the real cache-node process with two event loops (`--threads 2`): six clients, each
// driven from a thread of its own, send random pipelines (1–20 commands per write) over a small shared key set, so
// that they contend on the same keys across both loops: blocked pops woken from the other loop, WATCH broken from the
// other loop, pub/sub delivered to the other loop, CLIENT KILL across loops, transactions, database swaps and
// flushes, RESET, QUIT, HELLO 2/3, CLIENT REPLY OFF/SKIP and malformed input. A closed client reconnects and goes on.
// Every pipeline ends with a trailer whose last reply is a unique `PING <token>`, so a client knows where its replies
// end whatever the random part did. Checked: every byte received parses as RESP (RESP3 types only after HELLO 3), the
// token arrives within 10 s unless the server closes the connection, pub/sub messages carry what was published (and
// come only while subscribed, never after the RESET that ended the subscription), a fresh connection gets PONG throughout and
// afterwards, the process survives, and a counter per client in database 15 (which the mix never selects) accounts
// for every INCR reply. A seed fixes each client's commands (not the interleaving); a failure names the seed, the
// client and the pipeline. More seeds:
// `RANDOM_PIPELINE_PROCESS_SEEDS=1-30 swift test --skip-build --filter RandomPipelineProcessTests`.
import CacheStore
import Foundation
import LoopbackTestSupport
import Testing

@Suite(.serialized)
struct RandomPipelineProcessTests {
    /// The seeds CI runs; `RANDOM_PIPELINE_PROCESS_SEEDS` (`first-last`, or one seed) runs others.
    static let seeds: [UInt64] = {
        if let text = ProcessInfo.processInfo.environment["RANDOM_PIPELINE_PROCESS_SEEDS"] {
            let bounds = text.split(separator: "-").compactMap { UInt64($0) }
            if bounds.count == 2 && bounds[0] <= bounds[1] { return Array(bounds[0]...bounds[1]) }
            if bounds.count == 1 { return bounds }
        }
        return [1, 2, 3, 4, 5]
    }()

    /// The part of a node's log that says why it stopped: from the Swift runtime's crash report on (its first
    /// threads' frames), else the tail.
    static func crashReport(_ log: String) -> String {
        guard let start = log.range(of: "Program crashed") ?? log.range(of: "Fatal error") else { return String(log.suffix(2_000)) }
        return String(log[start.lowerBound...].prefix(8_000))
    }

    @Test(arguments: seeds)
    func randomPipelinesFromClientsOnBothEventLoopsNeverStopTheNode(seed: UInt64) throws {
        let node = try CacheNodeProcess(arguments: ["--threads", "2"])
        // SIGKILL: a deadlocked event loop would also hang a graceful shutdown, and this test must fail, not hang.
        defer { node.kill9() }
        let run = PipelineRun(seed: seed, port: node.port, clients: 6, pipelinesPerClient: 300)
        let finished = run.runClientsAndProbe(timeoutSeconds: 120)
        if !finished {
            Issue.record("seed \(seed): the clients did not finish within 120 s; node log tail:\n\(node.log.suffix(2_000))")
            node.kill9()
            _ = run.waitForClients(timeoutSeconds: 30)
        }
        for failure in run.failures { Issue.record(Comment(rawValue: failure)) }
        // A message after the subscriber's RESET answered, in the protocol it had before: PUBLISH queued it after
        // copying the subscriber tables, until it looked up and queued under one lock.
        if let late = run.lateMessages.first {
            Issue.record("seed \(seed): \(run.lateMessages.count) pub/sub messages after RESET answered, the first: \(late)")
        }
        // The run did what it is for: most pipelines were answered to their token (a close ends the others).
        if run.failures.isEmpty {
            #expect(run.answeredPipelines * 2 > run.clientCount * run.pipelinesPerClient, "seed \(seed): \(run.summary)")
        }
        #expect(node.process.isRunning, "seed \(seed): cache-node exited; log:\n\(Self.crashReport(node.log))")
        guard finished && node.process.isRunning else { return }

        // Afterwards a fresh connection is answered, and the keyspace and INFO answer.
        let verifier = try RawConnection(port: node.port, receiveTimeout: 10)
        #expect(try verifier.command("PING") == .simple("PONG"), "seed \(seed)")
        guard case .integer(let keys)? = try verifier.command("DBSIZE"), keys >= 0 else {
            Issue.record("seed \(seed): DBSIZE did not answer with an integer")
            return
        }
        guard case .bulk(let text)? = try verifier.command("INFO"),
            String(decoding: text, as: UTF8.self).contains("connected_clients:")
        else {
            Issue.record("seed \(seed): INFO did not answer with the server's sections")
            return
        }
        // Every client's counter accounts for the INCR replies it got.
        #expect(try verifier.command("SELECT", "15") == .simple("OK"), "seed \(seed)")
        var counters: [Int] = []
        for client in 0..<run.clientCount {
            switch try verifier.command("GET", PipelineRun.counterKey(client)) {
            case .null?: counters.append(0)
            case .bulk(let bytes)? where Int(String(decoding: bytes, as: UTF8.self)) != nil:
                counters.append(Int(String(decoding: bytes, as: UTF8.self))!)
            case let other:
                Issue.record("seed \(seed): GET \(PipelineRun.counterKey(client)) answered \(String(describing: other))")
                return
            }
        }
        for failure in run.checkCounters(finalValues: counters) { Issue.record(Comment(rawValue: failure)) }
        // Every client the run opened is gone from the node once its socket closed: none is left registered.
        try eventually("seed \(seed): only the verifier is connected", seconds: 10) { try verifier.connectedClients() == 1 }
    }
}

// MARK: - the run: client threads, a probe thread, what they found

/// The state the client threads and the probe share (behind a lock), and the checks made over it at the end.
private final class PipelineRun: @unchecked Sendable {
    let seed: UInt64
    let port: Int
    let clientCount: Int
    let pipelinesPerClient: Int
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var ids: [Int]
    private var recordedFailures: [String] = []
    private var ledgers: [CounterLedger]
    /// When each pipeline holding FLUSHALL was sent and when its replies ended: the flush ran in between.
    private var flushWindows: [(start: ContinuousClock.Instant, end: ContinuousClock.Instant)] = []
    private var recordedLateMessages: [String] = []
    private var clientsRunning = 0
    /// What the clients saw, by kind: pipelines answered to their token, closes, replies, messages, RESP3 frames.
    private var counts: [String: Int] = [:]

    init(seed: UInt64, port: Int, clients: Int, pipelinesPerClient: Int) {
        self.seed = seed
        self.port = port
        clientCount = clients
        self.pipelinesPerClient = pipelinesPerClient
        ids = Array(repeating: 0, count: clients)
        ledgers = Array(repeating: CounterLedger(), count: clients)
    }

    /// The counter only client `index` increments, in database 15.
    static func counterKey(_ index: Int) -> String { "counter:\(index)" }

    var failures: [String] { lock.withLock { recordedFailures } }

    /// Whether a failure was recorded (the clients then stop).
    var hasFailed: Bool { lock.withLock { !recordedFailures.isEmpty } }

    func fail(_ message: String) { lock.withLock { recordedFailures.append(message) } }

    /// Pub/sub messages that arrived after the subscriber's RESET had answered (a known race, see the test).
    var lateMessages: [String] { lock.withLock { recordedLateMessages } }

    func noteLateMessage(_ message: String) { lock.withLock { recordedLateMessages.append(message) } }

    func count(_ what: String, _ amount: Int = 1) { lock.withLock { counts[what, default: 0] += amount } }

    var answeredPipelines: Int { lock.withLock { counts["tokens", default: 0] } }

    var summary: String {
        lock.withLock { counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }
    }

    /// The client ids now connected (stale ones too: killing those kills nobody).
    var clientIDs: [Int] { lock.withLock { ids } }

    func setID(_ id: Int, of client: Int) { lock.withLock { ids[client] = id } }

    func noteFlush(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) {
        lock.withLock { flushWindows.append((start, end)) }
    }

    func finish(client: Int, ledger: CounterLedger) {
        lock.withLock {
            ledgers[client] = ledger
            clientsRunning -= 1
        }
    }

    private var clientsDone: Bool { lock.withLock { clientsRunning == 0 } }

    /// Starts a thread per client and the probe, and waits up to `timeout` for the clients to finish; false if not.
    func runClientsAndProbe(timeoutSeconds: Int) -> Bool {
        lock.withLock { clientsRunning = clientCount }
        for index in 0..<clientCount {
            group.enter()
            let thread = Thread { [self] in
                PipelineClient(index: index, run: self).drive()
                group.leave()
            }
            thread.name = "pipeline client \(index)"
            thread.start()
        }
        group.enter()
        let probe = Thread { [self] in
            probeUntilClientsAreDone()
            group.leave()
        }
        probe.name = "pipeline probe"
        probe.start()
        return waitForClients(timeoutSeconds: timeoutSeconds)
    }

    func waitForClients(timeoutSeconds: Int) -> Bool {
        group.wait(timeout: .now() + .seconds(timeoutSeconds)) == .success
    }

    /// A fresh connection gets PONG within 10 s, every 100 ms while the clients run: the node never stops serving.
    private func probeUntilClientsAreDone() {
        let started = ContinuousClock.now
        func when() -> String { "\(started.duration(to: ContinuousClock.now)) into the run" }
        while !clientsDone {
            do {
                let connection = try WireConnection(port: port)
                try connection.send(RawConnection.encode([Array("PING".utf8)]))
                let next = try connection.next(before: ContinuousClock.now.advanced(by: .seconds(10)))
                guard case .frame(.simple("PONG")) = next else {
                    fail("seed \(seed): a fresh connection got \(next) instead of PONG \(when())")
                    return
                }
            } catch {
                fail("seed \(seed): a fresh connection failed \(when()): \(error)")
                return
            }
            usleep(100_000)
        }
    }

    /// The counters' final values against what each client saw; a reset to zero needs a FLUSHALL that may have run then.
    func checkCounters(finalValues: [Int]) -> [String] {
        lock.withLock {
            var problems: [String] = []
            for (index, ledger) in ledgers.enumerated() {
                var ledger = ledger
                let counter = "seed \(seed) client \(index): \(Self.counterKey(index))"
                if let problem = ledger.checkFinal(finalValues[index], at: ContinuousClock.now) {
                    problems.append("\(counter) is \(finalValues[index]) at the end: \(problem)")
                }
                let unexplained = ledger.resets.filter { reset in
                    !flushWindows.contains { $0.start < reset.end && $0.end > reset.start }
                }
                for reset in unexplained {
                    problems.append("\(counter) \(reset.what), but no FLUSHALL ran then")
                }
            }
            return problems
        }
    }
}

/// What one client knows about its counter: the last value an INCR answered, how many INCRs went out since without an
/// answer (the connection closed first: they may or may not have run), and the drops to a low value it saw, each of
/// which only a FLUSHALL in its time window explains.
private struct CounterLedger: Sendable {
    struct Reset: Sendable {
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant
        var what: String
    }

    private(set) var confirmed = 0
    /// When the pipeline whose INCR answered `confirmed` was sent.
    private var confirmedSentAt: ContinuousClock.Instant?
    private(set) var unconfirmed = 0
    private(set) var resets: [Reset] = []

    mutating func sentWithoutAnswer() { unconfirmed += 1 }

    /// An INCR sent at `sentAt` answered `value`; returns what is wrong with it, if anything.
    mutating func answer(_ value: Int, sentAt: ContinuousClock.Instant, at now: ContinuousClock.Instant) -> String? {
        defer {
            confirmed = value
            confirmedSentAt = sentAt
            unconfirmed = 0
        }
        if value > confirmed && value <= confirmed + unconfirmed + 1 { return nil }
        if value >= 1 && value <= unconfirmed + 1, let start = confirmedSentAt {
            let what = "went from \(confirmed) to \(value) (\(unconfirmed) unanswered INCRs)"
            resets.append(Reset(start: start, end: now, what: what))
            return nil
        }
        return "INCR answered \(value) after \(confirmed) with \(unconfirmed) unanswered INCRs in between"
    }

    /// The counter's value at the end; returns what is wrong with it, if anything.
    mutating func checkFinal(_ value: Int, at now: ContinuousClock.Instant) -> String? {
        if value >= confirmed && value <= confirmed + unconfirmed { return nil }
        if value >= 0 && value <= unconfirmed, let start = confirmedSentAt {
            let what = "ended at \(value) after \(confirmed) (\(unconfirmed) unanswered INCRs)"
            resets.append(Reset(start: start, end: now, what: what))
            return nil
        }
        return "the last INCR answered \(confirmed), \(unconfirmed) INCRs went unanswered after it"
    }
}

/// A failure that stops a client: its message names the seed, the client and the pipeline.
private struct PipelineFailure: Error {
    var message: String
}

// MARK: - one client

/// One client on its own thread: connects (again after every close), sends random pipelines each with its trailer,
/// and reads and checks everything the server sends back.
private final class PipelineClient {
    let index: Int
    let run: PipelineRun
    private var random: SplitMix64
    private var connection: WireConnection?
    private var id = 0
    private var ledger = CounterLedger()
    // What the connection may be in, from what was sent to it (since it opened or a trailer's RESET answered).
    private var maybeRESP3 = false
    /// The kinds of message (`message`, `pmessage`, `smessage`) the connection may be subscribed to.
    private var maybeSubscribedTo: Set<String> = []
    /// Whether anything was subscribed since the connection opened (only then can a late message come).
    private var everSubscribed = false
    private var maybeRepliesOff = false
    /// When and how `maybeSubscribedTo` last became empty (for the late-message report).
    private var unsubscribedSince = (at: ContinuousClock.now, how: "connect")

    init(index: Int, run: PipelineRun) {
        self.index = index
        self.run = run
        random = SplitMix64(seed: run.seed &* 1_000 &+ UInt64(index))
    }

    private func label(_ round: Int) -> String { "seed \(run.seed) client \(index) (id \(id)) pipeline \(round)" }

    func drive() {
        for round in 0..<run.pipelinesPerClient where !run.hasFailed {
            do {
                if connection == nil { try connect(round) }
                try sendAndCheckPipeline(round)
            } catch let failure as PipelineFailure {
                run.fail(failure.message)
            } catch {
                run.fail("\(label(round)): \(error)")
            }
        }
        connection?.close()
        run.finish(client: index, ledger: ledger)
    }

    /// Opens a connection and learns its id (nobody kills a client before it published its id).
    private func connect(_ round: Int) throws {
        let connection = try WireConnection(port: run.port)
        try connection.send(RawConnection.encode([Array("CLIENT".utf8), Array("ID".utf8)]))
        let next = try connection.next(before: ContinuousClock.now.advanced(by: .seconds(10)))
        guard case .frame(.integer(let id)) = next, id > 0 else {
            throw PipelineFailure(message: "\(label(round)): CLIENT ID on a new connection answered \(next)")
        }
        self.connection = connection
        self.id = id
        maybeRESP3 = false
        maybeSubscribedTo = []
        everSubscribed = false
        maybeRepliesOff = false
        unsubscribedSince = (ContinuousClock.now, "connect in pipeline \(round)")
        run.setID(id, of: index)
    }

    private func sendAndCheckPipeline(_ round: Int) throws {
        guard let connection else { return }
        let commands = PipelineMix.pipeline(&random, ids: run.clientIDs, own: id)
        for command in commands {
            switch (command.first?.uppercased(), command.count > 2 ? command[2].uppercased() : nil) {
            case ("HELLO", _): if command.count > 1 && command[1] == "3" { maybeRESP3 = true }
            case ("SUBSCRIBE", _): maybeSubscribedTo.insert("message")
            case ("PSUBSCRIBE", _): maybeSubscribedTo.insert("pmessage")
            case ("SSUBSCRIBE", _): maybeSubscribedTo.insert("smessage")
            case ("CLIENT", "OFF"), ("CLIENT", "SKIP"): maybeRepliesOff = true
            default: break
            }
        }
        everSubscribed = everSubscribed || !maybeSubscribedTo.isEmpty
        var bytes = commands.flatMap { RawConnection.encode($0.map { Array($0.utf8) }) }
        let malformed = Int.random(in: 0..<40, using: &random) == 0
        let token = "token-\(run.seed)-\(index)-\(round)"
        // The trailer: replies back on (RESET where CLIENT REPLY ON cannot be: a RESP2 subscriber with replies off),
        // the counter's INCR in database 15, back to a database of the mix, and the token.
        let resetsAnyway = Int.random(in: 0..<10, using: &random) == 0
        let trailerResets = (!maybeSubscribedTo.isEmpty && maybeRepliesOff) || resetsAnyway
        let trailer: [[String]] = [
            trailerResets ? ["RESET"] : ["CLIENT", "REPLY", "ON"], ["SELECT", "15"], ["INCR", PipelineRun.counterKey(index)],
            ["SELECT", String(Int.random(in: 0...2, using: &random))], ["PING", token],
        ]
        if malformed {
            bytes += Array(PipelineMix.malformed.randomElement(using: &random)!.utf8)
        } else {
            bytes += trailer.flatMap { RawConnection.encode($0.map { Array($0.utf8) }) }
        }
        let flushes = commands.contains { $0.first == "FLUSHALL" }
        let sentAt = ContinuousClock.now
        let sent = commands.map { $0.joined(separator: " ") }
        let what = "\(label(round)) sent \(sent)\(malformed ? " + malformed input" : "")"
        // Unless the token came back (and with it the INCR's answer), the INCR may or may not have run.
        var answered = false
        defer {
            if flushes { run.noteFlush(from: sentAt, to: ContinuousClock.now) }
            if !malformed && !answered { ledger.sentWithoutAnswer() }
        }

        // A connection another client killed may fail the send: what it still delivers is read and checked below.
        try? connection.send(bytes)
        var frames: [WireFrame] = []
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while true {
            let next: WireConnection.Next
            do {
                next = try connection.next(before: deadline)
            } catch {
                throw PipelineFailure(message: "\(what): the replies are not RESP after \(frames.count) of them: \(error)")
            }
            switch next {
            case .timedOut:
                throw PipelineFailure(
                    message: "\(what): neither the token's reply nor a close within 10 s (the node hangs?); "
                        + "\(frames.count) replies so far, the last: \(frames.suffix(4))")
            case .closed:
                if connection.pendingBytes > 0 {
                    throw PipelineFailure(
                        message: "\(what): the connection closed inside a reply (\(connection.pendingBytes) bytes of it); "
                            + "before it: \(frames.suffix(4))")
                }
                run.count(malformed ? "closedMalformed" : "closed")
                self.connection = nil
                connection.close()
                return
            case .frame(let frame):
                try check(frame, what: what, token: token)
                if frame.pubSubMessage != nil { run.count("messages") }
                if frame.usesRESP3 { run.count("resp3Frames") }
                if !malformed && frame.isPingReply(token) {
                    run.count("tokens")
                    run.count("replies", frames.count)
                    if trailerResets { run.count("trailerResets") }
                    answered = true
                    try checkTrailer(frames, what: what, sentAt: sentAt)
                    if trailerResets {
                        maybeRESP3 = false
                        if !maybeSubscribedTo.isEmpty {
                            unsubscribedSince = (ContinuousClock.now, "RESET in pipeline \(round)")
                        }
                        maybeSubscribedTo = []
                    }
                    maybeRepliesOff = false
                    return
                }
                frames.append(frame)
            }
        }
    }

    /// Checks one frame on its own: pub/sub messages as published (and only of a kind subscribed to since the last
    /// RESET, in the protocol since then), RESP3 types only after HELLO 3, no token of another pipeline.
    private func check(_ frame: WireFrame, what: String, token: String) throws {
        if let message = frame.pubSubMessage {
            if !PipelineMix.publishedMessages.contains(message) && !PipelineMix.isKeyspaceNotification(message) {
                throw PipelineFailure(message: "\(what): a pub/sub message nobody published: \(frame)")
            }
            if !everSubscribed {
                throw PipelineFailure(message: "\(what): a pub/sub message \(frame) on a connection that never subscribed")
            }
            if !maybeSubscribedTo.contains(message[0]) || (frame.isPush && !maybeRESP3) {
                // After a trailer's RESET answered, with nothing of its kind subscribed again: published before the
                // RESET, delivered after it, in the protocol of before it (a RESP3 push on a RESP2 connection again).
                let after = unsubscribedSince.at.duration(to: ContinuousClock.now)
                run.noteLateMessage("\(what): \(frame) arrived \(after) after the \(unsubscribedSince.how) had answered")
                return
            }
        }
        if frame.usesRESP3 && !maybeRESP3 {
            throw PipelineFailure(message: "\(what): a RESP3 reply \(frame) on a RESP2 connection")
        }
        if let foreign = frame.tokens.first(where: { $0 != token }) {
            throw PipelineFailure(message: "\(what): a reply meant for another pipeline (\(foreign)): \(frame)")
        }
    }

    /// The trailer's replies before the token: SELECT 15, INCR, SELECT (pub/sub messages aside). The INCR answers
    /// the counter's next value, or the RESP2 subscriber error (then neither SELECT ran either).
    private func checkTrailer(_ frames: [WireFrame], what: String, sentAt: ContinuousClock.Instant) throws {
        let replies = frames.filter { $0.pubSubMessage == nil && !$0.isPush }
        guard replies.count >= 3 else {
            throw PipelineFailure(message: "\(what): only \(replies.count) replies before the token: \(replies)")
        }
        let last = Array(replies.suffix(3))
        switch (last[0], last[1], last[2]) {
        case (.simple("OK"), .integer(let value), .simple("OK")):
            if let problem = ledger.answer(value, sentAt: sentAt, at: ContinuousClock.now) {
                throw PipelineFailure(message: "\(what): \(PipelineRun.counterKey(index)): \(problem)")
            }
        case (.error(let first), .error(let second), .error(let third))
        where [first, second, third].allSatisfy { $0.hasPrefix("ERR Can't execute") }:
            break
        default:
            throw PipelineFailure(message: "\(what): the trailer's SELECT 15, INCR, SELECT answered \(last)")
        }
    }
}

// MARK: - the command mix

/// Random commands over five keys (two in one hash slot), blocking ones with short timeouts, transactions as blocks
/// that always end in EXEC or DISCARD (so no MULTI is left open for the trailer), and malformed input. Never database
/// 15 and never a counter key (FLUSHALL aside, which the counter check allows for), no maxmemory (eviction could take
/// a counter).
private enum PipelineMix {
    static let keys = ["k0", "k1", "k2", "{t}a", "{t}b"]
    /// Every pub/sub message a subscriber may get: `[kind, (pattern,) channel, payload]`.
    static let publishedMessages: Set<[String]> = [
        ["message", "ch", "hello"], ["pmessage", "c*", "ch", "hello"], ["smessage", "{t}s", "m"],
    ]
    /// Whether `message` is a keyspace notification the mix's writes can cause: on `__keyspace@<db>__:<key>` (a key
    /// of the mix or a counter) carrying an event name, or on `__keyevent@<db>__:<event>` carrying such a key.
    static func isKeyspaceNotification(_ message: [String]) -> Bool {
        let channel: String, payload: String
        switch message.count {
        case 3 where message[0] == "message": (channel, payload) = (message[1], message[2])
        case 4 where message[0] == "pmessage" && message[1] == "__key*__:*": (channel, payload) = (message[2], message[3])
        default: return false
        }
        func isKey(_ text: String) -> Bool { keys.contains(text) || text.hasPrefix("counter") }
        func isEvent(_ text: String) -> Bool { !text.isEmpty && text.allSatisfy { $0.isLowercase || $0 == "_" } }
        for (prefix, name, body) in [("__keyspace@", isKey, isEvent), ("__keyevent@", isEvent, isKey)] {
            guard channel.hasPrefix(prefix), let separator = channel.range(of: "__:") else { continue }
            let database = channel[channel.index(channel.startIndex, offsetBy: prefix.count)..<separator.lowerBound]
            return !database.isEmpty && database.allSatisfy(\.isNumber) && name(String(channel[separator.upperBound...])) && body(payload)
        }
        return false
    }

    /// Input the server must answer with a protocol error and a close.
    static let malformed = [
        "*2\r\n$3\r\nGET\r\n$-5\r\n", "*x\r\n", "GET \"unbalanced\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
    ]

    /// A command drawn with `random`, given the id of each client (0 before it first connected) and its own id.
    typealias Entry = @Sendable (inout SplitMix64, _ ids: [Int], _ own: Int) -> [String]

    private static func key(_ random: inout SplitMix64) -> String { keys.randomElement(using: &random)! }
    private static func number(_ random: inout SplitMix64) -> String { String(Int.random(in: -3...20, using: &random)) }
    private static func timeout(_ random: inout SplitMix64) -> String {
        ["0.01", "0.02", "0.05", "0.1"].randomElement(using: &random)!
    }

    static let entries: [Entry] = [
        // strings and keys
        { r, _, _ in ["SET", key(&r), "v\(number(&r))"] },
        { r, _, _ in ["SET", key(&r), "x", "PX", String(Int.random(in: 1...50, using: &r))] },
        { r, _, _ in ["SET", key(&r), "y", "NX", "GET"] }, { r, _, _ in ["GET", key(&r)] },
        { r, _, _ in ["GETDEL", key(&r)] },
        { r, _, _ in ["GETEX", key(&r), "PX", "20"] }, { r, _, _ in ["INCR", key(&r)] },
        { r, _, _ in ["INCRBYFLOAT", key(&r), "1.5"] }, { r, _, _ in ["APPEND", key(&r), "ab"] },
        { r, _, _ in ["SETRANGE", key(&r), number(&r), "zz"] }, { r, _, _ in ["MSET", key(&r), "1", key(&r), "2"] },
        { r, _, _ in ["MGET", key(&r), key(&r), key(&r)] }, { r, _, _ in ["DEL", key(&r), key(&r)] },
        { r, _, _ in ["UNLINK", key(&r)] }, { r, _, _ in ["EXISTS", key(&r), key(&r)] }, { r, _, _ in ["TYPE", key(&r)] },
        { r, _, _ in ["RENAME", key(&r), key(&r)] }, { r, _, _ in ["COPY", key(&r), key(&r), "REPLACE"] },
        { r, _, _ in ["MOVE", key(&r), String(Int.random(in: 1...2, using: &r))] },
        { r, _, _ in ["EXPIRE", key(&r), number(&r)] },
        { r, _, _ in ["PEXPIRE", key(&r), "5"] }, { r, _, _ in ["PERSIST", key(&r)] }, { r, _, _ in ["TTL", key(&r)] },
        { r, _, _ in ["OBJECT", "ENCODING", key(&r)] }, { _, _, _ in ["RANDOMKEY"] },
        { _, _, _ in ["SCAN", "0", "COUNT", "3"] },
        { _, _, _ in ["KEYS", "*"] }, { _, _, _ in ["DBSIZE"] }, { r, _, _ in ["DUMP", key(&r)] },
        { r, _, _ in ["GETSET", key(&r), "w"] }, { r, _, _ in ["RENAMENX", key(&r), key(&r)] },
        { r, _, _ in ["SETEX", key(&r), "1", "v"] },
        // databases
        { r, _, _ in ["SELECT", String(Int.random(in: 0...2, using: &r))] }, { _, _, _ in ["SWAPDB", "0", "1"] },
        { _, _, _ in ["SWAPDB", "1", "2"] }, { _, _, _ in ["FLUSHDB"] }, { _, _, _ in ["FLUSHALL"] },
        // lists, and blocking pops that pushes from the other loop wake
        { r, _, _ in ["LPUSH", key(&r), "a", "b"] }, { r, _, _ in ["RPUSH", key(&r), "c"] },
        { r, _, _ in ["RPUSH", key(&r), "d", "e", "f"] }, { r, _, _ in ["LPOP", key(&r), "2"] },
        { r, _, _ in ["LRANGE", key(&r), "0", "-1"] }, { r, _, _ in ["LMOVE", key(&r), key(&r), "LEFT", "RIGHT"] },
        { r, _, _ in ["LINSERT", key(&r), "BEFORE", "a", "n"] }, { r, _, _ in ["LSET", key(&r), "0", "s"] },
        { r, _, _ in ["LMPOP", "2", key(&r), key(&r), "LEFT"] }, { r, _, _ in ["BLPOP", key(&r), key(&r), timeout(&r)] },
        { r, _, _ in ["BRPOP", key(&r), timeout(&r)] },
        { r, _, _ in ["BLMOVE", key(&r), key(&r), "RIGHT", "LEFT", timeout(&r)] },
        { r, _, _ in ["BLMPOP", timeout(&r), "2", key(&r), key(&r), "RIGHT", "COUNT", "2"] },
        { r, _, _ in ["BRPOPLPUSH", key(&r), key(&r), timeout(&r)] },
        // hashes, sets, sorted sets
        { r, _, _ in ["HSET", key(&r), "f", number(&r), "g", "1"] }, { r, _, _ in ["HINCRBY", key(&r), "f", "2"] },
        { r, _, _ in ["HGETALL", key(&r)] }, { r, _, _ in ["HDEL", key(&r), "f"] },
        { r, _, _ in ["HRANDFIELD", key(&r), number(&r), "WITHVALUES"] }, { r, _, _ in ["SADD", key(&r), "m", number(&r)] },
        { r, _, _ in ["SMEMBERS", key(&r)] }, { r, _, _ in ["SPOP", key(&r)] },
        { r, _, _ in ["SINTERSTORE", key(&r), key(&r), key(&r)] }, { r, _, _ in ["SMOVE", key(&r), key(&r), "m"] },
        { r, _, _ in ["SUNIONSTORE", key(&r), key(&r), key(&r)] }, { r, _, _ in ["ZADD", key(&r), number(&r), "a"] },
        { r, _, _ in ["ZADD", key(&r), "XX", "INCR", "1", "a"] }, { r, _, _ in ["ZRANGE", key(&r), "0", "-1", "WITHSCORES"] },
        { r, _, _ in ["ZRANGESTORE", key(&r), key(&r), "0", "-1"] },
        { r, _, _ in ["ZUNIONSTORE", key(&r), "2", key(&r), key(&r)] }, { r, _, _ in ["ZPOPMIN", key(&r)] },
        { r, _, _ in ["ZMPOP", "2", key(&r), key(&r), "MIN"] },
        // bitmaps (their writes grow or change strings in place)
        { r, _, _ in ["SETBIT", key(&r), String(Int.random(in: 0...300, using: &r)), Bool.random(using: &r) ? "1" : "0"] },
        { r, _, _ in ["BITFIELD", key(&r), "OVERFLOW", "SAT", "INCRBY", "u8", "#1", "9", "GET", "i16", "0"] },
        { r, _, _ in ["BITCOUNT", key(&r), "0", "-1", "BIT"] }, { r, _, _ in ["BITPOS", key(&r), "0", "1"] },
        { r, _, _ in ["BITOP", "XOR", key(&r), key(&r), key(&r)] }, { r, _, _ in ["GETBIT", key(&r), "3"] },
        // HyperLogLog, geo, SORT (whose BY and GET patterns lock the whole keyspace)
        { r, _, _ in ["PFADD", key(&r), "a", number(&r)] }, { r, _, _ in ["PFCOUNT", key(&r), key(&r)] },
        { r, _, _ in ["PFMERGE", key(&r), key(&r)] },
        { r, _, _ in ["GEOADD", key(&r), "13.36", "38.11", "p", "15.08", "37.5", number(&r)] },
        { r, _, _ in ["GEOSEARCH", key(&r), "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHDIST"] },
        { r, _, _ in ["SORT", key(&r), "BY", "k*", "GET", "#", "ALPHA", "LIMIT", "0", "5"] },
        { r, _, _ in ["SORT", key(&r), "ALPHA", "STORE", key(&r)] },
        // transactions outside a block: a WATCH that another loop may break, strays that are errors
        { r, _, _ in ["WATCH", key(&r), key(&r)] }, { _, _, _ in ["UNWATCH"] }, { _, _, _ in ["EXEC"] },
        { _, _, _ in ["DISCARD"] },
        // pub/sub, delivered to subscribers on either loop
        { _, _, _ in ["SUBSCRIBE", "ch"] }, { _, _, _ in ["PSUBSCRIBE", "c*"] }, { _, _, _ in ["SSUBSCRIBE", "{t}s"] },
        { _, _, _ in ["UNSUBSCRIBE"] }, { _, _, _ in ["PUNSUBSCRIBE"] }, { _, _, _ in ["SUNSUBSCRIBE", "{t}s"] },
        { _, _, _ in ["PUBLISH", "ch", "hello"] }, { _, _, _ in ["PUBLISH", "ch", "hello"] },
        { _, _, _ in ["SPUBLISH", "{t}s", "m"] }, { _, _, _ in ["PUBSUB", "CHANNELS"] },
        // keyspace notifications: published by writes on both loops (inside EXEC too), and by expiry
        { r, _, _ in ["CONFIG", "SET", "notify-keyspace-events", ["", "KEA", "Elgxn", "Km$s"].randomElement(using: &r)!] },
        { _, _, _ in ["PSUBSCRIBE", "__key*__:*"] }, { r, _, _ in ["SUBSCRIBE", "__keyspace@0__:" + key(&r)] },
        // the connection
        { _, _, _ in ["PING"] }, { _, _, _ in ["ECHO", "e"] }, { r, _, _ in ["HELLO", Bool.random(using: &r) ? "3" : "2"] },
        { _, _, _ in ["RESET"] }, { _, _, _ in ["QUIT"] }, { r, _, _ in ["CLIENT", "SETNAME", "n\(number(&r))"] },
        { r, _, _ in ["CLIENT", "REPLY", ["ON", "OFF", "SKIP"].randomElement(using: &r)!] },
        { _, _, _ in ["CLIENT", "INFO"] }, { _, _, _ in ["CLIENT", "LIST"] }, { _, _, _ in ["CLIENT", "GETNAME"] },
        // CLIENT KILL of another client (on either loop), of itself, of every subscriber
        { r, ids, own in
            let victim = ids[Int.random(in: 0..<ids.count, using: &r)]
            let skipMe = Bool.random(using: &r) ? "yes" : "no"
            return ["CLIENT", "KILL", "ID", String(victim > 0 ? victim : own), "SKIPME", skipMe]
        },
        { _, _, own in ["CLIENT", "KILL", "ID", String(own), "SKIPME", "no"] },
        { _, _, _ in ["CLIENT", "KILL", "TYPE", "pubsub", "SKIPME", "yes"] },
        // the server, errors
        { _, _, _ in ["INFO", "keyspace"] },
        { r, _, _ in ["CONFIG", "SET", "maxmemory-policy", ["noeviction", "allkeys-lru"].randomElement(using: &r)!] },
        { _, _, _ in ["WAIT", "0", "0"] }, { _, _, _ in ["TIME"] }, { _, _, _ in ["COMMAND", "INFO", "get"] },
        { r, _, _ in ["NOSUCHCOMMAND", key(&r)] }, { _, _, _ in ["GET"] }, { r, _, _ in ["SET", key(&r)] },
    ]

    static func command(_ random: inout SplitMix64, ids: [Int], own: Int) -> [String] {
        entries.randomElement(using: &random)!(&random, ids, own)
    }

    /// 1–20 commands; now and then a transaction block (sometimes after a WATCH) ending in EXEC or DISCARD. CLIENT
    /// REPLY may be queued in a block: the node refuses it there (it broke EXEC's array until 35f2e66).
    static func pipeline(_ random: inout SplitMix64, ids: [Int], own: Int) -> [[String]] {
        let length = Int.random(in: 1...20, using: &random)
        var commands: [[String]] = []
        while commands.count < length {
            let room = length - commands.count
            if room >= 2 && Int.random(in: 0..<10, using: &random) == 0 {
                if room >= 3 && Bool.random(using: &random) { commands.append(["WATCH", key(&random)]) }
                commands.append(["MULTI"])
                for _ in 0..<Int.random(in: 0...min(5, max(0, length - commands.count - 1)), using: &random) {
                    commands.append(command(&random, ids: ids, own: own))
                }
                commands.append(Int.random(in: 0..<5, using: &random) == 0 ? ["DISCARD"] : ["EXEC"])
            } else {
                commands.append(command(&random, ids: ids, own: own))
            }
        }
        return commands
    }
}

// MARK: - the wire: a connection with deadlines, and a strict RESP2/RESP3 parser

/// A reply or push as it came off the wire, RESP2 or RESP3.
private indirect enum WireFrame: Equatable, CustomStringConvertible {
    case simple(String)
    case error(String)
    case integer(Int)
    case bulk([UInt8])
    case null
    case array([WireFrame])
    /// A RESP3-only type (`_ , # ( ! = % ~ >`), with its line or payload and its elements (a map's keys and values
    /// in turn).
    case resp3(type: UInt8, text: [UInt8], elements: [WireFrame])

    var description: String {
        switch self {
        case .simple(let text): return "+\(text)"
        case .error(let text): return "-\(text)"
        case .integer(let value): return ":\(value)"
        case .bulk(let bytes): return bytes.count > 64 ? "$<\(bytes.count) bytes>" : "$\(String(decoding: bytes, as: UTF8.self))"
        case .null: return "(nil)"
        case .array(let items): return items.count > 8 ? "*<\(items.count) items>" : "\(items)"
        case .resp3(let type, let text, let elements):
            let body = elements.isEmpty ? String(decoding: text.prefix(64), as: UTF8.self) : "\(elements.prefix(8))"
            return "\(Character(UnicodeScalar(type)))\(body)"
        }
    }

    var usesRESP3: Bool {
        switch self {
        case .resp3: return true
        case .array(let items): return items.contains { $0.usesRESP3 }
        default: return false
        }
    }

    var isPush: Bool {
        if case .resp3(UInt8(ascii: ">"), _, _) = self { return true }
        return false
    }

    /// A pub/sub message (a RESP2 array or RESP3 push starting with `message`, `pmessage` or `smessage`) as strings.
    var pubSubMessage: [String]? {
        let items: [WireFrame]
        switch self {
        case .array(let elements): items = elements
        case .resp3(UInt8(ascii: ">"), _, let elements): items = elements
        default: return nil
        }
        guard case .bulk(let kind)? = items.first,
            ["message", "pmessage", "smessage"].contains(String(decoding: kind, as: UTF8.self))
        else { return nil }
        return items.map { item in
            if case .bulk(let bytes) = item { return String(decoding: bytes, as: UTF8.self) }
            return item.description
        }
    }

    /// Every pipeline token in this frame (a bulk string starting `token-`, at the top or one level down).
    var tokens: [String] {
        func token(_ frame: WireFrame) -> String? {
            guard case .bulk(let bytes) = frame, bytes.starts(with: Array("token-".utf8)) else { return nil }
            return String(decoding: bytes, as: UTF8.self)
        }
        switch self {
        case .array(let items): return items.compactMap(token)
        default: return token(self).map { [$0] } ?? []
        }
    }

    /// `PING token`'s reply: the token, or `["pong", token]` from a RESP2 subscriber.
    func isPingReply(_ token: String) -> Bool {
        let bytes = Array(token.utf8)
        return self == .bulk(bytes) || self == .array([.bulk(Array("pong".utf8)), .bulk(bytes)])
    }

    /// Parses one frame at `start`: the frame and the offset after it, `nil` if the bytes end inside it. Throws on
    /// anything that is not RESP: an unknown type byte, a bad number, a bulk string not followed by CRLF, a line with
    /// a bare CR or LF.
    static func parse(_ bytes: [UInt8], at start: Int) throws(WireError) -> (WireFrame, Int)? {
        guard start < bytes.count else { return nil }
        guard let end = lineEnd(bytes, from: start + 1) else { return nil }
        let line = Array(bytes[(start + 1)..<end])
        if line.contains(13) || line.contains(10) { throw WireError("a bare CR or LF in a line", bytes, at: start) }
        let text = String(decoding: line, as: UTF8.self)
        let next = end + 2
        let type = bytes[start]
        func count(_ minimum: Int) throws(WireError) -> Int {
            guard let value = Int(text), value >= minimum else { throw WireError("bad length \(text)", bytes, at: start) }
            return value
        }
        func blob(_ length: Int) throws(WireError) -> ([UInt8], Int)? {
            guard bytes.count >= next + length + 2 else { return nil }
            guard bytes[next + length] == 13 && bytes[next + length + 1] == 10 else {
                throw WireError("a bulk string of \(length) bytes not followed by CRLF", bytes, at: start)
            }
            return (Array(bytes[next..<next + length]), next + length + 2)
        }
        func elements(_ count: Int) throws(WireError) -> ([WireFrame], Int)? {
            var items: [WireFrame] = []
            var offset = next
            for _ in 0..<count {
                guard let (item, after) = try parse(bytes, at: offset) else { return nil }
                items.append(item)
                offset = after
            }
            return (items, offset)
        }
        switch type {
        case UInt8(ascii: "+"): return (.simple(text), next)
        case UInt8(ascii: "-"): return (.error(text), next)
        case UInt8(ascii: ":"):
            guard let value = Int(text) else { throw WireError("bad integer \(text)", bytes, at: start) }
            return (.integer(value), next)
        case UInt8(ascii: "$"):
            let length = try count(-1)
            if length < 0 { return (.null, next) }
            return try blob(length).map { (.bulk($0.0), $0.1) }
        case UInt8(ascii: "*"):
            let length = try count(-1)
            if length < 0 { return (.null, next) }
            return try elements(length).map { (.array($0.0), $0.1) }
        case UInt8(ascii: "_"):
            guard line.isEmpty else { throw WireError("a null with a payload", bytes, at: start) }
            return (.resp3(type: type, text: [], elements: []), next)
        case UInt8(ascii: ","):
            guard Double(text) != nil || ["inf", "-inf", "nan"].contains(text) else {
                throw WireError("bad double \(text)", bytes, at: start)
            }
            return (.resp3(type: type, text: line, elements: []), next)
        case UInt8(ascii: "#"):
            guard text == "t" || text == "f" else { throw WireError("bad boolean \(text)", bytes, at: start) }
            return (.resp3(type: type, text: line, elements: []), next)
        case UInt8(ascii: "("):
            let digits = line.drop { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") }
            guard !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                throw WireError("bad big number \(text)", bytes, at: start)
            }
            return (.resp3(type: type, text: line, elements: []), next)
        case UInt8(ascii: "!"), UInt8(ascii: "="):
            guard let (payload, after) = try blob(try count(0)) else { return nil }
            if type == UInt8(ascii: "=") && (payload.count < 4 || payload[3] != UInt8(ascii: ":")) {
                throw WireError("a verbatim string without its three-letter format", bytes, at: start)
            }
            return (.resp3(type: type, text: payload, elements: []), after)
        case UInt8(ascii: "%"):
            return try elements(2 * (try count(0))).map { (.resp3(type: type, text: [], elements: $0.0), $0.1) }
        case UInt8(ascii: "~"), UInt8(ascii: ">"):
            return try elements(try count(0)).map { (.resp3(type: type, text: [], elements: $0.0), $0.1) }
        default:
            throw WireError("unexpected type byte \(type)", bytes, at: start)
        }
    }

    private static func lineEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        while index + 1 < bytes.count {
            if bytes[index] == 13 && bytes[index + 1] == 10 { return index }
            index += 1
        }
        return nil
    }
}

/// Bytes that are not RESP: what is wrong, and the bytes from there on.
private struct WireError: Error, CustomStringConvertible {
    let description: String

    init(_ problem: String, _ bytes: [UInt8], at offset: Int) {
        let near = bytes[offset..<min(bytes.count, offset + 80)].map { byte -> String in
            switch byte {
            case 13: return "\\r"
            case 10: return "\\n"
            case 32..<127: return String(UnicodeScalar(byte))
            default: return "\\x" + String(byte, radix: 16)
            }
        }.joined()
        description = "\(problem) at \"\(near)\""
    }
}

/// A blocking connection whose every read is bounded by a deadline (the socket's own receive timeout is short, so
/// the deadline is checked often), parsing what arrives frame by frame.
private final class WireConnection {
    enum Next: CustomStringConvertible {
        case frame(WireFrame)
        /// The server closed (or reset) the connection and every whole frame before that was returned.
        case closed
        case timedOut

        var description: String {
            switch self {
            case .frame(let frame): return "\(frame)"
            case .closed: return "a close"
            case .timedOut: return "nothing in time"
            }
        }
    }

    private let socket: LoopbackSocket
    private var received: [UInt8] = []
    private var parsed = 0
    private var peerClosed = false

    init(port: Int) throws {
        socket = try LoopbackSocket(port: port, receiveTimeout: .milliseconds(200), sendTimeout: .seconds(10))
    }

    /// Bytes received and not yet part of a whole frame.
    var pendingBytes: Int { received.count - parsed }

    func send(_ bytes: [UInt8]) throws { try socket.send(bytes) }

    func close() { socket.close() }

    func next(before deadline: ContinuousClock.Instant) throws -> Next {
        while true {
            if let (frame, after) = try WireFrame.parse(received, at: parsed) {
                parsed = after
                if parsed == received.count {
                    received.removeAll(keepingCapacity: true)
                    parsed = 0
                }
                return .frame(frame)
            }
            if peerClosed { return .closed }
            if ContinuousClock.now >= deadline { return .timedOut }
            do {
                let chunk = try socket.receive(maxBytes: 64 * 1024)
                if chunk.isEmpty { peerClosed = true } else { received += chunk }
            } catch let error as LoopbackSocketError where error.isTimeout {
                continue
            } catch {
                peerClosed = true  // ECONNRESET: the server closed with our bytes unread
            }
        }
    }
}
