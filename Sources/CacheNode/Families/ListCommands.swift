// The List command family (to be implemented).
public import RESPServer

extension CommandTable {
    static let listCommands: [CommandSpec] = []
}
