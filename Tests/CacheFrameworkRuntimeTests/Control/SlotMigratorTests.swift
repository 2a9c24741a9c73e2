// RESPNodeControl.migrateSlots (SlotMigrator) against real cache-node processes: a batch handed over with
// CLUSTER SETSLOTSRANGE moves every key and leaves both nodes agreeing; a batch re-sent after it was half done (the
// target already owns some slots, the source already gave them away) finishes through the single-slot fallback; a key
// the target already holds (BUSYKEY, as after a source crash between the target's acknowledgement and its own delete)
// is resolved with REPLACE, the source's value winning.

import CacheFramework
import CacheFrameworkRuntime
import Foundation
import Testing

@Suite(.serialized)
struct SlotMigratorTests {
    let control = RESPNodeControl(timeout: .seconds(5))

    /// Starts a cluster-mode cache-node on a free port in `directory`; returns its endpoint and pid.
    func startNode(_ directory: String, name: String) async throws -> (TaskEndpoint, Int32) {
        for _ in 0..<5 {
            let port = UInt64.random(in: 29_000..<32_000)
            guard LocalProcess.isPortFree(port) else { continue }
            let sandbox = directory + "/" + name
            try FileManager.default.createDirectory(atPath: sandbox, withIntermediateDirectories: true)
            let pid = try LocalProcess.spawn(
                executable: TestPaths.buildDirectory + "/cache-node",
                arguments: ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--cluster-enabled", "yes",
                            "--replication-plaintext", "yes", "--dir", sandbox],
                environment: [:], directory: sandbox)
            let endpoint = TaskEndpoint(taskID: TaskID(name), hostname: "127.0.0.1", port: port)
            for _ in 0..<300 {
                if await control.ping(endpoint) { return (endpoint, pid) }
                if LocalProcess.reap(pid) != nil { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            LocalProcess.signalGroup(pid, SIGKILL)
            _ = LocalProcess.reap(pid)
        }
        throw FixtureError(description: "cache-node did not start")
    }

    /// Runs `commands` (one per line) through redis-cli on one connection; returns its output.
    func redisCLI(_ port: UInt64, _ commands: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        process.arguments = ["-p", String(port)]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(commands.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    func stop(_ pid: Int32) {
        LocalProcess.signalGroup(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    /// A key named `prefix<n>` in `slot`, for n = 0, 1, … (hash tags: the tag of the first key found in the slot).
    func keys(inSlot slot: Int, count: Int, tags: [Int: String]) -> [String] {
        (0..<count).map { "{\(tags[slot]!)}k\($0)" }
    }

    /// A hash tag for each of `slots` (found by trying `t0`, `t1`, …).
    func tags(for slots: ClosedRange<Int>) -> [Int: String] {
        var found: [Int: String] = [:]
        var index = 0
        while found.count < slots.count {
            let tag = "t\(index)"
            let slot = HashSlotCRC.slot(tag)
            if slots.contains(slot) && found[slot] == nil { found[slot] = tag }
            index += 1
        }
        return found
    }

    struct Pair {
        let source: TaskEndpoint
        let target: TaskEndpoint
        let sourceID: String
        let targetID: String
    }

    /// Two primaries: the source owns every slot, the target none.
    func pushTopology(_ control: RESPNodeControl, source: TaskEndpoint, target: TaskEndpoint) async throws -> Pair {
        let sourceID = try await control.clusterNodeID(source)
        let targetID = try await control.clusterNodeID(target)
        let payload = """
            \(sourceID) 127.0.0.1:\(source.port)@\(source.port + 10000) master - 0 0 1 connected 0-16383
            \(targetID) 127.0.0.1:\(target.port)@\(target.port + 10000) master - 0 0 2 connected
            """
        for node in [source, target] {
            #expect(try await control.command(["CLUSTER", "TOPOLOGY", "SET", "1", payload], to: node) == .simple("OK"))
        }
        return Pair(source: source, target: target, sourceID: sourceID, targetID: targetID)
    }

    func slotRanges(_ endpoint: TaskEndpoint, _ id: String) async throws -> String {
        guard case .bulk(let nodes?) = try await control.command(["CLUSTER", "NODES"], to: endpoint) else { return "" }
        let line = nodes.split(separator: "\n").first { $0.hasPrefix(id) } ?? ""
        return line.split(separator: " ").dropFirst(8).joined(separator: " ")
    }

    @Test func aBatchMovesEveryKeyAndARetriedHalfDoneBatchFinishes() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (source, sourcePID) = try await startNode(directory, name: "source")
        defer { stop(sourcePID) }
        let (target, targetPID) = try await startNode(directory, name: "target")
        defer { stop(targetPID) }
        let pair = try await pushTopology(control, source: source, target: target)
        let tags = tags(for: 100...399)
        // 300 slots × 3 keys, and 700 keys in slot 150 (more than one GETKEYSINSLOT round).
        for slot in 100...399 {
            for key in keys(inSlot: slot, count: slot == 150 ? 700 : 3, tags: tags) {
                #expect(try await control.command(["SET", key, key], to: source) == .simple("OK"))
            }
        }
        var sourceControl = control
        sourceControl.migrationKeysPerRound = 500
        let moved = try await sourceControl.migrateSlots(SlotMigration(
            slots: SlotRange(first: 100, last: 249), source: source, sourceNodeID: pair.sourceID,
            target: target, targetNodeID: pair.targetID))
        #expect(moved == 149 * 3 + 700)
        #expect(try await control.command(["DBSIZE"], to: target) == .integer(Int64(moved)))
        #expect(try await slotRanges(target, pair.targetID) == "100-249")
        #expect(try await slotRanges(source, pair.sourceID) == "0-99 250-16383")
        #expect(try await control.command(["ASKING"], to: target) == .simple("OK"))
        #expect(try await control.command(["GET", "{\(tags[150]!)}k699"], to: target) == .bulk("{\(tags[150]!)}k699"))
        #expect(try await control.command(["GET", "{\(tags[150]!)}k0"], to: source) == .error("MOVED 150 127.0.0.1:\(target.port)"))

        // A batch half done before a restart: 250-299 handed over completely, 300-324 imported/migrating with their
        // keys still on the source. Sending the whole batch 250-399 again finishes it.
        for command in [
            (target, ["CLUSTER", "SETSLOTSRANGE", "250", "324", "IMPORTING", pair.sourceID]),
            (source, ["CLUSTER", "SETSLOTSRANGE", "250", "324", "MIGRATING", pair.targetID]),
        ] {
            #expect(try await control.command(command.1, to: command.0) == .simple("OK"))
        }
        for slot in 250...299 {
            let keys = keys(inSlot: slot, count: 3, tags: tags)
            let migrate = ["MIGRATE", "127.0.0.1", String(target.port), "", "0", "5000", "KEYS"] + keys
            #expect(try await control.command(migrate, to: source) == .simple("OK"))
        }
        for node in [target, source] {
            #expect(try await control.command(["CLUSTER", "SETSLOTSRANGE", "250", "299", "NODE", pair.targetID], to: node) == .simple("OK"))
        }
        let rest = try await control.migrateSlots(SlotMigration(
            slots: SlotRange(first: 250, last: 399), source: source, sourceNodeID: pair.sourceID,
            target: target, targetNodeID: pair.targetID))
        #expect(rest == 100 * 3)
        #expect(try await slotRanges(target, pair.targetID) == "100-399")
        #expect(try await slotRanges(source, pair.sourceID) == "0-99 400-16383")
        #expect(try await control.command(["DBSIZE"], to: source) == .integer(0))
        #expect(try await control.command(["DBSIZE"], to: target) == .integer(Int64(300 * 3 + 697)))
    }

    @Test func aKeyTheTargetAlreadyHoldsIsReplacedWithTheSourcesValue() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (source, sourcePID) = try await startNode(directory, name: "source")
        defer { stop(sourcePID) }
        let (target, targetPID) = try await startNode(directory, name: "target")
        defer { stop(targetPID) }
        let pair = try await pushTopology(control, source: source, target: target)
        let tags = tags(for: 10...12)
        let same = "{\(tags[10]!)}same"
        let differing = "{\(tags[11]!)}differs"
        let onlyHere = "{\(tags[12]!)}only"
        for key in [same, differing, onlyHere] {
            #expect(try await control.command(["SET", key, "source"], to: source) == .simple("OK"))
        }
        // The target already holds two of them, as after a source crash between the RESTORE's acknowledgement and
        // the source's own delete: one copy equal, one that differs.
        #expect(try await control.command(["CLUSTER", "SETSLOTSRANGE", "10", "12", "IMPORTING", pair.sourceID], to: target) == .simple("OK"))
        // ASKING lasts one command on one connection: redis-cli sends both on one.
        let asking = try redisCLI(target.port, "ASKING\nSET \(same) source\nASKING\nSET \(differing) stale\n")
        #expect(asking == "OK\nOK\nOK\nOK\n", "\(asking)")
        #expect(try await control.command(["CLUSTER", "COUNTKEYSINSLOT", "11"], to: target) == .integer(1))
        let moved = try await control.migrateSlots(SlotMigration(
            slots: SlotRange(first: 10, last: 12), source: source, sourceNodeID: pair.sourceID,
            target: target, targetNodeID: pair.targetID))
        #expect(moved == 3)
        for key in [same, differing, onlyHere] {
            #expect(try await control.command(["GET", key], to: target) == .bulk("source"))
        }
        #expect(try await control.command(["DBSIZE"], to: source) == .integer(0))
        #expect(try await slotRanges(target, pair.targetID) == "10-12")
    }
}

/// CRC16 slot of a key (redis cluster's CRC16-XMODEM mod 16384), for choosing hash tags.
enum HashSlotCRC {
    static func slot(_ key: String) -> Int {
        var crc: UInt16 = 0
        for byte in key.utf8 {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return Int(crc) % 16384
    }
}
