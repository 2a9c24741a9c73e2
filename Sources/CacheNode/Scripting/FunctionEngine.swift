// FUNCTION's libraries and their Lua engine (redis functions.c, function_lua.c): libraries loaded by FUNCTION LOAD
// (a `#!lua name=<library>` line, then code that calls redis.register_function), their functions by name, and a Lua
// state of their own, apart from EVAL's (SCRIPT FLUSH does not touch functions, FUNCTION FLUSH does not touch
// scripts). Like EVAL, FCALL runs with every stripe locked; this engine's lock orders loads against a running
// function, and FUNCTION KILL and STATS reach a running function from another event loop through atomics.
import CLua
import CacheStore
import NIOCore
import RESPServer
import Synchronization

/// One function a library registered.
struct FunctionInfo: Sendable, Equatable {
    let name: String
    let flags: ScriptFlags
    let description: String?
}

/// A loaded library: its name, its full source (shebang included, as FUNCTION LIST WITHCODE and DUMP give it back)
/// and its functions in registration order.
struct FunctionLibrary: Sendable {
    let name: String
    let code: [UInt8]
    let functions: [FunctionInfo]
}

/// The node's function libraries.
final class FunctionEngine: Sendable {
    private struct State: ~Copyable {
        let engine: OpaquePointer
        /// By lowercased library name (names are case-insensitive, as in redis), each with the engine's reference
        /// to its callbacks.
        var libraries: [String: (library: FunctionLibrary, reference: Int32)] = [:]
        /// Lowercased function name → the function as registered and its library's key.
        var functions: [String: (library: String, name: String)] = [:]
        var codeBytes = 0
    }

    /// How FUNCTION RESTORE treats libraries that exist already.
    enum RestorePolicy { case append, replace, flush }

    /// The time FUNCTION LOAD gives a library's code to register its functions (redis LOAD_TIMEOUT_MS).
    static let loadTimeoutMilliseconds = 500

    private let state: Mutex<State>
    /// The engine, for FUNCTION KILL from another thread (never freed before the node).
    private nonisolated(unsafe) let killTarget: OpaquePointer
    /// Whether a function is running, and whether it has run a write command (then FUNCTION KILL refuses).
    let isRunning = Atomic<Bool>(false)
    let runningFunctionWrote = Atomic<Bool>(false)
    /// FUNCTION STATS's running_script: the function, its FCALL, and when it started (unix ms).
    private let running = Mutex<(name: String, command: CommandArguments, startedAt: Int64)?>(nil)
    /// INFO memory's figures, kept outside the lock (INFO may run inside a function, which holds it).
    private let luaBytes = Atomic<Int>(0)
    private let libraryCount = Atomic<Int>(0)
    private let functionCount = Atomic<Int>(0)
    private let codeBytes = Atomic<Int>(0)

    init() {
        guard let engine = cl_function_engine_create() else {
            fatalError("cannot create the Lua state for FUNCTION (out of memory)")
        }
        killTarget = engine
        luaBytes.store(Int(cl_engine_memory(engine)), ordering: .relaxed)
        state = Mutex(State(engine: engine))
    }

    deinit {
        cl_engine_destroy(killTarget)
    }

    // MARK: loading

    /// FUNCTION LOAD: runs the library's code and adds its functions, replacing a library of the same name only if
    /// `replace`. `timeoutMilliseconds` 0 means no limit (loads from the primary, the append-only file or a
    /// snapshot must not fail for time). Returns the library's name.
    func load(_ code: [UInt8], replace: Bool, timeoutMilliseconds: Int = loadTimeoutMilliseconds) throws(CommandError) -> String {
        let (name, bodyStart) = try Self.parseShebang(code)
        return try state.withLock { (state) throws(CommandError) -> String in
            let existing = state.libraries[name.lowercased()]
            if existing != nil && !replace { throw CommandError("Library '\(name)' already exists") }
            let (library, reference) = try Self.run(code, name: name, bodyStart: bodyStart, engine: state.engine, timeout: timeoutMilliseconds)
            for function in library.functions {
                if let owner = state.functions[function.name.lowercased()], owner.library != name.lowercased() {
                    cl_library_release(state.engine, reference)
                    throw CommandError("Function \(function.name) already exists")
                }
            }
            if existing != nil { Self.unlink(name.lowercased(), from: &state) }
            Self.link(library, reference: reference, into: &state)
            publish(state)
            return name
        }
    }

    /// Reads `#!<engine> name=<library>` (redis functionExtractLibMetaData): the library's name and where its code
    /// starts (the line's line feed, so line numbers stay the user's).
    static func parseShebang(_ code: [UInt8]) throws(CommandError) -> (name: String, bodyStart: Int) {
        guard code.count >= 2, code[0] == UInt8(ascii: "#"), code[1] == UInt8(ascii: "!") else {
            throw CommandError("Missing library metadata")
        }
        guard let end = code.firstIndex(of: UInt8(ascii: "\n")) else { throw CommandError("Invalid library metadata") }
        guard let parts = splitArguments(Array(code[0..<end])), let first = parts.first else {
            throw CommandError("Invalid library metadata")
        }
        let engine = String(first.dropFirst(2))
        var name: String?
        for part in parts.dropFirst() {
            if part.lowercased().hasPrefix("name=") {
                guard name == nil else { throw CommandError("Invalid metadata value, name argument was given multiple times") }
                name = String(part.dropFirst(5))
                continue
            }
            throw CommandError("Invalid metadata value given: \(part)")
        }
        guard let name else { throw CommandError("Library name was not given") }
        guard isValidName(name) else {
            throw CommandError("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
        }
        guard engine.lowercased() == "lua" else { throw CommandError("Engine '\(engine)' not found") }
        return (name, end)
    }

    /// The words of a shebang line as redis's sdssplitargs reads them: separated by blanks, with "double-quoted"
    /// (backslash escapes) and 'single-quoted' parts; `nil` for unbalanced quotes or a closing quote not followed
    /// by a blank.
    static func splitArguments(_ line: [UInt8]) -> [String]? {
        var words: [String] = []
        var index = 0
        func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0 }
        while true {
            while index < line.count && isBlank(line[index]) { index += 1 }
            guard index < line.count else { return words }
            var word: [UInt8] = []
            var quote: UInt8? = nil
            while true {
                if let open = quote {
                    guard index < line.count else { return nil }
                    let byte = line[index]
                    if open == UInt8(ascii: "\"") && byte == UInt8(ascii: "\\") && index + 1 < line.count {
                        index += 1
                        switch line[index] {
                        case UInt8(ascii: "n"): word.append(0x0A)
                        case UInt8(ascii: "r"): word.append(0x0D)
                        case UInt8(ascii: "t"): word.append(0x09)
                        case UInt8(ascii: "b"): word.append(0x08)
                        case UInt8(ascii: "a"): word.append(0x07)
                        default: word.append(line[index])
                        }
                    } else if open == UInt8(ascii: "'") && byte == UInt8(ascii: "\\") && index + 1 < line.count && line[index + 1] == UInt8(ascii: "'") {
                        index += 1
                        word.append(UInt8(ascii: "'"))
                    } else if byte == open {
                        // The closing quote must end the word.
                        if index + 1 < line.count && !isBlank(line[index + 1]) { return nil }
                        quote = nil
                        index += 1
                        break
                    } else {
                        word.append(byte)
                    }
                    index += 1
                } else {
                    guard index < line.count, !isBlank(line[index]) else { break }
                    let byte = line[index]
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                        quote = byte
                    } else {
                        word.append(byte)
                    }
                    index += 1
                }
            }
            words.append(String(decoding: word, as: UTF8.self))
        }
    }

    /// redis functionsVerifyName.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }
    }

    /// Runs a library's code in the engine: its functions, and the engine's reference to their callbacks.
    private static func run(
        _ code: [UInt8], name: String, bodyStart: Int, engine: OpaquePointer, timeout: Int
    ) throws(CommandError) -> (FunctionLibrary, Int32) {
        var described = cl_buffer()
        var error = cl_buffer()
        defer {
            cl_buffer_free(&described)
            cl_buffer_free(&error)
        }
        var reference: Int32 = 0
        let failed = code.withUnsafeBytes { raw in
            cl_library_load(
                engine, raw.baseAddress!.advanced(by: bodyStart).assumingMemoryBound(to: CChar.self), raw.count - bodyStart,
                Int64(timeout), &reference, &described, &error)
        }
        if failed != 0 {
            throw CommandError(String(decoding: UnsafeRawBufferPointer(start: error.data, count: error.length), as: UTF8.self))
        }
        let bytes = described.length > 0 ? Array(UnsafeRawBufferPointer(start: described.data, count: described.length)) : []
        var functions: [FunctionInfo] = []
        var offset = 0
        func word() -> UInt32 {
            defer { offset += 4 }
            return UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
        }
        func text(_ count: Int) -> String {
            defer { offset += count }
            return String(decoding: bytes[offset..<offset + count], as: UTF8.self)
        }
        while offset < bytes.count {
            let function = text(Int(word()))
            let flags = ScriptFlags(rawValue: UInt8(truncatingIfNeeded: word())).union(.declared)
            let length = word()
            functions.append(FunctionInfo(name: function, flags: flags, description: length == UInt32.max ? nil : text(Int(length))))
        }
        if functions.isEmpty {
            cl_library_release(engine, reference)
            throw CommandError("No functions registered")
        }
        if Set(functions.map { $0.name.lowercased() }).count < functions.count {
            cl_library_release(engine, reference)
            throw CommandError("Error registering functions: ERR Function already exists in the library")
        }
        return (FunctionLibrary(name: name, code: code, functions: functions), reference)
    }

    private static func link(_ library: FunctionLibrary, reference: Int32, into state: inout State) {
        let key = library.name.lowercased()
        state.libraries[key] = (library, reference)
        for function in library.functions { state.functions[function.name.lowercased()] = (key, function.name) }
        state.codeBytes += library.code.count
    }

    private static func unlink(_ name: String, from state: inout State) {
        guard let (library, reference) = state.libraries.removeValue(forKey: name) else { return }
        for function in library.functions { state.functions[function.name.lowercased()] = nil }
        state.codeBytes -= library.code.count
        cl_library_release(state.engine, reference)
    }

    // MARK: managing

    /// FUNCTION DELETE.
    func delete(_ name: String) throws(CommandError) {
        try state.withLock { (state) throws(CommandError) in
            guard state.libraries[name.lowercased()] != nil else { throw CommandError("Library not found") }
            Self.unlink(name.lowercased(), from: &state)
            publish(state)
        }
    }

    /// FUNCTION FLUSH: every library goes, and the Lua state starts afresh.
    func flush() {
        state.withLock { state in
            cl_function_engine_reset(state.engine)
            state.libraries = [:]
            state.functions = [:]
            state.codeBytes = 0
            publish(state)
        }
    }

    /// The libraries, by name.
    func libraries() -> [FunctionLibrary] {
        state.withLock { state in state.libraries.values.map(\.library).sorted { $0.name < $1.name } }
    }

    /// Every library's source, for snapshots (in name order, so equal sets give equal bytes).
    func librarySources() -> [[UInt8]] {
        libraries().map(\.code)
    }

    /// Replaces every library with these sources (a snapshot's, or a full sync's), loaded without a time limit.
    /// All or nothing: on the first failure the previous libraries stay.
    func replaceAll(with sources: [[UInt8]]) throws(CommandError) {
        try restore(sources, policy: .flush)
    }

    /// FUNCTION RESTORE's step: adds libraries as `policy` says, all or nothing (redis functionsLibCtxFunctionsMerge).
    func restore(_ sources: [[UInt8]], policy: RestorePolicy) throws(CommandError) {
        try state.withLock { (state) throws(CommandError) in
            // Built in a fresh engine first, so a failure leaves the live one untouched.
            guard let scratch = cl_function_engine_create() else { throw CommandError("cannot create the Lua state for FUNCTION RESTORE (out of memory)") }
            defer { cl_engine_destroy(scratch) }
            var loaded: [FunctionLibrary] = []
            var names = Set<String>()
            var functionNames = Set<String>()
            for source in sources {
                let (name, bodyStart) = try Self.parseShebang(source)
                let (library, _) = try Self.run(source, name: name, bodyStart: bodyStart, engine: scratch, timeout: 0)
                guard names.insert(name.lowercased()).inserted else { throw CommandError("Library \(name) already exists") }
                for function in library.functions where !functionNames.insert(function.name.lowercased()).inserted {
                    throw CommandError("Function \(function.name) already exists")
                }
                loaded.append(library)
            }
            var kept: [String: FunctionLibrary] = [:]
            if policy != .flush {
                for (key, entry) in state.libraries { kept[key] = entry.library }
            }
            for library in loaded {
                if kept[library.name.lowercased()] != nil {
                    guard policy == .replace else { throw CommandError("Library \(library.name) already exists") }
                    kept[library.name.lowercased()] = nil
                }
            }
            for library in kept.values {
                for function in library.functions where functionNames.contains(function.name.lowercased()) {
                    throw CommandError("Function \(function.name) already exists")
                }
            }
            // Checked: now the live engine takes the new set (the kept libraries are reloaded too after a reset).
            let final = kept.values.sorted { $0.name < $1.name } + loaded
            cl_function_engine_reset(state.engine)
            state.libraries = [:]
            state.functions = [:]
            state.codeBytes = 0
            for library in final {
                let (name, bodyStart) = try Self.parseShebang(library.code)
                let (relinked, reference) = try Self.run(library.code, name: name, bodyStart: bodyStart, engine: state.engine, timeout: 0)
                Self.link(relinked, reference: reference, into: &state)
            }
            publish(state)
        }
    }

    // MARK: calling

    /// The flags of a function (its name in any case), or `nil` if there is none by that name.
    func flags(of function: String) -> ScriptFlags? {
        state.withLock { state in
            state.functions[function.lowercased()].flatMap { entry in
                state.libraries[entry.library]?.library.functions.first { $0.name == entry.name }?.flags
            }
        }
    }

    /// FCALL: runs a function; `invocation` runs its redis.call()s. Returns the RESP reply and what kind it is, or
    /// `nil` if there is no such function.
    func call(
        _ function: String, keys: [[UInt8]], arguments: [[UInt8]], command: CommandArguments, clientProtocol: Int, now: Int64,
        invocation: ScriptInvocation
    ) -> (reply: [UInt8], kind: ScriptEngine.ReplyKind)? {
        state.withLock { state in
            guard let entry = state.functions[function.lowercased()], let reference = state.libraries[entry.library]?.reference else {
                return nil
            }
            let function = entry.name
            isRunning.store(true, ordering: .releasing)
            runningFunctionWrote.store(false, ordering: .releasing)
            running.withLock { $0 = (function, command, now) }
            defer {
                running.withLock { $0 = nil }
                isRunning.store(false, ordering: .releasing)
            }
            let outcome = ScriptEngine.invoke(keys: keys, arguments: arguments, invocation: invocation) { keys, arguments, context, reply in
                function.withCString { name in
                    cl_function_call(
                        state.engine, reference, name, keys.count, keys.pointers, keys.lengths, arguments.count, arguments.pointers,
                        arguments.lengths, Int32(clientProtocol), context, ScriptEngine.commandCallback, ScriptEngine.logCallback, reply)
                }
            }
            publish(state)
            return outcome
        }
    }

    /// FUNCTION KILL's check and request: only a function that has not written can be stopped.
    func kill() -> ScriptEngine.KillOutcome {
        guard isRunning.load(ordering: .acquiring) else { return .notBusy }
        if runningFunctionWrote.load(ordering: .acquiring) { return .unkillable }
        cl_engine_request_kill(killTarget)
        return .killed
    }

    /// SHUTDOWN NOSAVE: stops a running function whatever it wrote.
    func forceKill() {
        if isRunning.load(ordering: .acquiring) { cl_engine_request_kill(killTarget) }
    }

    /// busy-reply-threshold (milliseconds, or negative for never), as ``ScriptEngine/setBusyThreshold(milliseconds:)``.
    func setBusyThreshold(milliseconds: Int) {
        cl_engine_set_busy_report(killTarget, Int64(milliseconds), ScriptEngine.busyCallback)
    }

    /// FUNCTION STATS's running_script: the running function, its command and since when (unix ms).
    var runningFunction: (name: String, command: CommandArguments, startedAt: Int64)? {
        running.withLock { $0 }
    }

    /// INFO memory and FUNCTION STATS: the Lua state's bytes, libraries, functions and the libraries' code bytes.
    var memory: (lua: Int, libraries: Int, functions: Int, codeBytes: Int) {
        (luaBytes.load(ordering: .relaxed), libraryCount.load(ordering: .relaxed), functionCount.load(ordering: .relaxed),
         codeBytes.load(ordering: .relaxed))
    }

    private func publish(_ state: borrowing State) {
        luaBytes.store(Int(cl_engine_memory(state.engine)), ordering: .relaxed)
        libraryCount.store(state.libraries.count, ordering: .relaxed)
        functionCount.store(state.functions.count, ordering: .relaxed)
        codeBytes.store(state.codeBytes, ordering: .relaxed)
    }
}
