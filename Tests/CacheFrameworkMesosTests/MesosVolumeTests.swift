// Persistent volumes over the Mesos backend, against the fake master's model of reservations and volumes
// (apache/mesos docs/reservation.md, docs/persistent-volume.md):
// - the master's rules: CREATE without a matching reservation is dropped with the master's words, a launch on a
//   volume that was not created fails, RESERVE + CREATE + LAUNCH in one ACCEPT mounts the volume in the sandbox,
//   the volume is offered back in the post-refinement shape once its task ends, its files survive, DESTROY of a
//   used volume and UNRESERVE of a volume are refused, DESTROY + UNRESERVE free the disk;
// - end to end: a cache-node member of a cluster with persistence writes keys and a snapshot, is killed, is
//   relaunched by the scheduler on the same agent and volume, and serves its keys again; deleting the cluster
//   destroys the volume and unreserves its disk.

import CacheFramework
import CacheFrameworkMesos
import CacheFrameworkRuntime
import Foundation
import Logging
import MesosFakeMaster
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Collects the wire events of a backend.
final class WireRecorder: Sendable {
    private final class Storage: Sendable {
        let events = Mutex<[Mesos.Event]>([])
    }
    private let storage = Storage()
    private let task: Task<Void, Never>

    init(_ stream: AsyncStream<Mesos.Event>) {
        let storage = storage
        task = Task { for await event in stream { storage.events.withLock { $0.append(event) } } }
    }

    deinit { task.cancel() }

    var all: [Mesos.Event] { storage.events.withLock { $0 } }
    var offers: [Mesos.Offer] { all.flatMap { $0.offers?.offers ?? [] } }
    var operationStatuses: [Mesos.OperationStatus] { all.compactMap { $0.updateOperationStatus?.status } }
}

@Suite(.serialized)
struct MesosVolumeTests {
    static let role = "cache"
    static let principal = "cache-framework"

    static func reservedDisk(_ megabytes: Double) -> Mesos.Resource {
        Mesos.Resource(
            name: "disk", type: .scalar, scalar: ScalarValue(value: megabytes), allocationInfo: .init(role: role),
            reservations: [.init(type: "DYNAMIC", role: role, principal: principal)])
    }

    static func volume(_ id: String, _ megabytes: Double) -> Mesos.Resource {
        var volume = reservedDisk(megabytes)
        volume.disk = .init(persistence: .init(id: id, principal: principal), volume: .init(mode: "RW", containerPath: "data"))
        return volume
    }

    /// A shell task that appends a line to data/log and sleeps, using `volume`.
    static func volumeTask(_ id: String, on offer: Offer, volume: Mesos.Resource) -> Mesos.TaskInfo {
        var task = Mesos.TaskInfo(
            sleepTask(id, on: offer), allocationRole: role)
        task.command = Mesos.CommandInfo(value: "echo \(id) >> data/log && exec sleep 600", shell: true)
        task.resources.append(volume)
        return task
    }

    @Test func reservationsAndVolumesFollowTheMastersRules() async throws {
        let fixture = try await MesosFixture(agents: 1)
        defer { Task { await fixture.stop() } }
        let running = try await RunningBackend(fixture.backend())
        let wire = WireRecorder(running.backend.mesosEvents)
        try await running.waitSubscribed()
        // Acknowledge every status update (the master sends a task's next update only after that).
        let acknowledger = Task {
            var done: Set<String> = []
            while !Task.isCancelled {
                for update in running.recorder.updates {
                    guard let uuid = update.uuid, let agent = update.agentID, done.insert(uuid).inserted else { continue }
                    try? await running.backend.acknowledge(agentID: agent, taskID: update.taskID, uuid: uuid)
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        defer { acknowledger.cancel() }

        // CREATE without a reservation is dropped as the master drops it; the launch on the volume then fails.
        var offer = try await running.nextOffer()
        let agent = offer.agentID
        var create = Mesos.Operation.create([Self.volume("v1", 64)], id: Mesos.OperationID("create-1"))
        await running.backend.accept(
            offerIDs: [offer.id], mesosOperations: [create, .launch([Self.volumeTask("t0", on: offer, volume: Self.volume("v1", 64))])],
            filters: Filters(refuseSeconds: 0))
        try await waitUntil("the CREATE is refused") { wire.operationStatuses.contains { $0.operationID?.value == "create-1" } }
        let refused = try #require(wire.operationStatuses.first { $0.operationID?.value == "create-1" })
        #expect(refused.state == "OPERATION_ERROR")
        #expect(refused.message?.contains("does not contain disk(reservations: [(DYNAMIC,cache,cache-framework)]):64") == true, "\(refused)")
        try await waitUntil("the launch fails") { running.recorder.updates(of: TaskID("t0")).contains { $0.state == .error } }
        #expect(await fixture.master.reservedResources[agent, default: []].isEmpty)

        // RESERVE + CREATE + LAUNCH in one ACCEPT: the task writes into its volume.
        offer = try await running.nextOffer(excluding: [offer.id])
        create = .create([Self.volume("v1", 64)], id: Mesos.OperationID("create-2"))
        await running.backend.accept(
            offerIDs: [offer.id],
            mesosOperations: [
                .reserve([Self.reservedDisk(64)], id: Mesos.OperationID("reserve-2")), create,
                .launch([Self.volumeTask("t1", on: offer, volume: Self.volume("v1", 64))]),
            ],
            filters: Filters(refuseSeconds: 0))
        try await waitUntil("t1 runs") { running.recorder.updates(of: TaskID("t1")).contains { $0.state == .running } }
        try await waitUntil("both operations report") {
            wire.operationStatuses.filter { ["reserve-2", "create-2"].contains($0.operationID?.value) }.count == 2
        }
        #expect(wire.operationStatuses.filter { ["reserve-2", "create-2"].contains($0.operationID?.value) }.map(\.state)
            == ["OPERATION_FINISHED", "OPERATION_FINISHED"])
        let directory = fixture.master.volumeDirectory(agent: agent, role: Self.role, id: "v1")
        try await waitUntil("t1 wrote into its volume") {
            (try? String(contentsOfFile: directory + "/log", encoding: .utf8)) == "t1\n"
        }
        let stored = await fixture.master.reservedResources[agent] ?? []
        #expect(try stored.map(encoded) == [try canonical("""
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 64},
             "reservations": [{"type": "DYNAMIC", "role": "cache", "principal": "cache-framework"}],
             "disk": {"persistence": {"id": "v1", "principal": "cache-framework"},
                      "volume": {"container_path": "data", "mode": "RW"}}}
            """)])

        // A used volume is not offered, cannot be destroyed, and a volume is never unreserved directly.
        offer = try await running.nextOffer(excluding: [offer.id])
        let inUse = wire.offers.first { $0.id == offer.id }!
        #expect(!inUse.resources.contains { $0.disk != nil }, "a volume in use is not offered")
        await running.backend.accept(
            offerIDs: [offer.id],
            mesosOperations: [
                { var operation = Mesos.Operation(type: .destroy, id: Mesos.OperationID("destroy-busy"))
                  operation.destroy = .init(volumes: [Self.volume("v1", 64)]); return operation }(),
                { var operation = Mesos.Operation(type: .unreserve, id: Mesos.OperationID("unreserve-volume"))
                  operation.unreserve = .init(resources: [Self.volume("v1", 64)]); return operation }(),
            ],
            filters: Filters(refuseSeconds: 0))
        try await waitUntil("both are refused") { wire.operationStatuses.contains { $0.operationID?.value == "unreserve-volume" } }
        #expect(wire.operationStatuses.first { $0.operationID?.value == "destroy-busy" }?.message == "Persistent volumes in use")
        #expect(wire.operationStatuses.first { $0.operationID?.value == "unreserve-volume" }?.message?
            .contains("cannot be unreserved directly. Please destroy the persistent volume first") == true)

        // The task ends: the volume is offered again, in the post-refinement shape, and its files are still there.
        try await running.backend.kill(taskID: TaskID("t1"), agentID: agent)
        try await waitUntil("t1 is killed") { running.recorder.updates(of: TaskID("t1")).contains { $0.state.isTerminal } }
        let withVolume = try await offerWithVolume("v1", running: running, wire: wire)
        let offered = try #require(withVolume.resources.first { $0.disk?.persistence?.id == "v1" })
        #expect(offered == Self.volume("v1", 64), "reservations, allocation_info and disk as the docs show them: \(offered)")
        let plainDisk = withVolume.resources.first { $0.name == "disk" && $0.reservations == nil }?.scalar?.value
        #expect(plainDisk == LocalAgentSpec.split(count: 1, cpus: 4, memMB: 2048, firstPort: 0, portsPerAgent: 1)[0].diskMB - 64)

        // Relaunched on the offered volume, the next task finds the first one's file.
        let relaunchOffer = try #require(running.recorder.offers.first { $0.id == withVolume.id })
        await running.backend.accept(
            offerIDs: [relaunchOffer.id], mesosOperations: [.launch([Self.volumeTask("t2", on: relaunchOffer, volume: offered)])],
            filters: Filters(refuseSeconds: 0))
        try await waitUntil("t2 appended to the same volume") {
            (try? String(contentsOfFile: directory + "/log", encoding: .utf8)) == "t1\nt2\n"
        }
        try await running.backend.kill(taskID: TaskID("t2"), agentID: agent)
        try await waitUntil("t2 is killed") { running.recorder.updates(of: TaskID("t2")).contains { $0.state.isTerminal } }

        // DESTROY + UNRESERVE: the directory goes and the disk is unreserved.
        let free = try await offerWithVolume("v1", running: running, wire: wire)
        var destroy = Mesos.Operation(type: .destroy, id: Mesos.OperationID("destroy"))
        destroy.destroy = .init(volumes: [offered])
        var unreserve = Mesos.Operation(type: .unreserve, id: Mesos.OperationID("unreserve"))
        unreserve.unreserve = .init(resources: [Self.reservedDisk(64)])
        await running.backend.accept(offerIDs: [free.id], mesosOperations: [destroy, unreserve], filters: Filters(refuseSeconds: 0))
        try await waitUntil("the volume and its reservation are gone") {
            await fixture.master.reservedResources[agent, default: []].isEmpty
        }
        try await waitUntil("both operations report") {
            wire.operationStatuses.filter { ["destroy", "unreserve"].contains($0.operationID?.value) }.count == 2
        }
        #expect(wire.operationStatuses.filter { ["destroy", "unreserve"].contains($0.operationID?.value) }.map(\.state)
            == ["OPERATION_FINISHED", "OPERATION_FINISHED"])
        #expect(!FileManager.default.fileExists(atPath: directory))
        await running.stop(killTasks: true)
    }

    /// Waits for an outstanding offer carrying volume `id`, declining the others (an offer made before the volume's
    /// task ended does not carry it; the agent re-offers once it is declined).
    func offerWithVolume(_ id: String, running: RunningBackend, wire: WireRecorder) async throws -> Mesos.Offer {
        var found: Mesos.Offer?
        try await waitUntil("volume \(id) is offered") {
            let outstanding = Set(await running.backend.outstandingOffers().map(\.id))
            let current = wire.offers.filter { outstanding.contains($0.id) }
            found = current.last { $0.resources.contains { $0.disk?.persistence?.id == id } }
            let others = current.filter { $0.id != found?.id }.map(\.id)
            if !others.isEmpty { try await running.backend.decline(offerIDs: others, filters: Filters(refuseSeconds: 0)) }
            return found != nil
        }
        return found!
    }

    @Test func aKilledMemberComesBackOnItsVolumeWithItsData() async throws {
        let control = RESPNodeControl(timeout: .seconds(1))
        let fixture = try await MesosFixture(readiness: control.pingReadiness())
        defer { Task { await fixture.stop() } }
        let store = try SQLiteStateStore(directory: fixture.directory)
        var logger = Logger(label: "test.mesos-volumes")
        logger.logLevel = .warning
        let backend = MesosBackend(
            configuration: MesosBackendConfiguration(master: fixture.urls[0]),
            loadFrameworkID: { try await store.load().frameworkID }, logger: logger)
        fixture.track(backend)
        let wire = WireRecorder(backend.mesosEvents)
        var configuration = FrameworkDriver.Configuration()
        configuration.tickInterval = .milliseconds(200)
        configuration.scheduler.pinPersistentMembers = true
        let driver = FrameworkDriver(backend: backend, store: store, control: control, configuration: configuration, logger: logger)
        let run = Task { try await driver.run() }
        defer { Task { await backend.shutdown(killTasks: true) } }

        try await waitUntil("both agents have offered") { await backend.capacityOffers().count == 2 }
        let spec = ClusterSpec(
            name: "v1", shardCount: 1, replicasPerShard: 0, memoryMBPerNode: 32, cpusPerNode: 0.1, persistence: true,
            secureReplication: false)
        try await driver.createCluster(spec)
        try await waitUntil("the member runs", seconds: 60) { driver.clusterStatus("v1")?.ready == true }
        let first = try #require(driver.taskRecords().first)
        let port = Int(first.ports[0])
        #expect(try redis(port, ["SET", "greeting", "hello"]) == "OK")
        #expect(try redis(port, ["RPUSH", "list", "a", "b", "c"]) == "3")
        #expect(try redis(port, ["SAVE"]) == "OK")

        // The volume was reserved and created for the framework's role and principal, and the member runs on it.
        let volumeID = TaskTemplate.volumeID(of: first.slot)
        let held = await fixture.master.reservedResources[first.agentID] ?? []
        #expect(held.map { $0.disk?.persistence?.id } == [volumeID])
        #expect(held.first?.reservations == [Mesos.ReservationInfo(type: "DYNAMIC", role: "cache", principal: "cache-framework")])
        let directory = fixture.master.volumeDirectory(agent: first.agentID, role: "cache", id: volumeID)
        #expect(FileManager.default.fileExists(atPath: directory), "the volume's directory")
        #expect(!((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).isEmpty, "the snapshot is on the volume")

        // kill -9 of the member: the scheduler relaunches it on the same agent, on the same volume.
        let pid = try #require(await fixture.master.agents.taskViews().first { $0.taskID == first.taskID }?.pid)
        kill(pid, SIGKILL)
        do {
            try await waitUntil("a new member runs", seconds: 60) {
                driver.taskRecords().contains { $0.taskID != first.taskID && $0.isRunning } && driver.clusterStatus("v1")?.ready == true
            }
        } catch {
            Issue.record("events: \(driver.events().suffix(30).map { "\($0.kind): \($0.message)" }.joined(separator: "\n"))\nstatus: \(String(describing: driver.clusterStatus("v1")))\noperations: \(wire.operationStatuses)")
            throw error
        }
        let second = try #require(driver.taskRecords().first)
        #expect(second.slot == first.slot)
        #expect(second.agentID == first.agentID, "relaunched where its volume is")
        #expect(await fixture.master.reservedResources[first.agentID]?.map { $0.disk?.persistence?.id } == [volumeID], "no second volume")
        #expect(!wire.operationStatuses.contains { $0.state != "OPERATION_FINISHED" })
        let secondPort = Int(second.ports[0])
        #expect(try redis(secondPort, ["GET", "greeting"]) == "hello", "the snapshot was loaded from the volume")
        #expect(try redis(secondPort, ["LRANGE", "list", "0", "-1"]) == "a\nb\nc")

        // Deleting the cluster destroys the volume and unreserves its disk once the member is gone.
        try await driver.deleteCluster("v1")
        try await waitUntil("the volume is destroyed and unreserved", seconds: 30) {
            await fixture.master.reservedResources.values.allSatisfy(\.isEmpty)
        }
        #expect(!FileManager.default.fileExists(atPath: directory))
        run.cancel()
        _ = try? await run.value
    }
}

/// redis-cli's answer (raw mode) from 127.0.0.1:`port`, trimmed.
func redis(_ port: Int, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
    process.arguments = ["-p", String(port), "--raw"] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}
