// TasksCommand: `cachectl tasks` — every task the scheduler records, with its process.

import ArgumentParser
import CacheFramework
import CacheFrameworkAPI

extension Cachectl {
    struct TasksCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tasks", abstract: "List the tasks: member slot, role, state, endpoint and pid.", discussion: ExitStatus.help)
        @OptionGroup var connection: FrameworkConnectionOptions

        func run() async throws {
            let tasks = try await connection.client().call(.GET, "/api/v1/tasks", as: [TaskRow].self)
            if connection.json { return try printJSON(tasks) }
            printTable(
                ["TASK", "CLUSTER", "SHARD", "MEMBER", "ROLE", "STATE", "AGENT", "ENDPOINT", "PID"],
                tasks.map {
                    [
                        $0.taskID.value, $0.cluster ?? "-", $0.shard.map(String.init) ?? "-", $0.member.map(String.init) ?? "-",
                        $0.role?.rawValue ?? "-", $0.state.map { String($0.rawValue.dropFirst(5)).lowercased() } ?? "launching",
                        $0.agentID.value, $0.endpoint ?? "-", $0.pid.map(String.init) ?? "-",
                    ]
                })
        }
    }
}
