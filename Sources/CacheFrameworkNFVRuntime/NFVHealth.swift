// Health checks of VNFCs, from the `nfv.health` label their tasks carry: TCP connect, HTTP GET (2xx/3xx) or a
// command (exit 0). `readiness(fallback:)` is the local backend's readiness check: VNF tasks are ready once their
// health check passes, other tasks use the fallback (PING for cache members). `checkBlocking` runs one check within a
// timeout on the calling thread (the health monitor calls it off the concurrency pool); `httpBody` reads a small
// HTTP answer (the metrics collector's `GET /metrics`).

import CacheFramework
public import CacheFrameworkRuntime
import CacheFrameworkNFV
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// VNFC health checks.
public enum NFVHealth {
    /// A readiness check for `LocalBackend`: VNF tasks by their health label, the rest by `fallback`.
    public static func readiness(fallback: @escaping LocalBackend.ReadinessCheck) -> LocalBackend.ReadinessCheck {
        { info in
            guard info.labels[VNFTaskTemplate.Label.instance] != nil else { return await fallback(info) }
            guard let health = info.labels[VNFTaskTemplate.Label.health] else { return true }
            return await check(health)
        }
    }

    /// Runs one check given as a health label.
    public static func check(_ label: String) async -> Bool {
        checkBlocking(label, timeoutSeconds: 20)
    }

    /// Runs one check given as a health label on this thread; a check that takes longer than `timeoutSeconds` fails
    /// (a command still running then is terminated).
    public static func checkBlocking(_ label: String, timeoutSeconds: Double) -> Bool {
        let parts = label.split(separator: " ", maxSplits: 2).map(String.init)
        let timeout = min(timeoutSeconds, 1)
        switch parts.first {
        case "tcp" where parts.count >= 2: return tcpConnect(parts[1], timeoutSeconds: timeout)
        case "http" where parts.count >= 2: return httpGet(parts[1], path: parts.count > 2 ? parts[2] : "/", timeoutSeconds: timeout)
        case "command":
            let command = label.dropFirst("command ".count).split(separator: "\t").map(String.init)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = command
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return false }
            let deadline = Date().addingTimeInterval(timeoutSeconds)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
                return false
            }
            process.waitUntilExit()
            return process.terminationStatus == 0
        default: return false
        }
    }

    private static func connect(_ endpoint: String, timeoutSeconds: Double = 1) -> Int32? {
        guard let colon = endpoint.lastIndex(of: ":"), let port = UInt16(endpoint[endpoint.index(after: colon)...]) else { return nil }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr(String(endpoint[..<colon]))
        let whole = max(0, timeoutSeconds.rounded(.down))
        var timeout = timeval(tv_sec: Int(whole), tv_usec: Int((timeoutSeconds - whole) * 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            close(descriptor)
            return nil
        }
        return descriptor
    }

    static func tcpConnect(_ endpoint: String, timeoutSeconds: Double = 1) -> Bool {
        guard let descriptor = connect(endpoint, timeoutSeconds: timeoutSeconds) else { return false }
        close(descriptor)
        return true
    }

    static func httpGet(_ endpoint: String, path: String, timeoutSeconds: Double = 1) -> Bool {
        guard let descriptor = connect(endpoint, timeoutSeconds: timeoutSeconds) else { return false }
        defer { close(descriptor) }
        let request = "GET \(path) HTTP/1.0\r\nHost: \(endpoint)\r\n\r\n"
        _ = request.withCString { send(descriptor, $0, strlen($0), 0) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        guard count > 12 else { return false }
        let status = String(decoding: buffer[9..<12], as: UTF8.self)
        return status.hasPrefix("2") || status.hasPrefix("3")
    }

    /// GETs `path` from `endpoint` (HTTP/1.0) and returns the body of a 2xx answer (nil on any failure); answers are
    /// read up to 64 KiB.
    public static func httpBody(_ endpoint: String, path: String, timeoutSeconds: Double = 1) -> String? {
        guard let descriptor = connect(endpoint, timeoutSeconds: timeoutSeconds) else { return nil }
        defer { close(descriptor) }
        let request = "GET \(path) HTTP/1.0\r\nHost: \(endpoint)\r\n\r\n"
        _ = request.withCString { send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while received.count < 65_536 {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        let text = String(decoding: received, as: UTF8.self)
        guard text.hasPrefix("HTTP/"), text.dropFirst(9).hasPrefix("2"), let split = text.range(of: "\r\n\r\n") else { return nil }
        return String(text[split.upperBound...])
    }
}
