// The SortedSet command family (to be implemented).
import RESPServer

extension CommandTable {
    static let sortedSetCommands: [CommandSpec] = []
}
