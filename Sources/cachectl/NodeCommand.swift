// NodeCommand: `cachectl node send` — one command to a cache node through its secure (replication) port, as the
// framework does it: authenticated with a framework identity, expecting the node's id and role cache-node. A node
// with an identity accepts `CLUSTER TOPOLOGY SET` only this way (tests and operators pushing a topology by hand).
import ArgumentParser
import CacheFramework
import CacheFrameworkRuntime
import Foundation
import ReplicationSec

extension Cachectl {
    struct NodeCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "node",
            abstract: "Control a cache node through its secure port.",
            subcommands: [Send.self]
        )
    }
}

extension Cachectl.NodeCommand {
    /// Sends one command and prints the reply.
    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send one command to a cache node's secure port (e.g. CLUSTER TOPOLOGY SET) and print the reply.",
            discussion: """
                The identity must have role framework for the node to accept a topology push; the node is expected \
                to present --peer-node-id (its node id) with role cache-node. An error reply is printed as \
                "(error) …" and exits with status 1.
                """)

        @Option(help: "The node's secure (replication) port, host:port.")
        var secure: String

        @OptionGroup var channel: SecureChannelOptions

        @Option(help: "Reply timeout in seconds.")
        var timeout: Int = 10

        @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
        var command: [String]

        func validate() throws {
            _ = try HostPort(parsing: secure)
            guard channel.peerNodeIDs.count == 1 else { throw ValidationError("give the node's id with exactly one --peer-node-id") }
            guard !command.isEmpty else { throw ValidationError("give the command to send") }
        }

        func run() async throws {
            let address = try HostPort(parsing: secure)
            let (identity, trustStore) = try channel.identityAndTrust()
            let control = RESPNodeControl(
                timeout: .seconds(timeout), topologyTimeout: .seconds(timeout),
                security: ControlSecurity(identity: identity, trustStore: trustStore))
            let endpoint = TaskEndpoint(
                taskID: TaskID(channel.peerNodeIDs[0]), hostname: address.host, port: UInt64(address.port),
                securePort: UInt64(address.port))
            let arguments = command.first == "--" ? Array(command.dropFirst()) : command
            let reply = try await control.command(arguments, to: endpoint)
            print(Self.render(reply))
            if case .error = reply { throw ExitCode(1) }
        }

        /// redis-cli's plain (non-terminal) rendering: one line per value, errors prefixed.
        static func render(_ reply: RESPReply) -> String {
            switch reply {
            case .simple(let text): text
            case .error(let message): "(error) \(message)"
            case .integer(let value): String(value)
            case .bulk(let text): text ?? ""
            case .array(let items): (items ?? []).map(render).joined(separator: "\n")
            }
        }
    }
}
