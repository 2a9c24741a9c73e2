// The RESP protocol versions a connection can speak (RESP2 by default, RESP3 after `HELLO 3`).

/// The version of the Redis serialization protocol a connection speaks.
public enum RESPVersion: Int, Sendable, Hashable {
    /// RESP2: maps, sets, doubles and booleans are sent as arrays, bulk strings and integers.
    case v2 = 2
    /// RESP3: native maps, sets, doubles, booleans, nulls and out-of-band push messages.
    case v3 = 3
}
