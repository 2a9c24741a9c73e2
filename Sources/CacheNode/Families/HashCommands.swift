// The Hash command family (to be implemented).
import RESPServer

extension CommandTable {
    static let hashCommands: [CommandSpec] = []
}
