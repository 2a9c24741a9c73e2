// The PubSub command family (to be implemented).
import RESPServer

extension CommandTable {
    static let pubSubCommands: [CommandSpec] = []
}
