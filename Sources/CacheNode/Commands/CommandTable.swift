// The command table: every family's specs in one lookup, checked once at start-up (unique names, sane arity and
// key specs). Lookup lowercases the name into an inline key, so it costs one small hash, no allocation.
import CacheStore
public import RESPServer

/// All commands the node serves.
public struct CommandTable: Sendable {
    /// Every command, in registration order.
    public let commands: [CommandSpec]
    private let index: [CompactBytes: Int]
    private let fastIndex: CommandNameIndex

    /// The table with every family registered.
    public static let standard = CommandTable(families: [
        stringCommands, bitmapCommands, hyperLogLogCommands, keyCommands, connectionCommands, serverCommands, slowLogCommands,
        transactionCommands,
        hashCommands, listCommands, setCommands, sortedSetCommands, sortCommands, geoCommands, streamCommands, pubSubCommands,
        scriptingCommands, functionCommands, aclCommands, moduleCommands,
        persistenceCommands,
        clusterCommands, migrateCommands,
        replicationCommands,
    ])

    /// Builds a table, checking the specs.
    public init(families: [[CommandSpec]]) {
        var commands: [CommandSpec] = []
        var index: [CompactBytes: Int] = [:]
        for spec in families.joined() {
            precondition(spec.name == spec.name.lowercased(), "command names are lowercase: \(spec.name)")
            precondition(spec.arity != 0, "arity of \(spec.name) must not be 0")
            precondition(index[CompactBytes(spec.name)] == nil, "command \(spec.name) registered twice")
            if case .range(let first, let last, let step) = spec.keys {
                precondition(first >= 1 && step >= 1 && (last < 0 || last >= first), "bad key range for \(spec.name)")
            }
            index[CompactBytes(spec.name)] = commands.count
            commands.append(spec)
        }
        self.commands = commands
        self.index = index
        self.fastIndex = CommandNameIndex(names: commands.map(\.name))
    }

    /// The command named by argument 0 of `arguments` (case-insensitive).
    public func lookup(_ arguments: CommandArguments) -> CommandSpec? {
        lookupIndex(arguments).map { commands[$0] }
    }

    /// The position in ``commands`` of the command named by argument 0.
    public func lookupIndex(_ arguments: CommandArguments) -> Int? {
        guard arguments.count > 0 else { return nil }
        return arguments.withBytes(0) { fastIndex.lookup($0) }
    }

    /// ``ClientSession/lastCommand``'s value for a container command: its index, and one more than its
    /// subcommand's position in the upper bits (0: no known subcommand).
    static func lastCommandCode(_ index: Int, _ spec: CommandSpec, _ arguments: CommandArguments) -> Int {
        guard let sub = spec.subcommand(of: arguments), let position = spec.subcommands.firstIndex(where: { $0 === sub }) else {
            return index
        }
        return index | ((position + 1) << 32)
    }

    /// The name CLIENT LIST shows as `cmd=` for a ``ClientSession/lastCommand`` value (`NULL` before any command).
    func lastCommandName(_ code: Int) -> String {
        guard code >= 0 else { return "NULL" }
        let index = code & 0xFFFF_FFFF
        guard index < commands.count else { return "NULL" }
        let spec = commands[index]
        let position = (code >> 32) - 1
        return position >= 0 && position < spec.subcommands.count ? spec.subcommands[position].name : spec.name
    }

    /// The position in ``commands`` of the command with this lowercase name.
    func index(named name: String) -> Int? {
        index[CompactBytes(name)]
    }

    /// The command with this lowercase name.
    public func command(named name: String) -> CommandSpec? {
        index[CompactBytes(name.lowercased())].map { commands[$0] }
    }
}

/// Command-name lookup for the hot path: names are lowercased into three words and found in a small
/// open-addressing table with a multiplicative hash. The names are fixed at start-up, so no seeded hash is needed.
struct CommandNameIndex: Sendable {
    private var slots: [(UInt64, UInt64, UInt64, Int32)]
    private let mask: Int

    init(names: [String]) {
        var capacity = 16
        while capacity < names.count * 4 { capacity *= 2 }
        slots = Array(repeating: (0, 0, 0, -1), count: capacity)
        mask = capacity - 1
        for (position, name) in names.enumerated() {
            let words = Array(name.utf8).withUnsafeBytes { Self.words($0)! }
            var slot = Self.hash(words) & mask
            while slots[slot].3 >= 0 { slot = (slot + 1) & mask }
            slots[slot] = (words.0, words.1, words.2, Int32(position))
        }
    }

    /// The lowercased name packed into words (length in the top byte of the last), or `nil` when longer than 23.
    @inline(__always)
    static func words(_ name: UnsafeRawBufferPointer) -> (UInt64, UInt64, UInt64)? {
        guard name.count > 0 && name.count <= 23 else { return nil }
        var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &words) { raw in
            for position in 0..<name.count {
                let byte = name[position]
                raw[position] = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
            }
            raw[23] = UInt8(name.count)
        }
        return words
    }

    @inline(__always)
    static func hash(_ words: (UInt64, UInt64, UInt64)) -> Int {
        let mixed = (words.0 &* 0x9E37_79B9_7F4A_7C15) ^ (words.1 &* 0xC2B2_AE3D_27D4_EB4F) ^ (words.2 &* 0x1656_67B1_9E37_79F9)
        return Int(truncatingIfNeeded: mixed ^ (mixed >> 29))
    }

    @inline(__always)
    func lookup(_ name: UnsafeRawBufferPointer) -> Int? {
        guard let words = Self.words(name) else { return nil }
        var slot = Self.hash(words) & mask
        while true {
            let entry = slots[slot]
            if entry.3 < 0 { return nil }
            if entry.0 == words.0 && entry.1 == words.1 && entry.2 == words.2 { return Int(entry.3) }
            slot = (slot + 1) & mask
        }
    }
}
