// The input limits every connection of a server reads, shared and changeable while connections run (CONFIG SET
// proto-max-bulk-len, client-query-buffer-limit): each connection reads them once per socket read.
import Synchronization

/// Input limits shared by a server's connections that can change at run time. Each connection reads them at each
/// socket read, so a change applies to every connection from its next read on (relaxed atomic loads; nothing on the
/// per-command path).
public final class RESPInputLimits: Sendable {
    private let bulkLength: Atomic<Int>
    private let argumentCount: Atomic<Int>
    private let inlineLength: Atomic<Int>
    private let queryBufferLength: Atomic<Int>

    /// Creates the shared limits, starting at `limits` (redis's defaults unless given).
    public init(_ limits: RESPCommandDecoder.Limits = .init()) {
        bulkLength = Atomic(limits.maximumBulkLength)
        argumentCount = Atomic(limits.maximumArgumentCount)
        inlineLength = Atomic(limits.maximumInlineLength)
        queryBufferLength = Atomic(limits.maximumQueryBufferLength)
    }

    /// The limits now.
    public var current: RESPCommandDecoder.Limits {
        RESPCommandDecoder.Limits(
            maximumBulkLength: bulkLength.load(ordering: .relaxed),
            maximumArgumentCount: argumentCount.load(ordering: .relaxed),
            maximumInlineLength: inlineLength.load(ordering: .relaxed),
            maximumQueryBufferLength: queryBufferLength.load(ordering: .relaxed))
    }

    /// Replaces the limits; connections apply them from their next read.
    public func update(_ limits: RESPCommandDecoder.Limits) {
        bulkLength.store(limits.maximumBulkLength, ordering: .relaxed)
        argumentCount.store(limits.maximumArgumentCount, ordering: .relaxed)
        inlineLength.store(limits.maximumInlineLength, ordering: .relaxed)
        queryBufferLength.store(limits.maximumQueryBufferLength, ordering: .relaxed)
    }
}
