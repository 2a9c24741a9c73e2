// Typed errors of the Mesos backend: what failed (subscription refused, call rejected with its status and the
// master's message, heartbeats lost, a malformed stream) and what to do about it.

/// Why a Mesos scheduler API interaction failed.
public struct MesosError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure, for matching.
    public enum Kind: Hashable, Sendable {
        /// A call was made while no SUBSCRIBE stream is open (wait for SUBSCRIBED).
        case notSubscribed
        /// The master answered 400 Bad Request (malformed call, missing or stale Mesos-Stream-Id).
        case badRequest
        /// The master answered 403 Forbidden (framework not subscribed on this master).
        case forbidden
        /// Redirects did not lead to a leading master.
        case tooManyRedirects
        /// A 307 without a usable Location header.
        case invalidRedirect
        /// Any other status.
        case unexpectedStatus
        /// SUBSCRIBE was answered without a Mesos-Stream-Id header.
        case missingStreamID
        /// No event arrived for several heartbeat intervals.
        case heartbeatLost
        /// The master sent an ERROR event.
        case masterError
        /// An event could not be decoded.
        case malformedEvent
        /// The master URL is not `http(s)://host:port`.
        case invalidMasterURL
        /// The HTTP request failed (connection refused, reset, timed out).
        case transport
    }

    /// The kind of failure.
    public let kind: Kind
    /// The HTTP status, when the master answered.
    public let status: Int?
    /// What happened, with the master's own message where it sent one.
    public let message: String

    init(_ kind: Kind, status: Int? = nil, _ message: String) {
        self.kind = kind
        self.status = status
        self.message = message
    }

    public var description: String {
        let advice: String =
            switch kind {
            case .notSubscribed: " (calls are only valid after SUBSCRIBED; the backend resubscribes on its own)"
            case .badRequest: " (the call was malformed or its Mesos-Stream-Id is stale)"
            case .forbidden: " (the framework is not subscribed with this master; it resubscribes)"
            case .tooManyRedirects, .invalidRedirect: " (check --master: it should name a Mesos master)"
            case .heartbeatLost: " (reconnecting)"
            case .invalidMasterURL: " (use http://host:5050)"
            case .transport: " (is the master reachable?)"
            default: ""
            }
        return "mesos: \(message)\(status.map { " [HTTP \($0)]" } ?? "")\(advice)"
    }
}
