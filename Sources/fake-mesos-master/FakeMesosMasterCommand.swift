// `fake-mesos-master`: runs the wire-exact fake Mesos master cluster as a program, so the framework can be pointed at
// it with `cachectl serve --master http://127.0.0.1:<port>` exactly as at a real master. Prints each master's URL;
// SIGUSR1 fails the leadership over to the next master (the stream closes, the old leader redirects).

import ArgumentParser
import CacheFramework
import CacheFrameworkMesos
import CacheFrameworkRuntime
import Foundation
import Logging
import MesosFakeMaster
import UnixSignals

@main
struct FakeMesosMasterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fake-mesos-master",
        abstract: "A fake Mesos master (v1 scheduler HTTP API) whose agents run tasks as local processes.")

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Ports of the masters, comma separated (0: any free port). The first one leads.")
    var ports: String = "5050,5051"

    @Option(help: "How many agents to carve this machine into.")
    var agents: Int = 2

    @Option(name: .customLong("first-port"), help: "First task port; each agent gets 1000 ports from here.")
    var firstPort: UInt64 = 31_000

    @Option(name: .customLong("work-dir"), help: "Where task sandboxes go.")
    var workDirectory: String = "./fake-mesos-work"

    @Option(name: .customLong("bin-dir"), help: "Where to look for task executables first.")
    var binDirectory: String?

    @Option(name: .customLong("heartbeat-seconds"), help: "HEARTBEAT interval.")
    var heartbeatSeconds: Int = 15

    @Option(name: .customLong("offer-timeout-seconds"), help: "Rescind offers not answered within this (0: never).")
    var offerTimeoutSeconds: Int = 0

    func run() async throws {
        var logger = Logger(label: "fake-mesos-master")
        logger.logLevel = .info
        let portList = ports.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !portList.isEmpty else { throw ValidationError("--ports needs at least one port") }
        let machine = LocalProcess.machineResources()
        let binDirectory = binDirectory
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let server = FakeMesosMasterServer(
            configuration: FakeMesosMaster.Configuration(
                agents: LocalAgentSpec.split(count: agents, cpus: machine.cpus, memMB: machine.memMB, firstPort: firstPort),
                sandboxDirectory: workDirectory, executableSearchPaths: [binDirectory], masterCount: portList.count,
                heartbeatInterval: .seconds(heartbeatSeconds),
                offerTimeout: offerTimeoutSeconds > 0 ? .seconds(offerTimeoutSeconds) : nil),
            host: host, ports: portList, logger: logger)
        let urls = try await server.start()
        for (index, url) in urls.enumerated() { print("fake-mesos-master \(index): \(url)\(index == 0 ? " (leader)" : "")") }
        fflush(nil)
        for await signal in await UnixSignalsSequence(trapping: .sigint, .sigterm, .sigusr1) {
            if signal == .sigusr1 {
                let next = (await server.master.leaderIndex + 1) % urls.count
                await server.master.failover(to: next)
                print("fake-mesos-master: failed over to master \(next) (\(urls[next]))")
                fflush(nil)
            } else {
                break
            }
        }
        await server.stop()
    }
}
