// Health checks of VNFCs, from the `nfv.health` label their tasks carry: TCP connect, HTTP GET (2xx/3xx) or a
// command (exit 0). `readiness(fallback:)` is the local backend's readiness check: VNF tasks are ready once their
// health check passes, other tasks use the fallback (PING for cache members).

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
        let parts = label.split(separator: " ", maxSplits: 2).map(String.init)
        switch parts.first {
        case "tcp" where parts.count >= 2: return tcpConnect(parts[1])
        case "http" where parts.count >= 2: return httpGet(parts[1], path: parts.count > 2 ? parts[2] : "/")
        case "command":
            let command = label.dropFirst("command ".count).split(separator: "\t").map(String.init)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = command
            guard (try? process.run()) != nil else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        default: return false
        }
    }

    private static func connect(_ endpoint: String) -> Int32? {
        guard let colon = endpoint.lastIndex(of: ":"), let port = UInt16(endpoint[endpoint.index(after: colon)...]) else { return nil }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr(String(endpoint[..<colon]))
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
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

    static func tcpConnect(_ endpoint: String) -> Bool {
        guard let descriptor = connect(endpoint) else { return false }
        close(descriptor)
        return true
    }

    static func httpGet(_ endpoint: String, path: String) -> Bool {
        guard let descriptor = connect(endpoint) else { return false }
        defer { close(descriptor) }
        let request = "GET \(path) HTTP/1.0\r\nHost: \(endpoint)\r\n\r\n"
        _ = request.withCString { send(descriptor, $0, strlen($0), 0) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        guard count > 12 else { return false }
        let status = String(decoding: buffer[9..<12], as: UTF8.self)
        return status.hasPrefix("2") || status.hasPrefix("3")
    }
}
