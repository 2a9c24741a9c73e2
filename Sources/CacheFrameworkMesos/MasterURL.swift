// Master addresses: the base URL `scheme://host:port` the backend talks to, and how a 307's Location header (which a
// Mesos master sends as `//host:port/api/v1/scheduler`, and which docs show as bare `host:port`) resolves to the
// leading master's base URL.

import Foundation

/// A master's base URL, `http://host:port` (no path).
public struct MasterURL: Hashable, Sendable, CustomStringConvertible {
    /// `http` or `https`.
    public let scheme: String
    /// `host:port`.
    public let authority: String

    /// Parses `http://host:port[/path]`; the path is dropped.
    public init?(_ text: String) {
        guard let range = text.range(of: "://") else { return nil }
        let scheme = String(text[..<range.lowerBound]).lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let rest = text[range.upperBound...]
        let authority = String(rest.prefix { $0 != "/" && $0 != "?" })
        guard !authority.isEmpty else { return nil }
        self.scheme = scheme
        self.authority = authority
    }

    /// The scheduler endpoint, `…/api/v1/scheduler`.
    public var schedulerEndpoint: String { "\(scheme)://\(authority)/api/v1/scheduler" }

    public var description: String { "\(scheme)://\(authority)" }

    /// The master a `Location` header points to: an absolute URL, a scheme-relative `//host:port/…`, or a bare
    /// `host:port[/…]`; the scheme of `self` is kept when the location has none.
    public func resolving(location: String) -> MasterURL? {
        let location = location.trimmingCharacters(in: .whitespaces)
        if location.contains("://") { return MasterURL(location) }
        if location.hasPrefix("//") { return MasterURL(scheme + ":" + location) }
        if location.hasPrefix("/") { return self }
        return MasterURL(scheme + "://" + location)
    }
}
