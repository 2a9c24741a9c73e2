// Replication ids and the PSYNC decision (redis replication.c masterTryPartialResynchronization), as pure values.
//
// A node's stream is named by `replid`; the stream's history before a promotion is still reachable under
// `replid2` up to `secondReplOffset`, so replicas of the old primary can continue from the promoted one.

/// The replication ids of a node.
public struct ReplicationIdentity: Sendable, Hashable {
    /// The current stream's id (INFO `master_replid`).
    public private(set) var replid: String
    /// The previous primary's id after a promotion (INFO `master_replid2`), all zeros otherwise.
    public private(set) var replid2: String
    /// The first offset not valid under `replid2` (INFO `second_repl_offset`), -1 when none.
    public private(set) var secondReplOffset: Int64

    /// The id meaning "none".
    public static let none = String(repeating: "0", count: 40)

    public init(replid: String, replid2: String = ReplicationIdentity.none, secondReplOffset: Int64 = -1) {
        self.replid = replid
        self.replid2 = replid2
        self.secondReplOffset = secondReplOffset
    }

    /// A random 40-hex-digit id.
    public static func random<Generator: RandomNumberGenerator>(using generator: inout Generator) -> String {
        let digits = Array("0123456789abcdef")
        return String((0..<40).map { _ in digits[Int(generator.next() % 16)] })
    }

    /// A random id from the system generator.
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    /// Promotion (REPLICAOF NO ONE) or a replica starting a new history: the current id becomes the second one,
    /// valid up to `offset` (the last byte processed), and a fresh id names what follows (redis shiftReplicationId).
    public mutating func shift(to newID: String, at offset: Int64) {
        replid2 = replid
        secondReplOffset = offset + 1
        replid = newID
    }

    /// Adopts a primary's id (after FULLRESYNC, or a CONTINUE naming a new id), forgetting the second id when the
    /// history changes entirely.
    public mutating func adopt(_ id: String, keepingHistoryUpTo offset: Int64?) {
        if let offset, id != replid {
            shift(to: id, at: offset)
        } else if offset == nil {
            replid = id
            replid2 = Self.none
            secondReplOffset = -1
        }
    }

    /// Clears the second id (a full resync replaces the whole history).
    public mutating func clearSecond() {
        replid2 = Self.none
        secondReplOffset = -1
    }
}

/// What the primary answers to `PSYNC <replid> <offset>`.
public enum PSyncDecision: Sendable, Hashable {
    /// `+CONTINUE <replid>` then the backlog from `offset` (the first byte the replica needs).
    case partial(from: Int64)
    /// `+FULLRESYNC <replid> <offset>` then a snapshot; `reason` is logged.
    case full(reason: String)
}

extension ReplicationIdentity {
    /// Decides how to serve a replica asking for `requestedID` from `offset` (its processed offset + 1).
    public func decide(requestedID: String, offset: Int64, backlog: ReplicationBacklog?) -> PSyncDecision {
        if requestedID == "?" { return .full(reason: "replica asked for a full resync") }
        let matchesCurrent = requestedID == replid
        let matchesPrevious = requestedID == replid2 && replid2 != Self.none && offset <= secondReplOffset
        guard matchesCurrent || matchesPrevious else {
            if requestedID == replid2 {
                return .full(reason: "requested offset \(offset) is past the previous history's end \(secondReplOffset)")
            }
            return .full(reason: "replication id mismatch (replica asked for \(requestedID), my ids are \(replid) and \(replid2))")
        }
        guard let backlog else { return .full(reason: "no backlog") }
        guard backlog.canServe(from: offset) else {
            return .full(reason:
                "requested offset \(offset) is outside the backlog (\(backlog.firstByteOffset)...\(backlog.masterOffset + 1))")
        }
        return .partial(from: offset)
    }
}
