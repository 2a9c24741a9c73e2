// Starts the real `cache-node` executable for integration tests on a free loopback port (it is started with
// `--port 0` and reports the port it bound), and stops it at the end. Also runs client programs (redis-cli,
// python3) and captures their output.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Where the package's build products are.
enum PackagePaths {
    /// The package root (three levels above this file).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The cache-node binary: `$CACHE_NODE_BIN`, else the debug build.
    static var cacheNodeBinary: String {
        if let path = ProcessInfo.processInfo.environment["CACHE_NODE_BIN"] { return path }
        return root.appendingPathComponent(".build/debug/cache-node").path
    }

    /// A client script shipped with the tests.
    static func clientScript(_ name: String) -> String {
        root.appendingPathComponent("Tests/IntegrationTests/Clients/\(name)").path
    }

    /// A data file shipped with the tests (`Fixtures/redis-7.2.conf`: redis 7.2.4's redis.conf as released).
    static func fixture(_ name: String) -> String {
        root.appendingPathComponent("Tests/IntegrationTests/Fixtures/\(name)").path
    }
}

/// Failures of the test harness itself, with what to do about them.
struct HarnessError: Error, CustomStringConvertible {
    let description: String
}

/// A running cache-node process.
final class CacheNodeProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    private let output = Pipe()
    private let logStorage = LockedText()

    /// Starts `<launcher> cache-node <leading> --bind 127.0.0.1 --port 0 <arguments>` and waits until it is ready
    /// (`leading` is where a config file path goes; `launcher` is a program that execs it, such as `taskset -c 0`).
    init(arguments: [String] = [], leading: [String] = [], launcher: [String] = []) throws {
        let binary = PackagePaths.cacheNodeBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw HarnessError(description: "cache-node binary not found at \(binary): run `swift build` first (or set CACHE_NODE_BIN)")
        }
        let nodeArguments = leading + ["--bind", "127.0.0.1", "--port", "0", "--save", ""] + arguments
        if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(launcher.dropFirst()) + [binary] + nodeArguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = nodeArguments
        }
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // Read lines until the ready line names the port.
        var collected = ""
        let deadline = Date().addingTimeInterval(30)
        var foundPort: Int?
        while foundPort == nil && Date() < deadline && process.isRunning {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { continue }
            collected += String(decoding: data, as: UTF8.self)
            if let range = collected.range(of: "Ready to accept connections tcp on port ") {
                let rest = collected[range.upperBound...].prefix { $0.isNumber }
                foundPort = Int(rest)
            }
        }
        guard let foundPort else {
            process.terminate()
            throw HarnessError(description: "cache-node did not become ready; output:\n\(collected)")
        }
        port = foundPort
        // Keep draining output so the process never blocks on a full pipe; keep it for `log`.
        let kept = logStorage
        kept.withLock { $0 = collected }
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            kept.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
    }

    /// Everything the node printed so far.
    var log: String { logStorage.withLock { $0 } }

    /// Kills the node without any shutdown (SIGKILL) and waits for it.
    func kill9() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Stops the node with SIGTERM (graceful shutdown) and waits for it, at most `gracePeriod` seconds: a node still
    /// running then is killed (SIGKILL) and the test fails with an issue, instead of hanging on a node that cannot
    /// shut down.
    func stop(gracePeriod: TimeInterval = 20) {
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(gracePeriod)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                Issue.record(
                    "cache-node (pid \(process.processIdentifier)) did not exit within \(Int(gracePeriod)) s of SIGTERM and was killed; log tail:\n\(log.suffix(2_000))"
                )
            } else {
                process.waitUntilExit()
            }
        }
        output.fileHandleForReading.readabilityHandler = nil
    }

    deinit { stop() }
}

/// The result of running a client program.
struct ProgramResult {
    var status: Int32
    var output: String
}

/// Runs `executable` with `arguments`, feeding `input` on stdin, and returns its exit status and output.
func runProgram(_ executable: String, _ arguments: [String], input: String? = nil, timeout: TimeInterval = 120) throws -> ProgramResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    // Output goes to a temporary file: no pipe to fill up, nothing shared between threads.
    let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("program-\(UUID().uuidString).out").path
    _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    let outputHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
    process.standardOutput = outputHandle
    process.standardError = outputHandle
    let stdin = Pipe()
    process.standardInput = stdin
    try process.run()
    if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
    try stdin.fileHandleForWriting.close()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning {
        process.terminate()
        throw HarnessError(description: "\(executable) \(arguments) did not finish within \(timeout) s")
    }
    process.waitUntilExit()
    try outputHandle.close()
    let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    return ProgramResult(status: process.terminationStatus, output: text)
}

/// Runs `redis-cli -p port args…` and returns its output without the trailing newline.
func redisCLI(_ port: Int, _ arguments: [String], extra: [String] = []) throws -> String {
    let result = try runProgram("/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(port)] + extra + arguments)
    var text = result.output
    while text.hasSuffix("\n") { text.removeLast() }
    return text
}

/// A string behind a lock (the output handler runs on another thread).
final class LockedText: @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""

    func withLock<T>(_ body: (inout String) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&text)
    }
}
