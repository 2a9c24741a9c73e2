// The command table: every family's specs in one lookup, checked once at start-up (unique names, sane arity and
// key specs). Lookup lowercases the name into an inline key, so it costs one small hash, no allocation.
import CacheStore
public import RESPServer

/// All commands the node serves.
public struct CommandTable: Sendable {
    /// Every command, in registration order.
    public let commands: [CommandSpec]
    private let index: [CompactBytes: Int]

    /// The table with every family registered.
    public static let standard = CommandTable(families: [
        stringCommands, keyCommands, connectionCommands, serverCommands, transactionCommands,
        hashCommands, listCommands, setCommands, sortedSetCommands, pubSubCommands,
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
    }

    /// The command named by argument 0 of `arguments` (case-insensitive).
    public func lookup(_ arguments: CommandArguments) -> CommandSpec? {
        lookupIndex(arguments).map { commands[$0] }
    }

    /// The position in ``commands`` of the command named by argument 0.
    public func lookupIndex(_ arguments: CommandArguments) -> Int? {
        guard arguments.count > 0 else { return nil }
        let key: CompactBytes? = arguments.withBytes(0) { name in
            guard name.count <= CompactBytes.inlineCapacity else { return nil }
            var lowered: (UInt64, UInt64, UInt64) = (0, 0, 0)
            return withUnsafeMutableBytes(of: &lowered) { raw in
                for position in 0..<name.count {
                    let byte = name[position]
                    raw[position] = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
                }
                return CompactBytes(UnsafeRawBufferPointer(rebasing: raw[0..<name.count]))
            }
        }
        guard let key else { return nil }
        return index[key]
    }

    /// The command with this lowercase name.
    public func command(named name: String) -> CommandSpec? {
        index[CompactBytes(name.lowercased())].map { commands[$0] }
    }
}
