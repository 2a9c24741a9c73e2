// The Set command family (to be implemented).
public import RESPServer

extension CommandTable {
    static let setCommands: [CommandSpec] = []
}
