// The engine of cache-bench: one libevent base per thread, hiredis async connections that keep a
// fixed number of requests outstanding, and per-request latencies recorded into an HdrHistogram.
import CHiredis
import Foundation
import Histogram

/// When a mixed run stops issuing requests.
enum StopCondition: Sendable {
    case afterRequests(Int)
    case after(seconds: Double)
}

/// What the connections send.
enum Workload: Sendable {
    /// SETs and GETs in `mix` over uniformly random keys in 0..<keySpace.
    case mixed(RequestMix, keySpace: Int, stop: StopCondition)
    /// One SET for each key in 0..<keyCount, in order.
    case populate(keyCount: Int)
}

/// Everything a run needs.
struct BenchPlan: Sendable {
    var host: String
    var port: Int
    var connections: Int
    var pipeline: Int
    var dataSize: Int
    var threads: Int
    var seed: UInt64
    var workload: Workload
}

/// A failure to start the run (connection setup); per-request failures are counted instead.
struct BenchSetupError: Error, CustomStringConvertible {
    var description: String
}

/// The merged outcome of all threads.
struct BenchResult {
    var completed: UInt64
    var errors: UInt64
    var getMisses: UInt64
    var firstError: String?
    var elapsedSeconds: Double
    /// Latencies in microseconds.
    var latencies: Histogram<UInt64>

    var opsPerSecond: Double { elapsedSeconds > 0 ? Double(completed) / elapsedSeconds : 0 }

    /// The latency at `percentile` (0...100) in milliseconds.
    func milliseconds(atPercentile percentile: Double) -> Double {
        Double(latencies.valueAtPercentile(percentile)) / 1000
    }
}

/// Splits the plan over threads, runs one `BenchWorker` per thread and merges their results.
struct BenchRunner {
    var plan: BenchPlan

    func run() throws -> BenchResult {
        let workers = makeWorkers()
        let started = chiredis_monotonic_nanoseconds()
        if workers.count == 1 {
            try workers[0].run(startedAt: started)
        } else {
            let group = DispatchGroup()
            for worker in workers {
                group.enter()
                let thread = Thread {
                    worker.runCapturingError(startedAt: started)
                    group.leave()
                }
                thread.start()
            }
            group.wait()
            if let failure = workers.compactMap(\.setupError).first { throw failure }
        }
        var latencies = BenchWorker.makeHistogram()
        var result = BenchResult(
            completed: 0, errors: 0, getMisses: 0, firstError: nil, elapsedSeconds: 0, latencies: latencies)
        var finished = started
        for worker in workers {
            latencies.add(worker.latencies)
            result.completed += worker.completed
            result.errors += worker.errors
            result.getMisses += worker.getMisses
            result.firstError = result.firstError ?? worker.firstError
            finished = max(finished, worker.finishedAt)
        }
        result.latencies = latencies
        result.elapsedSeconds = Double(finished - started) / 1e9
        return result
    }

    /// Connections, request budgets and populate ranges split as evenly as possible over the threads.
    private func makeWorkers() -> [BenchWorker] {
        (0..<plan.threads).map { index in
            let connections = share(of: plan.connections, part: index, parts: plan.threads)
            var budget = BenchWorker.Budget.unlimited
            var populateRange: Range<Int>? = nil
            switch plan.workload {
            case .mixed(_, _, .afterRequests(let total)):
                budget = .requests(share(of: total, part: index, parts: plan.threads))
            case .mixed(_, _, .after(let seconds)):
                budget = .seconds(seconds)
            case .populate(let keyCount):
                let lower = (0..<index).reduce(0) { $0 + share(of: keyCount, part: $1, parts: plan.threads) }
                populateRange = lower..<(lower + share(of: keyCount, part: index, parts: plan.threads))
                budget = .requests(populateRange!.count)
            }
            return BenchWorker(
                plan: plan, connectionCount: connections, budget: budget, populateRange: populateRange,
                seed: plan.seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        }
    }

    private func share(of total: Int, part: Int, parts: Int) -> Int {
        total / parts + (part < total % parts ? 1 : 0)
    }
}

/// One thread's event base and connections. Only its own thread touches it while it runs; the
/// runner reads the counters after joining the thread, which is why it is `@unchecked Sendable`.
final class BenchWorker: @unchecked Sendable {
    enum Budget {
        case requests(Int)
        case seconds(Double)
        case unlimited
    }

    let plan: BenchPlan
    let connectionCount: Int
    let budget: Budget
    let populateRange: Range<Int>?
    let seed: UInt64

    private(set) var latencies = BenchWorker.makeHistogram()
    private(set) var issued: UInt64 = 0
    private(set) var completed: UInt64 = 0
    private(set) var errors: UInt64 = 0
    private(set) var getMisses: UInt64 = 0
    private(set) var firstError: String?
    private(set) var finishedAt: UInt64 = 0
    private(set) var setupError: BenchSetupError?
    private var deadline: UInt64 = .max
    private var requestLimit: UInt64 = .max
    private var connections: [BenchConnection] = []

    init(plan: BenchPlan, connectionCount: Int, budget: Budget, populateRange: Range<Int>?, seed: UInt64) {
        self.plan = plan
        self.connectionCount = connectionCount
        self.budget = budget
        self.populateRange = populateRange
        self.seed = seed
    }

    /// 1 µs to 60 s at three significant digits.
    static func makeHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    }

    func runCapturingError(startedAt: UInt64) {
        do { try run(startedAt: startedAt) } catch let error as BenchSetupError { setupError = error } catch {
            setupError = BenchSetupError(description: "\(error)")
        }
    }

    /// Connects, fills every pipeline and dispatches events until every connection has drained.
    func run(startedAt: UInt64) throws {
        switch budget {
        case .requests(let count): requestLimit = UInt64(count)
        case .seconds(let seconds): deadline = startedAt + UInt64(seconds * 1e9)
        case .unlimited: break
        }
        guard let base = event_base_new() else { throw BenchSetupError(description: "event_base_new failed") }
        defer { event_base_free(base) }
        for index in 0..<connectionCount {
            let connection = try BenchConnection(
                worker: self, host: plan.host, port: plan.port, base: base,
                seed: seed &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9)
            connections.append(connection)
        }
        for connection in connections {
            var filled = 0
            while filled < plan.pipeline, mayIssue(now: startedAt) {
                connection.issue()
                filled += 1
            }
            if filled == 0 { connection.disconnect() }
        }
        event_base_dispatch(base)
        finishedAt = max(finishedAt, startedAt)
        connections.removeAll()
    }

    /// Whether another request may be sent.
    @inline(__always)
    func mayIssue(now: UInt64) -> Bool {
        issued < requestLimit && now < deadline
    }

    /// The next request for `connection`: populate keys in order, else the mix over random keys.
    @inline(__always)
    func nextRequest(sequence: UInt64, random: UInt64) -> (isSet: Bool, key: Int) {
        defer { issued += 1 }
        if let populateRange { return (true, populateRange.lowerBound + Int(issued)) }
        guard case .mixed(let mix, let keySpace, _) = plan.workload else { fatalError("populate without a range") }
        return (mix.isSet(sequence), Int(random % UInt64(keySpace)))
    }

    /// Records one finished request.
    @inline(__always)
    func record(latencyNanoseconds: UInt64, now: UInt64, error: String?, getMiss: Bool) {
        completed += 1
        finishedAt = now
        _ = latencies.record(max(1, latencyNanoseconds / 1000))
        if getMiss { getMisses += 1 }
        if let error {
            errors += 1
            if firstError == nil { firstError = error }
        }
    }

    func recordConnectionFailure(_ message: String) {
        errors += 1
        if firstError == nil { firstError = message }
    }
}

/// One hiredis async connection with its ring of send timestamps (replies arrive in order).
final class BenchConnection {
    private unowned let worker: BenchWorker
    private var context: UnsafeMutablePointer<redisAsyncContext>?
    private var sendTimes: [UInt64]
    private var sendHead = 0
    private var outstanding = 0
    private var sequence: UInt64 = 0
    private var randomState: UInt64
    private var pendingGetFlags: [Bool]

    private let argv: UnsafeMutablePointer<UnsafePointer<CChar>?>
    private let argvLengths: UnsafeMutablePointer<Int>
    private let keyBuffer: UnsafeMutablePointer<CChar>
    private let valueBuffer: UnsafeMutablePointer<CChar>
    private static let setName: StaticString = "SET"
    private static let getName: StaticString = "GET"
    private static let keyPrefix = Array("key:".utf8)
    private static let keyLength = 16  // "key:" + 12 digits

    init(worker: BenchWorker, host: String, port: Int, base: OpaquePointer, seed: UInt64) throws {
        self.worker = worker
        self.randomState = seed
        let pipeline = worker.plan.pipeline
        self.sendTimes = Array(repeating: 0, count: pipeline)
        self.pendingGetFlags = Array(repeating: false, count: pipeline)
        argv = .allocate(capacity: 3)
        argvLengths = .allocate(capacity: 3)
        keyBuffer = .allocate(capacity: Self.keyLength)
        for (index, byte) in Self.keyPrefix.enumerated() { keyBuffer[index] = CChar(bitPattern: byte) }
        let dataSize = worker.plan.dataSize
        valueBuffer = .allocate(capacity: max(1, dataSize))
        valueBuffer.initialize(repeating: CChar(UInt8(ascii: "x")), count: max(1, dataSize))
        argv[1] = UnsafePointer(keyBuffer)
        argvLengths[1] = Self.keyLength
        argv[2] = UnsafePointer(valueBuffer)
        argvLengths[2] = dataSize

        guard let context = redisAsyncConnect(host, Int32(port)) else {
            throw BenchSetupError(description: "redisAsyncConnect(\(host), \(port)) could not allocate a context")
        }
        if context.pointee.err != 0 {
            let message = String(cString: context.pointee.errstr)
            redisAsyncFree(context)
            throw BenchSetupError(description: "cannot connect to \(host):\(port): \(message)")
        }
        self.context = context
        context.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        _ = chiredis_libevent_attach(context, base)
        _ = redisAsyncSetDisconnectCallback(context) { context, status in
            guard let context, let data = context.pointee.data else { return }
            let connection = Unmanaged<BenchConnection>.fromOpaque(data).takeUnretainedValue()
            connection.context = nil
            if status != REDIS_OK {
                let message = context.pointee.errstr.map { String(cString: $0) } ?? "connection lost"
                connection.worker.recordConnectionFailure("disconnected: \(message)")
            }
        }
    }

    deinit {
        argv.deallocate()
        argvLengths.deallocate()
        keyBuffer.deallocate()
        valueBuffer.deallocate()
    }

    /// Sends the next request of the worker's workload.
    @inline(__always)
    func issue() {
        guard let context else { return }
        randomState = randomState &+ 0x9E37_79B9_7F4A_7C15
        var mixed = randomState
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        mixed ^= mixed >> 31
        let request = worker.nextRequest(sequence: sequence, random: mixed)
        sequence += 1
        writeKey(request.key)
        let name = request.isSet ? Self.setName : Self.getName
        argv[0] = UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
        argvLengths[0] = 3
        let slot = (sendHead + outstanding) % sendTimes.count
        sendTimes[slot] = chiredis_monotonic_nanoseconds()
        pendingGetFlags[slot] = !request.isSet
        outstanding += 1
        let status = chiredis_async_command_argv(
            context,
            { context, reply, _ in
                guard let context, let data = context.pointee.data else { return }
                let connection = Unmanaged<BenchConnection>.fromOpaque(data).takeUnretainedValue()
                let failure = reply == nil ? context.pointee.errstr.map { String(cString: $0) } : nil
                connection.complete(reply: reply?.assumingMemoryBound(to: redisReply.self), failure: failure)
            },
            nil, request.isSet ? 3 : 2, argv, argvLengths)
        if status != REDIS_OK {
            outstanding -= 1
            worker.recordConnectionFailure("redisAsyncCommandArgv failed (connection closing)")
        }
    }

    /// Handles one reply (or nil when hiredis gives up on the connection).
    @inline(__always)
    private func complete(reply: UnsafeMutablePointer<redisReply>?, failure: String?) {
        let now = chiredis_monotonic_nanoseconds()
        let sentAt = sendTimes[sendHead]
        let wasGet = pendingGetFlags[sendHead]
        sendHead = (sendHead + 1) % sendTimes.count
        outstanding -= 1
        var error: String? = nil
        var getMiss = false
        if let reply {
            switch reply.pointee.type {
            case REDIS_REPLY_ERROR:
                error = String(cString: reply.pointee.str)
            case REDIS_REPLY_NIL:
                getMiss = wasGet
            default:
                break
            }
        } else {
            error = "no reply: connection failed (\(failure ?? "unknown cause"))"
        }
        worker.record(latencyNanoseconds: now &- sentAt, now: now, error: error, getMiss: getMiss)
        guard reply != nil, context != nil else { return }
        if worker.mayIssue(now: now) {
            issue()
        } else if outstanding == 0 {
            disconnect()
        }
    }

    /// Closes the connection once its pending replies are read (hiredis frees the context).
    func disconnect() {
        guard let context else { return }
        redisAsyncDisconnect(context)
    }

    /// Writes `key:%012d` into the key buffer.
    @inline(__always)
    private func writeKey(_ key: Int) {
        var value = key
        var index = Self.keyLength - 1
        while index >= Self.keyPrefix.count {
            keyBuffer[index] = CChar(48 + value % 10)
            value /= 10
            index -= 1
        }
    }
}
