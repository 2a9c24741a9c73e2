// Counters INFO reports. Each event loop has its own block so the hot path never shares a cache line between
// cores; INFO adds the blocks up.
public import Synchronization

/// Counters updated by the connections of one event loop.
public final class StatsBlock: Sendable {
    public let commandsProcessed = Atomic<Int>(0)
    public let keyspaceHits = Atomic<Int>(0)
    public let keyspaceMisses = Atomic<Int>(0)
    public let errorReplies = Atomic<Int>(0)
    public let connectionsReceived = Atomic<Int>(0)
    public let connectedClients = Atomic<Int>(0)
    public let rejectedCommandsOOM = Atomic<Int>(0)
    public let blockedClients = Atomic<Int>(0)
    /// Bytes read from and written to clients (INFO `total_net_input_bytes` / `total_net_output_bytes`).
    public let netInputBytes = Atomic<Int>(0)
    public let netOutputBytes = Atomic<Int>(0)
    /// Write commands run by this loop's clients since start; never reset (``NodeState/changesSinceSave``).
    public let changesApplied = Atomic<Int>(0)
    // Keep blocks of different loops on different cache lines.
    private let padding = (0, 0, 0, 0, 0, 0, 0, 0)

    init() {}
}

/// All stats blocks of the node.
public final class NodeStats: Sendable {
    private let blocks = Mutex<[ObjectIdentifier: StatsBlock]>([:])

    init() {}

    /// The block for connections on the event loop identified by `loop`.
    public func block(for loop: ObjectIdentifier) -> StatsBlock {
        blocks.withLock { blocks in
            if let block = blocks[loop] { return block }
            let block = StatsBlock()
            blocks[loop] = block
            return block
        }
    }

    /// Sums one counter over all blocks.
    public func total(_ counter: (StatsBlock) -> Int) -> Int {
        blocks.withLock { $0.values.reduce(0) { $0 + counter($1) } }
    }

    /// Zeroes the resettable counters (CONFIG RESETSTAT).
    public func reset() {
        blocks.withLock { blocks in
            for block in blocks.values {
                block.commandsProcessed.store(0, ordering: .relaxed)
                block.keyspaceHits.store(0, ordering: .relaxed)
                block.keyspaceMisses.store(0, ordering: .relaxed)
                block.errorReplies.store(0, ordering: .relaxed)
                block.connectionsReceived.store(0, ordering: .relaxed)
                block.rejectedCommandsOOM.store(0, ordering: .relaxed)
                block.netInputBytes.store(0, ordering: .relaxed)
                block.netOutputBytes.store(0, ordering: .relaxed)
            }
        }
    }
}
