// AgentsCommand: `cachectl agents` — the local agents with their total and free resources.

import ArgumentParser
import CacheFramework
import CacheFrameworkRuntime

extension Cachectl {
    struct AgentsCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "agents", abstract: "List the agents and their free resources.", discussion: ExitStatus.help)
        @OptionGroup var connection: FrameworkConnectionOptions

        func run() async throws {
            let agents = try await connection.client().call(.GET, "/api/v1/agents", as: [LocalAgentView].self)
            if connection.json { return try printJSON(agents) }
            printTable(
                ["AGENT", "HOST", "CPUS FREE/TOTAL", "MEM MB FREE/TOTAL", "PORTS FREE", "TASKS"],
                agents.map {
                    [
                        $0.spec.id.value, $0.spec.hostname, "\(rounded($0.free.cpus))/\(rounded($0.spec.cpus))",
                        "\(Int($0.free.memMB))/\(Int($0.spec.memMB))", "\($0.free.ports.count)", "\($0.taskCount)",
                    ]
                })
        }

        private func rounded(_ value: Double) -> String { String((value * 100).rounded() / 100) }
    }
}
