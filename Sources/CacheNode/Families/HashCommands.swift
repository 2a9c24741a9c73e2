// The Hash command family (to be implemented).
public import RESPServer

extension CommandTable {
    static let hashCommands: [CommandSpec] = []
}
