// EVAL's script cache and Lua engine (redis eval.c): script bodies by SHA1, compiled into one Lua state. A script
// runs with every stripe locked (EVAL is a whole-keyspace command), so scripts run one at a time and atomically, as
// in redis; the engine's own lock only orders SCRIPT LOAD / FLUSH against a running script. SCRIPT KILL reaches a
// running script from another event loop through an atomic flag the Lua count hook reads.
import CLua
import NIOCore
import RESPServer
import Synchronization

/// A script's `#!lua flags=...` line (redis eval.c evalExtractShebangFlags).
struct ScriptFlags: OptionSet, Sendable {
    let rawValue: UInt8
    /// The script has a shebang line (flags then default to "not allowed" for what is not listed).
    static let declared = ScriptFlags(rawValue: 1 << 0)
    static let noWrites = ScriptFlags(rawValue: 1 << 1)
    static let allowOOM = ScriptFlags(rawValue: 1 << 2)
    static let allowStale = ScriptFlags(rawValue: 1 << 3)
    static let noCluster = ScriptFlags(rawValue: 1 << 4)
    static let allowCrossSlotKeys = ScriptFlags(rawValue: 1 << 5)

    /// Reads the shebang of `body`: the flags and how many bytes to skip (the line, not its line feed, so line
    /// numbers stay the user's).
    static func parse(_ body: [UInt8]) throws(CommandError) -> (flags: ScriptFlags, skip: Int) {
        guard body.count >= 2, body[0] == UInt8(ascii: "#"), body[1] == UInt8(ascii: "!") else { return ([], 0) }
        let end = body.firstIndex(of: UInt8(ascii: "\n")) ?? body.count
        let line = String(decoding: body[2..<end], as: UTF8.self)
        var parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let engine = parts.first, engine == "lua" else {
            guard let engine = parts.first else { throw CommandError("Invalid engine in script shebang") }
            throw CommandError("Unexpected engine in script shebang: #!\(engine)")
        }
        parts.removeFirst()
        var flags = ScriptFlags.declared
        for part in parts {
            guard part.hasPrefix("flags=") else { throw CommandError("Unknown lua shebang option: \(part)") }
            for name in part.dropFirst(6).split(separator: ",", omittingEmptySubsequences: true) {
                switch name {
                case "no-writes": flags.insert(.noWrites)
                case "allow-oom": flags.insert(.allowOOM)
                case "allow-stale": flags.insert(.allowStale)
                case "no-cluster": flags.insert(.noCluster)
                case "allow-cross-slot-keys": flags.insert(.allowCrossSlotKeys)
                default: throw CommandError("Unexpected flag in script shebang: \(name)")
                }
            }
        }
        return (flags, end)
    }
}

/// The node's scripts: the SHA1 → body cache and the Lua state they are compiled into.
final class ScriptEngine: Sendable {
    private struct Cache: ~Copyable {
        /// Owned by this cache; reset (not freed) by SCRIPT FLUSH, so SCRIPT KILL's pointer stays valid.
        let engine: OpaquePointer
        var flags: [String: ScriptFlags] = [:]
        var bodyBytes = 0
    }

    private let cache: Mutex<Cache>
    /// The engine, for SCRIPT KILL from another thread (never freed before the node).
    private nonisolated(unsafe) let killTarget: OpaquePointer
    /// Whether a script is running, and whether it has run a write command (then SCRIPT KILL refuses).
    let isRunning = Atomic<Bool>(false)
    let runningScriptWrote = Atomic<Bool>(false)
    /// INFO memory's figures, kept outside the lock: INFO may run inside a script, which holds it.
    private let luaBytes = Atomic<Int>(0)
    private let scriptCount = Atomic<Int>(0)
    private let scriptBodyBytes = Atomic<Int>(0)

    init() {
        guard let engine = cl_engine_create() else { fatalError("cannot create the Lua state for EVAL (out of memory)") }
        killTarget = engine
        luaBytes.store(Int(cl_engine_memory(engine)), ordering: .relaxed)
        cache = Mutex(Cache(engine: engine))
    }

    deinit {
        cl_engine_destroy(killTarget)
    }

    /// SHA1 of a script body, lowercase hex (redis sha1hex).
    static func sha1(_ body: [UInt8]) -> String {
        var hex = [CChar](repeating: 0, count: 41)
        body.withUnsafeBytes { raw in cl_sha1_hex(raw.baseAddress, raw.count, &hex) }
        return String(decoding: hex.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Compiles `body` if it is new (SCRIPT LOAD, EVAL); returns its SHA1 and flags.
    func load(_ body: [UInt8]) throws(CommandError) -> (sha: String, flags: ScriptFlags) {
        let sha = Self.sha1(body)
        if let flags = cache.withLock({ $0.flags[sha] }) { return (sha, flags) }
        let (flags, skip) = try ScriptFlags.parse(body)
        let failure: String? = cache.withLock { cache in
            if cache.flags[sha] != nil { return nil }
            var error = cl_buffer()
            defer { cl_buffer_free(&error) }
            // NUL-terminated, so even an empty body (EVAL "" 0 is valid Lua) has an address to pass.
            let code = body[skip...].map { CChar(bitPattern: $0) } + [0]
            let failed = code.withUnsafeBufferPointer { text in
                sha.withCString { cl_engine_define(cache.engine, $0, text.baseAddress!, text.count - 1, &error) }
            }
            if failed != 0 {
                return String(decoding: UnsafeRawBufferPointer(start: error.data, count: error.length), as: UTF8.self)
            }
            cache.flags[sha] = flags
            cache.bodyBytes += body.count
            publishMemory(cache)
            return nil
        }
        if let failure { throw CommandError(failure) }
        return (sha, flags)
    }

    /// The flags of a cached script, or `nil` (NOSCRIPT).
    func flags(of sha: String) -> ScriptFlags? {
        cache.withLock { $0.flags[sha] }
    }

    /// How a script's reply counts in the error statistics.
    enum ReplyKind { case value, error, errorAlreadyCounted }

    /// Runs a cached script; `command` runs each redis.call. Returns the RESP reply and what kind it is.
    func run(
        sha: String, keys: [[UInt8]], arguments: [[UInt8]], clientProtocol: Int, invocation: ScriptInvocation
    ) -> (reply: [UInt8], kind: ReplyKind) {
        cache.withLock { cache in
            isRunning.store(true, ordering: .releasing)
            runningScriptWrote.store(false, ordering: .releasing)
            defer { isRunning.store(false, ordering: .releasing) }
            let outcome = Self.invoke(keys: keys, arguments: arguments, invocation: invocation) { keys, arguments, context, reply in
                sha.withCString { shaText in
                    cl_engine_run(
                        cache.engine, shaText, keys.count, keys.pointers, keys.lengths, arguments.count, arguments.pointers,
                        arguments.lengths, Int32(clientProtocol), context, Self.commandCallback, Self.logCallback, reply)
                }
            }
            publishMemory(cache)
            return outcome
        }
    }

    /// KEYS or ARGV as the engine takes them.
    struct CArray {
        let count: Int32
        let pointers: UnsafePointer<UnsafePointer<CChar>?>?
        let lengths: UnsafePointer<Int>?
    }

    /// Runs a script or function through `entry` (the engine's entry point, given KEYS, ARGV, the invocation as its
    /// context and the reply buffer) and returns its RESP reply and what kind it is.
    static func invoke(
        keys: [[UInt8]], arguments: [[UInt8]], invocation: ScriptInvocation,
        _ entry: (CArray, CArray, UnsafeMutableRawPointer, UnsafeMutablePointer<cl_buffer>) -> Int32
    ) -> (reply: [UInt8], kind: ReplyKind) {
        var reply = cl_buffer()
        defer { cl_buffer_free(&reply) }
        let context = Unmanaged.passUnretained(invocation).toOpaque()
        let outcome = withCArrays(keys) { keyPointers, keyLengths in
            withCArrays(arguments) { argumentPointers, argumentLengths in
                entry(CArray(count: Int32(keys.count), pointers: keyPointers, lengths: keyLengths),
                      CArray(count: Int32(arguments.count), pointers: argumentPointers, lengths: argumentLengths), context, &reply)
            }
        }
        let bytes = reply.length > 0 ? Array(UnsafeRawBufferPointer(start: reply.data, count: reply.length)) : []
        return (bytes, outcome == 0 ? .value : outcome == 1 ? .error : .errorAlreadyCounted)
    }

    /// The engine's calls back into Swift, for scripts and functions alike: a redis.call runs through the
    /// ScriptInvocation the context points at; a redis.log line goes to its logger.
    static let commandCallback: cl_command_function = { context, argc, argv, lengths, resp, reply in
        let invocation = Unmanaged<ScriptInvocation>.fromOpaque(context!).takeUnretainedValue()
        let words = (0..<Int(argc)).map { index in UnsafeRawBufferPointer(start: argv![index], count: lengths![index]) }
        let arguments = CommandArguments(words)
        let bytes = resp == CL_ACL_CHECK_ONLY
            ? invocation.aclCheck(arguments) : invocation.call(arguments, protocolVersion: Int(resp))
        bytes.withUnsafeReadableBytes { raw in cl_buffer_append(reply, raw.baseAddress, raw.count) }
    }

    static let logCallback: cl_log_function = { context, level, message, length in
        let invocation = Unmanaged<ScriptInvocation>.fromOpaque(context!).takeUnretainedValue()
        invocation.log(level: Int(level), String(decoding: UnsafeRawBufferPointer(start: message, count: length), as: UTF8.self))
    }

    /// SCRIPT EXISTS.
    func contains(_ sha: String) -> Bool {
        cache.withLock { $0.flags[sha] != nil }
    }

    /// SCRIPT FLUSH: forgets every script and starts a fresh Lua state.
    func flush() {
        cache.withLock { cache in
            cl_engine_reset(cache.engine)
            cache.flags = [:]
            cache.bodyBytes = 0
            publishMemory(cache)
        }
    }

    /// SCRIPT KILL's check and request (redis scriptKill): only a script that has not written can be stopped.
    enum KillOutcome { case killed, notBusy, unkillable }

    func kill() -> KillOutcome {
        guard isRunning.load(ordering: .acquiring) else { return .notBusy }
        if runningScriptWrote.load(ordering: .acquiring) { return .unkillable }
        cl_engine_request_kill(killTarget)
        return .killed
    }

    /// SHUTDOWN NOSAVE: stops a running script whatever it wrote.
    func forceKill() {
        if isRunning.load(ordering: .acquiring) { cl_engine_request_kill(killTarget) }
    }

    /// busy-reply-threshold (milliseconds, or negative for never): when a running script reports itself busy.
    func setBusyThreshold(milliseconds: Int) {
        cl_engine_set_busy_report(killTarget, Int64(milliseconds), Self.busyCallback)
    }

    /// The engines' report of a busy run (scripts and functions alike), on the script's thread.
    static let busyCallback: cl_busy_function = { context in
        Unmanaged<ScriptInvocation>.fromOpaque(context!).takeUnretainedValue().reportBusy()
    }

    /// INFO memory: the Lua state's bytes, the cached scripts and their bodies' bytes (as of the last script run,
    /// load or flush).
    var memory: (lua: Int, scripts: Int, bodyBytes: Int) {
        (luaBytes.load(ordering: .relaxed), scriptCount.load(ordering: .relaxed), scriptBodyBytes.load(ordering: .relaxed))
    }

    private func publishMemory(_ cache: borrowing Cache) {
        luaBytes.store(Int(cl_engine_memory(cache.engine)), ordering: .relaxed)
        scriptCount.store(cache.flags.count, ordering: .relaxed)
        scriptBodyBytes.store(cache.bodyBytes, ordering: .relaxed)
    }

    static func withCArrays<Result>(
        _ items: [[UInt8]], _ body: (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int>?) -> Result
    ) -> Result {
        var lengths = items.map(\.count)
        let pointers = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(items.count, 1))
        defer { pointers.deallocate() }
        var storage: [UnsafeMutableRawPointer] = []
        defer { storage.forEach { $0.deallocate() } }
        for (index, item) in items.enumerated() {
            let copy = UnsafeMutableRawPointer.allocate(byteCount: max(item.count, 1), alignment: 1)
            item.withUnsafeBytes { if $0.count > 0 { copy.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            storage.append(copy)
            pointers[index] = UnsafePointer(copy.assumingMemoryBound(to: CChar.self))
        }
        return lengths.withUnsafeMutableBufferPointer { body(UnsafePointer(pointers), UnsafePointer($0.baseAddress)) }
    }
}
