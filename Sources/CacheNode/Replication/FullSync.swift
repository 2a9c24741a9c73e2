// Full resynchronization: placeholder until the snapshot API is merged.
import Logging
import RESPServer

enum FullSync {
    static func start(_ feed: ReplicaFeed, node: NodeState, reply: inout ReplyWriter, logger: Logger) {
        node.replication.detach(feed)
        reply.error(code: "ERR", message: "full resynchronization is not available yet")
    }

    static func load(_ bytes: [UInt8], into node: NodeState) throws {
        throw PeerProtocolError("full resynchronization is not available yet")
    }
}
