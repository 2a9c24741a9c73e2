// A small etcd v3 client over etcd's JSON gateway (etcd 3.4: `POST /v3/kv/range|put|txn|deleterange`,
// `/v3/lease/grant|keepalive|revoke`, `/v3/watch`), on AsyncHTTPClient. What the framework needs and no more: ranges,
// puts, deletes, transactions with compares, leases and a bounded watch.
//
// Wire notes (grpc-gateway's protobuf JSON): keys and values are base64; int64 fields travel as JSON strings; fields
// at their default value are left out (`succeeded` false, `count` 0, `kvs` empty, a PUT event's `type`); an error is
// an HTTP error status with `{"error", "message", "code"}` where `code` is the gRPC code. keepalive and watch are
// streams of `{"result": …}` lines.
//
// Failover: the client knows several endpoints (the members of one etcd cluster). A request goes to the endpoint
// that answered last; if it cannot be reached, times out, or answers "unavailable" (no leader, leader changed, request
// timed out inside etcd), the same request goes to the next endpoint, each once. A request that timed out after it was
// sent may have been applied: every write the framework sends is safe to repeat (puts of the same values, deletes,
// transactions guarded by compares).

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// Why an etcd request failed.
public struct EtcdError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable { case unavailable, server, malformedResponse, leaseExpired, fenced, cancelled }
        private let base: Base
        /// No endpoint answered (all down, unreachable, timed out, or without quorum).
        public static let unavailable = Code(base: .unavailable)
        /// etcd refused the request (the message says why).
        public static let server = Code(base: .server)
        /// The answer was not the JSON etcd sends.
        public static let malformedResponse = Code(base: .malformedResponse)
        /// The lease no longer exists (it expired or was revoked).
        public static let leaseExpired = Code(base: .leaseExpired)
        /// A write guarded by the leader key was refused: this instance is no longer the leader.
        public static let fenced = Code(base: .fenced)
        /// The calling task was cancelled.
        public static let cancelled = Code(base: .cancelled)
        public var description: String { "\(base)" }
    }

    /// What kind of failure.
    public var code: Code
    /// What failed, and what to do about it.
    public var message: String
    /// The gRPC status code etcd answered with, if it answered.
    public var grpcCode: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, grpcCode: Int? = nil) {
        self.code = code
        self.message = message
        self.grpcCode = grpcCode
    }

    public var description: String { message }
}

/// A key and its value as etcd stores it.
public struct EtcdKeyValue: Hashable, Sendable {
    /// The key.
    public var key: String
    /// The value's bytes.
    public var value: [UInt8]
    /// The revision that created the key (0: it does not exist).
    public var createRevision: Int64
    /// The revision of the last change.
    public var modRevision: Int64
    /// How many times it was written since created.
    public var version: Int64
    /// The lease it is attached to (0: none).
    public var lease: Int64

    /// The value as UTF-8 text.
    public var stringValue: String { String(decoding: value, as: UTF8.self) }
}

/// What a range request returns.
public struct EtcdRangeResult: Hashable, Sendable {
    /// The store's revision when the range was read.
    public var revision: Int64
    /// The keys found, in key order.
    public var kvs: [EtcdKeyValue]
}

/// One comparison of a transaction.
public struct EtcdCompare: Hashable, Sendable {
    /// What is compared.
    public enum Target: Hashable, Sendable {
        case version(Int64)
        case createRevision(Int64)
        case modRevision(Int64)
        case value([UInt8])
        case lease(Int64)
    }
    /// How.
    public enum Result: String, Hashable, Sendable {
        case equal = "EQUAL"
        case greater = "GREATER"
        case less = "LESS"
        case notEqual = "NOT_EQUAL"
    }
    /// The key compared.
    public var key: String
    /// The comparison.
    public var result: Result
    /// The field and the value it is compared with.
    public var target: Target

    /// Creates a comparison: `key`'s `target` field `result` the target's value.
    public init(key: String, _ result: Result, _ target: Target) {
        self.key = key
        self.result = result
        self.target = target
    }
}

/// One operation of a transaction branch.
public enum EtcdOperation: Hashable, Sendable {
    /// Reads `key` (or `key`..<`rangeEnd`).
    case range(key: String, rangeEnd: String? = nil)
    /// Writes `key`, attached to `lease` if not 0.
    case put(key: String, value: [UInt8], lease: Int64 = 0)
    /// Deletes `key` (or `key`..<`rangeEnd`).
    case deleteRange(key: String, rangeEnd: String? = nil)

    /// The key it touches.
    public var key: String {
        switch self {
        case .range(let key, _), .put(let key, _, _), .deleteRange(let key, _): key
        }
    }
}

/// The answer to one operation of the branch that ran.
public enum EtcdOperationResult: Hashable, Sendable {
    case range([EtcdKeyValue])
    case put
    case deleteRange(deleted: Int64)
}

/// What a transaction returns.
public struct EtcdTxnResult: Hashable, Sendable {
    /// Whether every compare held (the success branch ran).
    public var succeeded: Bool
    /// The store's revision after the transaction.
    public var revision: Int64
    /// The answers of the branch that ran, in order.
    public var results: [EtcdOperationResult]
}

/// A granted lease.
public struct EtcdLease: Hashable, Sendable {
    /// Its id.
    public var id: Int64
    /// The TTL etcd granted, in seconds (etcd raises TTLs below its minimum).
    public var ttl: Int64
}

/// A change reported by a watch.
public struct EtcdWatchEvent: Hashable, Sendable {
    /// A put or a delete (expired leases delete their keys).
    public enum Kind: Hashable, Sendable {
        case put
        case delete
    }
    /// What happened.
    public var kind: Kind
    /// The key after the change (for a delete: the key and the delete's revision).
    public var kv: EtcdKeyValue
}

/// An etcd v3 client over the JSON gateway, with failover between the members' endpoints.
public struct EtcdClient: Sendable {
    /// Client settings.
    public struct Configuration: Sendable {
        /// How long one request to one endpoint may take before the next endpoint is tried.
        public var requestTimeout: Duration = .seconds(2)
        /// The largest answer accepted.
        public var maximumResponseBytes = 64 << 20
        /// The defaults.
        public init() {}
    }

    /// The endpoints (`http://host:port`), in the order given.
    public let endpoints: [String]
    /// The settings.
    public let configuration: Configuration
    private let preferred: SharedIndex

    private final class SharedIndex: Sendable {
        let value = Mutex(0)
    }

    /// Creates a client for one etcd cluster.
    /// - Parameters:
    ///   - endpoints: client URLs of the members, e.g. `["http://127.0.0.1:2379"]`; trailing slashes are dropped.
    ///   - configuration: timeouts and limits.
    public init(endpoints: [String], configuration: Configuration = Configuration()) throws(EtcdError) {
        let cleaned = endpoints.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map {
            $0.hasSuffix("/") ? String($0.dropLast()) : $0
        }
        guard !cleaned.isEmpty else { throw EtcdError(.unavailable, "no etcd endpoint given: pass --etcd http://host:port[,…]") }
        for endpoint in cleaned where !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
            throw EtcdError(.unavailable, "etcd endpoint '\(endpoint)' is not an http:// or https:// URL")
        }
        self.endpoints = cleaned
        self.configuration = configuration
        self.preferred = SharedIndex()
    }

    /// The endpoint requests go to first (the one that answered last).
    public var currentEndpoint: String { endpoints[preferred.value.withLock { $0 }] }

    // MARK: KV

    /// Reads `key`, or every key in `key..<rangeEnd`.
    public func range(_ key: String, rangeEnd: String? = nil) async throws(EtcdError) -> EtcdRangeResult {
        var body: [String: Any] = ["key": Self.base64(key)]
        if let rangeEnd { body["range_end"] = Self.base64(rangeEnd) }
        let json = try await call("/v3/kv/range", body)
        return EtcdRangeResult(revision: Self.revision(json), kvs: try Self.keyValues(json["kvs"]))
    }

    /// Reads every key that starts with `prefix`.
    public func range(prefix: String) async throws(EtcdError) -> EtcdRangeResult {
        try await range(prefix, rangeEnd: Self.prefixEnd(prefix))
    }

    /// Writes `key` (attached to `lease` unless 0); returns the new revision.
    @discardableResult
    public func put(_ key: String, value: [UInt8], lease: Int64 = 0) async throws(EtcdError) -> Int64 {
        var body: [String: Any] = ["key": Self.base64(key), "value": Data(value).base64EncodedString()]
        if lease != 0 { body["lease"] = String(lease) }
        return Self.revision(try await call("/v3/kv/put", body))
    }

    /// Deletes `key`, or every key in `key..<rangeEnd`; returns how many were deleted.
    @discardableResult
    public func delete(_ key: String, rangeEnd: String? = nil) async throws(EtcdError) -> Int64 {
        var body: [String: Any] = ["key": Self.base64(key)]
        if let rangeEnd { body["range_end"] = Self.base64(rangeEnd) }
        return Self.int64(try await call("/v3/kv/deleterange", body)["deleted"])
    }

    /// Runs a transaction: if every comparison holds, `success` runs, else `failure`, atomically.
    public func txn(
        compare: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation] = []
    ) async throws(EtcdError) -> EtcdTxnResult {
        let body: [String: Any] = [
            "compare": compare.map(Self.json(_:)),
            "success": success.map(Self.json(_:)),
            "failure": failure.map(Self.json(_:)),
        ]
        let json = try await call("/v3/kv/txn", body)
        let responses = json["responses"] as? [[String: Any]] ?? []
        var results: [EtcdOperationResult] = []
        for response in responses {
            if let range = response["response_range"] as? [String: Any] {
                results.append(.range(try Self.keyValues(range["kvs"])))
            } else if response["response_put"] != nil {
                results.append(.put)
            } else if let delete = response["response_delete_range"] as? [String: Any] {
                results.append(.deleteRange(deleted: Self.int64(delete["deleted"])))
            } else {
                throw EtcdError(.malformedResponse, "etcd answered a transaction with an operation result it did not describe: \(response.keys.sorted())")
            }
        }
        return EtcdTxnResult(succeeded: json["succeeded"] as? Bool ?? false, revision: Self.revision(json), results: results)
    }

    // MARK: leases

    /// Grants a lease of `ttl` seconds.
    public func grantLease(ttl: Int64) async throws(EtcdError) -> EtcdLease {
        let json = try await call("/v3/lease/grant", ["TTL": String(ttl)])
        if let error = json["error"] as? String, !error.isEmpty {
            throw EtcdError(.server, "etcd refused a lease of \(ttl) s: \(error)")
        }
        return EtcdLease(id: Self.int64(json["ID"]), ttl: Self.int64(json["TTL"]))
    }

    /// Renews a lease once; returns its TTL in seconds. Throws `.leaseExpired` if the lease is gone.
    public func keepAlive(_ lease: Int64) async throws(EtcdError) -> Int64 {
        let lines = try await call("/v3/lease/keepalive", ["ID": String(lease)])
        let result = lines["result"] as? [String: Any] ?? lines
        let ttl = Self.int64(result["TTL"])
        guard ttl > 0 else {
            throw EtcdError(.leaseExpired, "etcd lease \(lease) expired or was revoked (keepalive answered TTL 0)")
        }
        return ttl
    }

    /// Revokes a lease, deleting the keys attached to it. A lease that is already gone is not an error.
    public func revokeLease(_ lease: Int64) async throws(EtcdError) {
        do {
            _ = try await call("/v3/lease/revoke", ["ID": String(lease)])
        } catch {
            if error.grpcCode == 5 { return }  // NotFound: already expired or revoked.
            throw error
        }
    }

    // MARK: watch

    /// Waits up to `timeout` for changes to `key` (or `key..<rangeEnd`) after `revision`; returns the first batch of
    /// events, or none if nothing changed in time. A change that happened after `revision` but before the call is
    /// reported at once (the watch starts at `revision + 1`).
    public func watchOnce(
        _ key: String, rangeEnd: String? = nil, afterRevision revision: Int64, timeout: Duration
    ) async throws(EtcdError) -> [EtcdWatchEvent] {
        var create: [String: Any] = ["key": Self.base64(key), "start_revision": String(revision + 1)]
        if let rangeEnd { create["range_end"] = Self.base64(rangeEnd) }
        let payload: Data
        do { payload = try JSONSerialization.data(withJSONObject: ["create_request": create]) } catch {
            throw EtcdError(.malformedResponse, "cannot encode an etcd watch request: \(error)")
        }
        let endpoint = currentEndpoint
        let maximum = configuration.maximumResponseBytes
        do {
            return try await withThrowingTaskGroup(of: [EtcdWatchEvent].self) { group in
                group.addTask {
                    try await Self.watchStream(endpoint: endpoint, payload: payload, maximumBytes: maximum)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return []
                }
                let first = try await group.next() ?? []
                group.cancelAll()
                return first
            }
        } catch let error as EtcdError {
            throw error
        } catch {
            if Task.isCancelled { throw EtcdError(.cancelled, "the etcd watch was cancelled") }
            throw EtcdError(.unavailable, "the etcd watch on \(endpoint) failed: \(error)")
        }
    }

    private static func watchStream(endpoint: String, payload: Data, maximumBytes: Int) async throws -> [EtcdWatchEvent] {
        var request = HTTPClientRequest(url: endpoint + "/v3/watch")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: payload))
        let response = try await HTTPClient.shared.execute(request, timeout: .hours(24))
        guard response.status == .ok else {
            throw EtcdError(.unavailable, "etcd at \(endpoint) refused the watch: HTTP \(response.status.code)")
        }
        var pending: [UInt8] = []
        for try await chunk in response.body {
            pending += chunk.readableBytesView
            guard pending.count <= maximumBytes else {
                throw EtcdError(.malformedResponse, "an etcd watch line from \(endpoint) exceeds \(maximumBytes) bytes")
            }
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                guard !line.isEmpty else { continue }
                guard let json = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                    throw EtcdError(.malformedResponse, "etcd at \(endpoint) sent a watch line that is not JSON")
                }
                if let error = json["error"] as? [String: Any] {
                    throw EtcdError(.server, "etcd at \(endpoint) ended the watch: \(error["message"] ?? error)")
                }
                let result = json["result"] as? [String: Any] ?? [:]
                if (result["canceled"] as? Bool) == true {
                    throw EtcdError(.server, "etcd at \(endpoint) cancelled the watch: \(result["cancel_reason"] ?? "compacted")")
                }
                let events = result["events"] as? [[String: Any]] ?? []
                guard !events.isEmpty else { continue }
                return try events.map { event in
                    let kv = try keyValue(event["kv"] as? [String: Any] ?? [:])
                    return EtcdWatchEvent(kind: (event["type"] as? String) == "DELETE" ? .delete : .put, kv: kv)
                }
            }
        }
        throw EtcdError(.unavailable, "etcd at \(endpoint) closed the watch stream")
    }

    // MARK: transport

    /// Posts `body` to `path`, trying each endpoint once starting from the preferred one.
    private func call(_ path: String, _ body: [String: Any]) async throws(EtcdError) -> [String: Any] {
        let payload: Data
        do { payload = try JSONSerialization.data(withJSONObject: body) } catch {
            throw EtcdError(.malformedResponse, "cannot encode an etcd request for \(path): \(error)")
        }
        let start = preferred.value.withLock { $0 }
        var failures: [String] = []
        for attempt in 0..<endpoints.count {
            if Task.isCancelled { throw EtcdError(.cancelled, "the etcd request \(path) was cancelled") }
            let index = (start + attempt) % endpoints.count
            let endpoint = endpoints[index]
            var request = HTTPClientRequest(url: endpoint + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: payload))
            let status: HTTPResponseStatus
            let bytes: ByteBuffer
            do {
                let timeout = TimeAmount.nanoseconds(Int64(configuration.requestTimeout.components.seconds) * 1_000_000_000
                    + configuration.requestTimeout.components.attoseconds / 1_000_000_000)
                let response = try await HTTPClient.shared.execute(request, deadline: .now() + timeout)
                status = response.status
                bytes = try await response.body.collect(upTo: configuration.maximumResponseBytes)
            } catch {
                if Task.isCancelled { throw EtcdError(.cancelled, "the etcd request \(path) was cancelled") }
                failures.append("\(endpoint): \(error)")
                continue
            }
            // keepalive answers a stream of lines; the first is the answer to our one request.
            var data = Data(bytes.readableBytesView)
            if let newline = data.firstIndex(of: UInt8(ascii: "\n")), newline < data.endIndex - 1 {
                data = data[..<newline]
            }
            guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                failures.append("\(endpoint): HTTP \(status.code) with a body that is not JSON")
                continue
            }
            if status == .ok {
                if let error = json["error"] as? [String: Any] {
                    // A streaming endpoint reports its error inside a 200 answer.
                    let code = (error["grpc_code"] as? Int) ?? (error["code"] as? Int)
                    let message = error["message"] as? String ?? "\(error)"
                    if code == 14 || code == 4 {
                        failures.append("\(endpoint): \(message)")
                        continue
                    }
                    throw EtcdError(.server, "etcd at \(endpoint) refused \(path): \(message)", grpcCode: code)
                }
                if index != start { preferred.value.withLock { $0 = index } }
                return json
            }
            let code = json["code"] as? Int
            let message = json["message"] as? String ?? json["error"] as? String ?? "HTTP \(status.code)"
            // Unavailable (14) and DeadlineExceeded (4): this member cannot serve now (no leader, no quorum).
            if code == 14 || code == 4 || status == .serviceUnavailable || status == .gatewayTimeout {
                failures.append("\(endpoint): \(message)")
                continue
            }
            throw EtcdError(.server, "etcd at \(endpoint) refused \(path): \(message)", grpcCode: code)
        }
        throw EtcdError(
            .unavailable,
            "no etcd endpoint could serve \(path) (is etcd running, with a quorum of its members?): "
                + failures.joined(separator: "; "))
    }

    // MARK: JSON helpers

    static func base64(_ string: String) -> String { Data(string.utf8).base64EncodedString() }

    /// The smallest key greater than every key starting with `prefix` (etcd's `clientv3.GetPrefixRangeEnd`).
    public static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.removeLast()
        }
        return "\0"
    }

    static func int64(_ value: Any?) -> Int64 {
        switch value {
        case let string as String: Int64(string) ?? 0
        case let number as NSNumber: number.int64Value
        default: 0
        }
    }

    static func revision(_ json: [String: Any]) -> Int64 {
        int64((json["header"] as? [String: Any])?["revision"])
    }

    static func keyValues(_ value: Any?) throws(EtcdError) -> [EtcdKeyValue] {
        guard let list = value as? [[String: Any]] else { return [] }
        var result: [EtcdKeyValue] = []
        for item in list { result.append(try keyValue(item)) }
        return result
    }

    static func keyValue(_ json: [String: Any]) throws(EtcdError) -> EtcdKeyValue {
        guard let keyText = json["key"] as? String, let key = Data(base64Encoded: keyText) else {
            throw EtcdError(.malformedResponse, "etcd sent a key-value without a base64 key")
        }
        let value = (json["value"] as? String).flatMap { Data(base64Encoded: $0) } ?? Data()
        return EtcdKeyValue(
            key: String(decoding: key, as: UTF8.self), value: Array(value), createRevision: int64(json["create_revision"]),
            modRevision: int64(json["mod_revision"]), version: int64(json["version"]), lease: int64(json["lease"]))
    }

    static func json(_ compare: EtcdCompare) -> [String: Any] {
        var json: [String: Any] = ["key": base64(compare.key), "result": compare.result.rawValue]
        switch compare.target {
        case .version(let version):
            json["target"] = "VERSION"
            json["version"] = String(version)
        case .createRevision(let revision):
            json["target"] = "CREATE"
            json["create_revision"] = String(revision)
        case .modRevision(let revision):
            json["target"] = "MOD"
            json["mod_revision"] = String(revision)
        case .value(let value):
            json["target"] = "VALUE"
            json["value"] = Data(value).base64EncodedString()
        case .lease(let lease):
            json["target"] = "LEASE"
            json["lease"] = String(lease)
        }
        return json
    }

    static func json(_ operation: EtcdOperation) -> [String: Any] {
        switch operation {
        case .range(let key, let rangeEnd):
            var range: [String: Any] = ["key": base64(key)]
            if let rangeEnd { range["range_end"] = base64(rangeEnd) }
            return ["request_range": range]
        case .put(let key, let value, let lease):
            var put: [String: Any] = ["key": base64(key), "value": Data(value).base64EncodedString()]
            if lease != 0 { put["lease"] = String(lease) }
            return ["request_put": put]
        case .deleteRange(let key, let rangeEnd):
            var delete: [String: Any] = ["key": base64(key)]
            if let rangeEnd { delete["range_end"] = base64(rangeEnd) }
            return ["request_delete_range": delete]
        }
    }
}
