// The List command family (to be implemented).
import RESPServer

extension CommandTable {
    static let listCommands: [CommandSpec] = []
}
