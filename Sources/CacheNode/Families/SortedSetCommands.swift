// The SortedSet command family (to be implemented).
public import RESPServer

extension CommandTable {
    static let sortedSetCommands: [CommandSpec] = []
}
