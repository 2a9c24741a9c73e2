// Network-namespace isolation for the local backend (`LocalIsolation.networkNamespace`): each task runs in its own
// network namespace with its own IP on a bridge (IP per container, as Mesos' CNI isolator gives), under cgroup memory
// and CPU limits from its resources. Needs root and iproute2's `ip`.
//
// Layout on the host: one bridge (`NamespaceNetwork.bridge`, gateway `<prefix>.0.1/16`); per task a named namespace
// `<bridge>-<task id>` (so it can be found again after a framework restart) holding `eth0` with the task's address and
// a default route through the gateway; the host end of the veth pair, named after the address, sits on the bridge.
// cgroups: v2 when the unified hierarchy has the memory/cpu controllers (`memory.max`, `cpu.max`), else v1's memory
// and cpu hierarchies (`memory.limit_in_bytes`, `cpu.cfs_quota_us`), else none (logged once). The task's shell joins
// the cgroups before it execs the task (`LocalProcess.spawn`), so no instruction runs outside its limits.

public import CacheFramework
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The host network used by namespace isolation.
public struct NamespaceNetwork: Hashable, Sendable {
    /// The bridge's name (at most 15 characters); also the prefix of the tasks' namespace names.
    public var bridge: String
    /// The first two octets of the /16 the tasks' addresses come from (gateway `<a>.<b>.0.1`).
    public var prefix: (UInt8, UInt8)

    /// Creates a network; `bridge` at most 10 characters so the veth names derived from it fit Linux's 15.
    public init(bridge: String = "cfbr0", prefix: (UInt8, UInt8) = (10, 213)) {
        self.bridge = bridge
        self.prefix = prefix
    }

    /// The bridge's own address (the tasks' default gateway).
    public var gateway: String { "\(prefix.0).\(prefix.1).0.1" }

    public static func == (lhs: NamespaceNetwork, rhs: NamespaceNetwork) -> Bool {
        lhs.bridge == rhs.bridge && lhs.prefix == rhs.prefix
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(bridge)
        hasher.combine(prefix.0)
        hasher.combine(prefix.1)
    }
}

/// Hands out task addresses `<a>.<b>.<c>.<d>` with c in 1…254 and d in 1…254, never one in use.
public struct TaskAddressPool: Sendable {
    /// The network the addresses belong to.
    public let network: NamespaceNetwork
    private var inUse: Set<String> = []
    private var next = 0

    /// Creates a pool with nothing in use.
    public init(network: NamespaceNetwork) { self.network = network }

    /// The number of addresses the /16 offers to tasks.
    public static let capacity = 254 * 254

    /// A free address, or nil when all are in use.
    public mutating func allocate() -> String? {
        for _ in 0..<Self.capacity {
            let index = next
            next = (next + 1) % Self.capacity
            let address = "\(network.prefix.0).\(network.prefix.1).\(index / 254 + 1).\(index % 254 + 1)"
            if inUse.insert(address).inserted { return address }
        }
        return nil
    }

    /// Marks `address` used (an adopted task's).
    public mutating func claim(_ address: String) { inUse.insert(address) }

    /// Returns `address` to the pool.
    public mutating func release(_ address: String) { inUse.remove(address) }
}

/// Why isolation could not be set up or torn down; says which command failed and how.
public struct IsolationError: Error, CustomStringConvertible, Sendable {
    /// What failed.
    public var message: String
    public var description: String { message }
}

/// cgroup limits for one task.
public struct TaskLimits: Hashable, Sendable {
    /// Memory limit in bytes.
    public var memoryBytes: UInt64
    /// CPU share as a number of CPUs (quota = cpus × period).
    public var cpus: Double

    /// Creates limits.
    public init(memoryBytes: UInt64, cpus: Double) {
        self.memoryBytes = memoryBytes
        self.cpus = cpus
    }
}

/// Which cgroup hierarchy limits tasks.
public enum CgroupMode: String, Hashable, Sendable {
    /// The unified hierarchy with memory and cpu controllers.
    case v2
    /// The legacy memory and cpu hierarchies.
    case v1
    /// No usable hierarchy: tasks run without limits.
    case none

    /// What this machine offers (v2 preferred).
    public static func detect(root: String = "/sys/fs/cgroup") -> CgroupMode {
        if let controllers = try? String(contentsOfFile: root + "/cgroup.controllers", encoding: .utf8),
            controllers.split(separator: " ").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) })
                .contains("memory")
        {
            return .v2
        }
        let manager = FileManager.default
        if manager.isWritableFile(atPath: root + "/memory"), manager.isWritableFile(atPath: root + "/cpu") { return .v1 }
        return .none
    }
}

/// Sets up and tears down one backend's namespaces, veths and cgroups.
public struct NamespaceIsolation: Sendable {
    /// The host network.
    public let network: NamespaceNetwork
    /// The cgroup hierarchy used.
    public let cgroupMode: CgroupMode
    /// The cgroup filesystem root.
    public let cgroupRoot: String
    /// The `ip` executable.
    public let ipCommand: String

    /// The group under which every task's cgroup is created.
    public static let cgroupGroup = "cache-framework"

    /// Checks that namespaces can be used here (root, `ip` present) and picks the cgroup mode.
    public init(network: NamespaceNetwork, cgroupRoot: String = "/sys/fs/cgroup") throws(IsolationError) {
        guard geteuid() == 0 else {
            throw IsolationError(message: "--isolation netns needs root (network namespaces, veths, cgroups); run as root or use --isolation process")
        }
        guard let ip = LocalProcess.resolve("ip", searchPaths: ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) else {
            throw IsolationError(message: "--isolation netns needs iproute2's 'ip' command: apt-get install iproute2")
        }
        guard network.bridge.count <= 10, !network.bridge.isEmpty else {
            throw IsolationError(message: "bridge name '\(network.bridge)' must have 1 to 10 characters")
        }
        self.network = network
        self.cgroupRoot = cgroupRoot
        self.cgroupMode = CgroupMode.detect(root: cgroupRoot)
        self.ipCommand = ip
    }

    /// The namespace a task runs in.
    public func namespace(of taskID: TaskID) -> String {
        "\(network.bridge)-" + String(taskID.value.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" ? $0 : "_" })
    }

    /// The command prefix that runs a program inside the task's namespace (exec in place: the pid stays the task's).
    public func launchPrefix(for taskID: TaskID) -> [String] { [ipCommand, "netns", "exec", namespace(of: taskID)] }

    // MARK: host

    /// Creates the bridge with the gateway address if it is missing, and brings it up.
    public func prepareHost() throws(IsolationError) {
        if (try? run(["link", "show", "dev", network.bridge])) == nil {
            try run(["link", "add", network.bridge, "type", "bridge"])
        }
        let addresses = (try? run(["-4", "addr", "show", "dev", network.bridge])) ?? ""
        if !addresses.contains("inet \(network.gateway)/") {
            try run(["addr", "add", "\(network.gateway)/16", "dev", network.bridge])
        }
        try run(["link", "set", network.bridge, "up"])
    }

    /// Removes the bridge and every namespace of this network still present, with its veth (a teardown: tasks still
    /// running in those namespaces lose their network). Tests call it on the way out, also when they failed midway.
    public func removeBridge() {
        for namespace in existingNamespaces() { tearDownNetwork(namespace: namespace) }
        _ = try? run(["link", "del", network.bridge])
    }

    /// The namespaces of this network that exist on the host.
    public func existingNamespaces() -> [String] {
        let listing = (try? run(["netns", "list"])) ?? ""
        return listing.split(separator: "\n").compactMap { line in
            let name = String(line.split(separator: " ").first ?? "")
            return name.hasPrefix(network.bridge + "-") ? name : nil
        }
    }

    // MARK: tasks

    /// Creates the task's namespace with `address` and its cgroups; returns the `cgroup.procs` files its process joins.
    public func setUp(_ taskID: TaskID, address: String, limits: TaskLimits?) throws(IsolationError) -> [String] {
        let namespace = namespace(of: taskID)
        tearDownNetwork(namespace: namespace)
        let hostEnd = vethName(for: address)
        do {
            try run(["netns", "add", namespace])
            try run(["link", "add", hostEnd, "type", "veth", "peer", "name", "eth0", "netns", namespace])
            try run(["link", "set", hostEnd, "master", network.bridge, "up"])
            try run(["-n", namespace, "addr", "add", "\(address)/16", "dev", "eth0"])
            try run(["-n", namespace, "link", "set", "lo", "up"])
            try run(["-n", namespace, "link", "set", "eth0", "up"])
            try run(["-n", namespace, "route", "add", "default", "via", network.gateway])
        } catch {
            tearDownNetwork(namespace: namespace)
            throw error
        }
        guard let limits else { return [] }
        do {
            return try createCgroups(for: namespace, limits: limits)
        } catch {
            tearDownNetwork(namespace: namespace)
            throw error
        }
    }

    /// Removes the task's veth pair, namespace and cgroups. The veth is deleted explicitly: the kernel would remove it
    /// with the namespace, but only later, from its cleanup work queue.
    public func tearDown(_ taskID: TaskID) {
        let namespace = namespace(of: taskID)
        if let address = address(of: taskID) { _ = try? run(["link", "del", vethName(for: address)]) }
        tearDownNetwork(namespace: namespace)
        for directory in cgroupDirectories(for: namespace) { rmdir(directory) }
    }

    /// The IPv4 address of `eth0` in the task's namespace (for an adopted task), if it exists.
    public func address(of taskID: TaskID) -> String? {
        guard let output = try? run(["-n", namespace(of: taskID), "-4", "-o", "addr", "show", "dev", "eth0"]) else { return nil }
        guard let range = output.range(of: "inet ") else { return nil }
        return output[range.upperBound...].split(separator: "/").first.map(String.init)
    }

    /// The cgroup directories of a task, for the mode in use.
    public func cgroupDirectories(for namespace: String) -> [String] {
        switch cgroupMode {
        case .v2: ["\(cgroupRoot)/\(Self.cgroupGroup)/\(namespace)"]
        case .v1: ["\(cgroupRoot)/memory/\(Self.cgroupGroup)/\(namespace)", "\(cgroupRoot)/cpu/\(Self.cgroupGroup)/\(namespace)"]
        case .none: []
        }
    }

    private func createCgroups(for namespace: String, limits: TaskLimits) throws(IsolationError) -> [String] {
        let period: UInt64 = 100_000
        let quota = max(1_000, UInt64((limits.cpus * Double(period)).rounded()))
        let directories = cgroupDirectories(for: namespace)
        do {
            for directory in directories {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            switch cgroupMode {
            case .v2:
                // Controllers must be enabled in every ancestor's subtree_control for the leaf to get the files.
                try? write("+memory +cpu", to: "\(cgroupRoot)/cgroup.subtree_control")
                try? write("+memory +cpu", to: "\(cgroupRoot)/\(Self.cgroupGroup)/cgroup.subtree_control")
                try write("\(limits.memoryBytes)", to: directories[0] + "/memory.max")
                try write("\(quota) \(period)", to: directories[0] + "/cpu.max")
            case .v1:
                try write("\(limits.memoryBytes)", to: directories[0] + "/memory.limit_in_bytes")
                try write("\(period)", to: directories[1] + "/cpu.cfs_period_us")
                try write("\(quota)", to: directories[1] + "/cpu.cfs_quota_us")
            case .none:
                return []
            }
        } catch {
            for directory in directories { rmdir(directory) }
            throw IsolationError(message: "cannot set cgroup limits for \(namespace) (\(cgroupMode.rawValue)): \(error)")
        }
        return directories.map { $0 + "/cgroup.procs" }
    }

    private func write(_ value: String, to path: String) throws {
        try value.write(toFile: path, atomically: false, encoding: .utf8)
    }

    private func tearDownNetwork(namespace: String) {
        _ = try? run(["netns", "del", namespace])
    }

    /// The host end of a task's veth pair: the bridge's name, "v" and the address's last two octets in hex (unique
    /// while the address is in use; at most 15 characters).
    func vethName(for address: String) -> String {
        let octets = address.split(separator: ".").dropFirst(2).compactMap { UInt8($0) }
        return network.bridge + "v" + octets.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Runs `ip` with `arguments`; returns its standard output or throws with its standard error.
    @discardableResult
    func run(_ arguments: [String]) throws(IsolationError) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ipCommand)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw IsolationError(message: "cannot run \(ipCommand): \(error)")
        }
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let reason = String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw IsolationError(message: "ip \(arguments.joined(separator: " ")) failed: \(reason)")
        }
        return String(decoding: stdout, as: UTF8.self)
    }
}
