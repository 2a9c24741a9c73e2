// TunnelCommand: `cachectl tunnel listen|connect` — carry plaintext TCP (redis-cli, replication) through the
// secure channel.
import ArgumentParser
import Logging
import NIOCore
import ReplicationSec

extension Cachectl {
    struct TunnelCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tunnel",
            abstract: "Carry plaintext TCP through the secure channel.",
            subcommands: [Listen.self, Connect.self]
        )
    }
}

extension Cachectl.TunnelCommand {
    /// Accepts secure connections and forwards each to a local plaintext target.
    struct Listen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accept secure connections on --listen and forward each to --target (e.g. redis-server).")

        @Option(help: "Address to accept secure connections on, host:port.")
        var listen: String

        @Option(help: "Plaintext target to forward to, host:port.")
        var target: String

        @OptionGroup var secure: SecureChannelOptions

        func validate() throws {
            _ = try HostPort(parsing: listen)
            _ = try HostPort(parsing: target)
        }

        func run() async throws {
            let logger = Logger(label: "cachectl.tunnel")
            let configuration = try secure.configuration(logger: logger)
            let listenAddress = try HostPort(parsing: listen)
            let targetAddress = try HostPort(parsing: target)
            let listener = try await Tunnel.listenSecure(
                host: listenAddress.host, port: listenAddress.port, target: targetAddress, configuration: configuration,
                logger: logger)
            logger.info("tunnel listening", metadata: ["listen": "\(listen)", "target": "\(target)"])
            try await listener.closeFuture.get()
        }
    }

    /// Accepts plaintext connections locally and carries each through a secure connection to --remote.
    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accept plaintext on --local and carry each connection securely to --remote.")

        @Option(help: "Local plaintext address to accept on, host:port.")
        var local: String

        @Option(help: "The `tunnel listen` side, host:port.")
        var remote: String

        @OptionGroup var secure: SecureChannelOptions

        func validate() throws {
            _ = try HostPort(parsing: local)
            _ = try HostPort(parsing: remote)
        }

        func run() async throws {
            let logger = Logger(label: "cachectl.tunnel")
            let configuration = try secure.configuration(logger: logger)
            let localAddress = try HostPort(parsing: local)
            let remoteAddress = try HostPort(parsing: remote)
            let listener = try await Tunnel.listenPlain(
                host: localAddress.host, port: localAddress.port, remote: remoteAddress, configuration: configuration,
                logger: logger)
            logger.info("tunnel accepting plaintext", metadata: ["local": "\(local)", "remote": "\(remote)"])
            try await listener.closeFuture.get()
        }
    }
}

/// A `host:port` flag value.
struct HostPort: Hashable {
    var host: String
    var port: Int

    init(parsing text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port), colon != text.startIndex
        else { throw ValidationError("'\(text)' is not host:port") }
        self.host = String(text[..<colon])
        self.port = port
    }
}
