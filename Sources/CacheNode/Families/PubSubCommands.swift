// The PubSub command family (to be implemented).
public import RESPServer

extension CommandTable {
    static let pubSubCommands: [CommandSpec] = []
}
