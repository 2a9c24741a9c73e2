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
    /// Calls, time, failures and rejections per command (INFO commandstats).
    public let commands: CommandCounters
    // Keep blocks of different loops on different cache lines.
    private let padding = (0, 0, 0, 0, 0, 0, 0, 0)

    init(commandCount: Int) {
        commands = CommandCounters(commandCount: commandCount)
    }
}

/// Per-command counters of one event loop (INFO commandstats: redis's `calls`, `usec`, `failed_calls`,
/// `rejected_calls`), by index in the command table. Only the loop's own thread adds to them, so an addition is a
/// plain load and store, not an atomic read-modify-write; other threads read them (INFO) and CONFIG RESETSTAT
/// zeroes them, which can lose an addition racing with it.
public final class CommandCounters: @unchecked Sendable {
    /// What is counted per command.
    public enum Field: Int, CaseIterable, Sendable {
        case calls, microseconds, failed, rejected
    }

    /// The number of commands counted.
    public let commandCount: Int
    private let storage: UnsafeMutablePointer<Atomic<Int>>
    private var slots: Int { commandCount * Field.allCases.count }

    init(commandCount: Int) {
        self.commandCount = commandCount
        storage = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: max(1, commandCount * Field.allCases.count))
        for slot in 0..<(commandCount * Field.allCases.count) { (storage + slot).initialize(to: Atomic(0)) }
    }

    deinit {
        storage.deinitialize(count: slots)
        storage.deallocate()
    }

    /// Adds `amount` to `field` of command `index`; only on this block's event loop.
    @inline(__always)
    public func add(_ amount: Int, to field: Field, of index: Int) {
        let counter = storage + (index * Field.allCases.count + field.rawValue)
        counter.pointee.store(counter.pointee.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// The current value of `field` of command `index`.
    public func value(_ field: Field, of index: Int) -> Int {
        (storage + (index * Field.allCases.count + field.rawValue)).pointee.load(ordering: .relaxed)
    }

    /// Zeroes every counter (CONFIG RESETSTAT).
    func reset() {
        for slot in 0..<slots { (storage + slot).pointee.store(0, ordering: .relaxed) }
    }
}

/// All stats blocks of the node.
public final class NodeStats: Sendable {
    private let blocks = Mutex<[ObjectIdentifier: StatsBlock]>([:])
    private let commandCount: Int

    init(commandCount: Int) {
        self.commandCount = commandCount
    }

    /// The block for connections on the event loop identified by `loop`.
    public func block(for loop: ObjectIdentifier) -> StatsBlock {
        blocks.withLock { blocks in
            if let block = blocks[loop] { return block }
            let block = StatsBlock(commandCount: commandCount)
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
                block.commands.reset()
            }
        }
    }

    /// One command counter summed over all blocks.
    public func total(_ field: CommandCounters.Field, of index: Int) -> Int {
        blocks.withLock { $0.values.reduce(0) { $0 + $1.commands.value(field, of: index) } }
    }
}
