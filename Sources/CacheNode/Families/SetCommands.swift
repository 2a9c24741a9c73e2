// The Set command family (to be implemented).
import RESPServer

extension CommandTable {
    static let setCommands: [CommandSpec] = []
}
