// POSIX process plumbing for the local backend: spawn a task in its own process group with default signal
// dispositions, reap or probe it without blocking, identify it across a framework restart (pid + start time from
// /proc, so a reused pid is not mistaken for our task), signal its whole group, and check that a port is free.
// posix_spawn rather than Foundation.Process: the child must not inherit ServiceLifecycle's ignored SIGTERM or a
// blocked signal mask, and it must get its own process group so a terminal's Ctrl-C does not reach it.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
public enum ProcessExit: Hashable, Sendable, CustomStringConvertible {
    /// It exited with a status code.
    case exited(Int32)
    /// A signal ended it.
    case signaled(Int32)
    /// It is gone but its status is unknown (an adopted process is not our child, so it cannot be reaped).
    case vanished

    public var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .signaled(let signal): "killed by signal \(signal)\(signal == SIGKILL ? " (SIGKILL)" : "")"
        case .vanished: "process is gone (exit status unknown: it was adopted after a framework restart)"
        }
    }
}

/// Why a process could not be started.
public struct SpawnError: Error, CustomStringConvertible, Sendable {
    /// What failed.
    public var message: String
    public var description: String { message }
}

/// Process operations used by `LocalBackend`.
public enum LocalProcess {
    /// Starts `executable` with `arguments` in a new process group, in `directory`, stdout and stderr appended to
    /// `directory/stdout` and `directory/stderr`. `prefix` (a command that execs its arguments in place, such as
    /// `ip netns exec NAME`) runs first; the process joins the cgroups whose `cgroup.procs` files `cgroupProcFiles`
    /// names before anything of the task runs.
    public static func spawn(
        executable: String, arguments: [String], environment: [String: String], directory: String,
        prefix: [String] = [], cgroupProcFiles: [String] = []
    ) throws(SpawnError) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, directory + "/stdout", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, directory + "/stderr", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        // Nothing else of the framework's (listening sockets, pipes, the store) leaks into a member: an inherited
        // listener would hold its port and accept queue after the framework closed it.
        _ = spawnActionsAddCloseFrom(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2] {
            sigaddset(&defaultSignals, signal)
        }
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        // Glibc's posix_spawn_file_actions_addchdir_np is not visible to Swift: /bin/sh changes directory, joins the
        // cgroups (`$$` is the pid the task keeps) and execs the task in place (same pid, same process group).
        let joins = cgroupProcFiles.map { "echo $$ > '\($0)' && " }.joined()
        let shell = ["/bin/sh", "-c", "cd -- \"$0\" && \(joins)exec \"$@\"", directory] + prefix + [executable]
        let argv: [UnsafeMutablePointer<CChar>?] = (shell + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: Int32 = 0
        let status = argv.withUnsafeBufferPointer { argvBuffer in
            envp.withUnsafeBufferPointer { envBuffer in
                posix_spawn(&pid, "/bin/sh", &actions, &attributes, argvBuffer.baseAddress!, envBuffer.baseAddress!)
            }
        }
        guard status == 0 else {
            throw SpawnError(message: "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return pid
    }

    /// Whether our child `pid` ended; reaps it. `nil` while it runs.
    public static func reap(_ pid: Int32) -> ProcessExit? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == 0 { return nil }
        if result < 0 { return errno == ECHILD ? probe(pid, startTicks: nil) : nil }
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }

    /// Whether a process that is not our child (adopted) still runs as the same process: `.vanished` if not.
    public static func probe(_ pid: Int32, startTicks: UInt64?) -> ProcessExit? {
        guard kill(pid, 0) == 0 || errno == EPERM else { return .vanished }
        if let startTicks, let current = self.startTicks(pid), current != startTicks { return .vanished }
        if isZombie(pid) { return .vanished }
        return nil
    }

    /// The environment variable every task process carries (`<framework id> <task id>`), so a process that was spawned
    /// but never journalled (the framework died in between) can still be found and stopped.
    public static let taskTagVariable = "CACHE_FRAMEWORK_TASK_ID"

    /// Live processes whose environment carries `taskTagVariable=tag` (from /proc/PID/environ).
    public static func processes(taggedWith value: String) -> [Int32] {
        let tag = Array("\(taskTagVariable)=\(value)".utf8)
        var found: [Int32] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let environ = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            if environ.split(separator: 0).contains(where: { Array($0) == tag }), !isZombie(pid) { found.append(pid) }
        }
        return found
    }

    /// The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), which tells a process from
    /// a later one that reuses its pid.
    public static func startTicks(_ pid: Int32) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name (which may hold spaces) start at field 3.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    private static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }

    /// Sends `signal` to the process group led by `pid` (each task leads its own group).
    public static func signalGroup(_ pid: Int32, _ signal: Int32) {
        if kill(-pid, signal) != 0 { kill(pid, signal) }
    }

    /// Whether `port` can be bound on 127.0.0.1 right now.
    public static func isPortFree(_ port: UInt64) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var reuse: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(truncatingIfNeeded: port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// The executable `name` resolves to: itself if it is a path, else the first match in `searchPaths`, then `PATH`.
    public static func resolve(_ name: String, searchPaths: [String]) -> String? {
        let manager = FileManager.default
        if name.contains("/") { return manager.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPaths + path.split(separator: ":").map(String.init) {
            let candidate = directory + "/" + name
            if manager.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The machine's online CPUs and physical memory in MB.
    public static func machineResources() -> (cpus: Double, memMB: Double) {
        let cpus = Double(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        let pages = Double(sysconf(Int32(_SC_PHYS_PAGES)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        return (cpus, (pages * pageSize / 1_048_576).rounded(.down))
    }
}

/// glibc ≥ 2.34's `posix_spawn_file_actions_addclosefrom_np` (Debian 12 has 2.36); its declaration is not visible
/// through Swift's Glibc module, so it is bound by symbol name (pointer and int arguments pass identically).
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func spawnActionsAddCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ lowest: CInt) -> CInt
