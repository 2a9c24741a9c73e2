// cachectl: the one command line for the cache framework, the secure channel and the tunnel.
import ArgumentParser

@main
struct Cachectl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cachectl",
        abstract: "Drive cache clusters, node identities and secure tunnels.",
        subcommands: [
            IdentityCommand.self, TunnelCommand.self, ServeCommand.self, UpCommand.self, ClusterCommand.self,
            AgentsCommand.self, TasksCommand.self,
            VNFCommand.self, NodeCommand.self,
        ]
    )
}
