// Snapshots of a live keyspace: every type with TTLs round-trips through the file format and the incremental
// decoder; damaged files are rejected with the right error; a snapshot shows the keyspace as of beginSnapshot
// even when keys in many stripes change afterwards; the first lock of a pending stripe captures it.
@testable import CacheStore
import Synchronization
import Testing

struct KeyspaceSnapshotTests {
    let now: Int64 = 1_700_000_000_000

    /// Fills databases 0 and 3 with every sample type; odd ones get a TTL.
    private func populated() -> Keyspace {
        let keyspace = Keyspace(databases: 4)
        for (index, sample) in SampleValues.all().enumerated() {
            for database in [0, 3] {
                let db = keyspace.database(database, now: now)
                let key = KeyRef("\(sample.name):\(database)")
                keyspace.withLocked([key]) {
                    db.set(key, sample.value.duplicate(), expiry: index % 2 == 1 ? .at(now + 60_000 + Int64(index)) : .remove)
                }
            }
        }
        let db = keyspace.database(1, now: now)
        keyspace.withAllLocked {
            for index in 0..<3000 { db.set(KeyRef("bulk:\(index)"), .string("value-\(index)")) }
        }
        return keyspace
    }

    private func drain(_ snapshot: KeyspaceSnapshot) -> [UInt8] {
        var bytes: [UInt8] = []
        while let chunk = snapshot.nextChunk() {
            #expect(!chunk.isEmpty)
            bytes += chunk
        }
        return bytes
    }

    /// Every key as "db/key/expiry/value".
    private func contents(_ keyspace: Keyspace) -> [String] {
        var lines: [String] = []
        keyspace.withAllLocked {
            for database in 0..<keyspace.databaseCount {
                let db = keyspace.database(database, now: now)
                db.forEachKey { key, value in
                    let expiry = db.expiry(KeyRef(key))
                    lines.append("\(database)/\(key.string)/\(expiry)/\(SampleValues.describe(value))")
                }
            }
        }
        return lines.sorted()
    }

    private func load(_ bytes: [UInt8], pieceSize: Int, into keyspace: Keyspace) throws(SnapshotError) {
        var decoder = SnapshotStreamDecoder()
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + pieceSize)
            try keyspace.apply(try decoder.feed(bytes[offset..<end]), now: now)
            offset = end
        }
        try decoder.finish()
    }

    @Test(arguments: [1, 7, 4096, 1 << 30])
    func everyTypeWithTTLsRoundTrips(pieceSize: Int) throws {
        let source = populated()
        let bytes = drain(source.beginSnapshot(createdAt: now))
        let target = Keyspace(databases: 4)
        try load(bytes, pieceSize: pieceSize, into: target)
        #expect(contents(target) == contents(source))
        #expect(contents(target).count == 3000 + 2 * SampleValues.all().count)
        #expect(target.withAllLocked { target.keyCounts()[3].volatile } == SampleValues.all().count / 2)
    }

    @Test func expiredKeysAreSkippedAtLoadUnlessAsked() throws {
        let records = [
            SnapshotRecord(database: 0, key: CompactBytes("gone"), value: .string("x"), expireAt: now - 1),
            SnapshotRecord(database: 0, key: CompactBytes("kept"), value: .string("y"), expireAt: now + 1000),
            SnapshotRecord(database: 0, key: CompactBytes("forever"), value: .string("z"), expireAt: nil),
        ]
        var decoder = SnapshotStreamDecoder()
        let decoded = try decoder.feed(SnapshotFormat.encode(records))
        try decoder.finish()
        let primary = Keyspace(databases: 1)
        #expect(try primary.apply(decoded, now: now) == 2)
        let replica = Keyspace(databases: 1)
        #expect(try replica.apply(decoded, now: now, skipExpired: false) == 3)
        #expect(throws: SnapshotError.self) {
            try Keyspace(databases: 1).apply(SnapshotRecord(database: 5, key: .empty, value: .string("x"), expireAt: nil), now: now)
        }
    }

    private func decodeError(_ bytes: [UInt8]) -> SnapshotError? {
        var decoder = SnapshotStreamDecoder()
        do {
            _ = try decoder.feed(bytes)
            try decoder.finish()
            return nil
        } catch {
            return error
        }
    }

    @Test func truncatedFilesAreRejected() {
        let bytes = drain(populated().beginSnapshot())
        // Every cut inside the header and trailer, and a spread of cuts through the records.
        var cuts = Array(0..<SnapshotFormat.headerSize + 2) + Array(bytes.count - SnapshotFormat.trailerSize - 2..<bytes.count)
        cuts += stride(from: 0, to: bytes.count, by: 97)
        for cut in cuts {
            #expect(decodeError(Array(bytes[0..<cut]))?.kind == .truncated, "cut at \(cut)")
        }
        #expect(decodeError(bytes) == nil)
    }

    @Test func flippedBytesAreRejected() {
        let bytes = drain(populated().beginSnapshot())
        var random = SplitMix64(seed: 3)
        var positions = Array(0..<SnapshotFormat.headerSize) + Array(bytes.count - SnapshotFormat.trailerSize..<bytes.count)
        positions += (0..<400).map { _ in Int.random(in: 0..<bytes.count, using: &random) }
        for position in positions {
            var damaged = bytes
            damaged[position] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            let error = decodeError(damaged)
            #expect(error != nil, "flip at \(position) went unnoticed")
        }
        // A flip in a value's bytes decodes structurally but fails the checksum.
        var damaged = bytes
        let index = bytes.lastIndex(of: UInt8(ascii: "9"))!
        damaged[index] = UInt8(ascii: "8")
        #expect(decodeError(damaged)?.kind == .checksumMismatch)
    }

    @Test func garbageAndTrailingBytesAreRejected() {
        #expect(decodeError(Array("REDIS0011".utf8))?.kind == .badMagic)
        #expect(decodeError(Array("*1\r\n$4\r\nPING\r\n".utf8))?.kind == .badMagic)
        var newer = SnapshotFormat.encode([])
        newer[6] = 9
        #expect(decodeError(newer)?.kind == .unsupportedVersion)
        var bytes = SnapshotFormat.encode([SnapshotRecord(database: 0, key: CompactBytes("k"), value: .string("v"), expireAt: nil)])
        bytes.append(0)
        #expect(decodeError(bytes)?.kind == .trailingData)
        var unknownOpcode = SnapshotFormat.header(createdAt: 0)
        unknownOpcode.append(0x42)
        #expect(decodeError(unknownOpcode)?.kind == .malformed)
        var huge = SnapshotFormat.header(createdAt: 0)
        huge += [0x01, 0xFF, 0xFF, 0xFF, 0x7F]
        var limited = SnapshotStreamDecoder(limits: .init(maximumRecordBytes: 1 << 20))
        #expect(throws: SnapshotError.self) { _ = try limited.feed(huge) }
        var random = SplitMix64(seed: 11)
        for _ in 0..<2000 {
            var garbage = SnapshotFormat.header(createdAt: 0)
            garbage += (0..<Int.random(in: 0..<64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            #expect(decodeError(garbage) != nil)
        }
    }

    @Test func auxiliaryFieldsReadWhileFrozenRoundTripAheadOfTheRecords() throws {
        let source = populated()
        var frozenKeys = -1
        let snapshot = source.beginSnapshot(createdAt: now, auxiliaryWhileFrozen: {
            frozenKeys = source.keyCounts().reduce(0) { $0 + $1.keys }
            return ["repl-id": String(repeating: "a", count: 40), "repl-offset": "12345"]
        })
        #expect(frozenKeys == 3000 + 2 * SampleValues.all().count)
        let bytes = drain(snapshot)
        for pieceSize in [1, 5, 1 << 20] {
            var decoder = SnapshotStreamDecoder()
            var records = 0
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + pieceSize)
                records += try decoder.feed(bytes[offset..<end]).count
                offset = end
            }
            try decoder.finish()
            #expect(decoder.auxiliary == ["repl-id": String(repeating: "a", count: 40), "repl-offset": "12345"])
            #expect(records == frozenKeys)
        }
    }

    @Test func versionOneFilesWithoutAuxiliaryFieldsStillLoad() throws {
        var bytes = SnapshotFormat.encode([SnapshotRecord(database: 0, key: CompactBytes("k"), value: .string("v"), expireAt: nil)])
        bytes[6] = 1
        // The checksum covers the version byte: recompute it as a version-1 writer would have.
        var crc = CRC64()
        crc.update(bytes[0..<(bytes.count - 8)])
        bytes.replaceSubrange((bytes.count - 8)..., with: withUnsafeBytes(of: crc.value.littleEndian, Array.init))
        var decoder = SnapshotStreamDecoder()
        #expect(try decoder.feed(bytes).count == 1)
        try decoder.finish()
        #expect(decoder.auxiliary.isEmpty)
    }

    @Test func misplacedOrOversizedAuxiliaryFieldsAreRejected() {
        let record = SnapshotRecord(database: 0, key: CompactBytes("k"), value: .string("v"), expireAt: nil)
        var late = SnapshotFormat.header(createdAt: 0)
        SnapshotFormat.appendRecord(record, into: &late)
        late += Array(SnapshotFormat.header(createdAt: 0, auxiliary: ["a": "b"]).dropFirst(SnapshotFormat.headerSize))
        #expect(decodeError(late)?.kind == .malformed)
        var oversized = SnapshotFormat.header(createdAt: 0)
        oversized += [0xFA, 0x00, 0x00, 0x10, 0x00]  // 1 MiB
        #expect(decodeError(oversized)?.kind == .limitExceeded)
        // A field's declared lengths must fill its body exactly.
        var stray = SnapshotFormat.header(createdAt: 0)
        stray += [0xFA, 0x05, 0x00, 0x00, 0x00, 0x01, 0x61, 0x01, 0x62, 0x00]
        #expect(decodeError(stray)?.kind == .malformed)
    }

    @Test func snapshotShowsTheKeyspaceAsOfItsBeginning() throws {
        let keyspace = Keyspace(databases: 2)
        let db = keyspace.database(0, now: now)
        let keys = (0..<2000).map { KeyRef("key:\($0)") }
        keyspace.withAllLocked { for (index, key) in keys.enumerated() { db.set(key, .string("old-\(index)")) } }
        let listKey = KeyRef("list")
        keyspace.withLocked([listKey]) {
            db.modify(listKey) { value, modified in
                let list = ListValue()
                list.push(CompactBytes("first"), at: .tail)
                value = .list(list)
                modified = true
            }
        }
        let before = contents(keyspace)
        var frozenRan = false
        let snapshot = keyspace.beginSnapshot { frozenRan = true }
        #expect(frozenRan)
        // Change keys in every stripe through every kind of lock: single, multi-key, all, and an in-place mutation.
        for (index, key) in keys.enumerated() where index % 3 == 0 {
            keyspace.withLocked([key]) { db.set(key, .string("new-\(index)")) }
        }
        keyspace.withLocked([keys[1], keys[2], keys[4]]) {
            db.delete(keys[1])
            db.delete(keys[2])
        }
        keyspace.withLocked([listKey]) {
            db.modify(listKey) { value, modified in
                if case .list(let list) = value! { list.push(CompactBytes("second"), at: .tail) }
                modified = true
            }
        }
        keyspace.withAllLocked { db.set(KeyRef("added"), .string("after the snapshot")) }
        _ = keyspace.activeExpireCycle(now: now)
        let restored = Keyspace(databases: 2)
        try load(drain(snapshot), pieceSize: 1000, into: restored)
        #expect(contents(restored) == before)
        #expect(contents(keyspace) != before)
    }

    @Test func readsLeavePendingStripesAndTheSnapshotKeepsItsMoment() throws {
        let keyspace = Keyspace(databases: 1)
        let db = keyspace.database(0, now: now)
        let keys = (0..<3000).map { KeyRef("key:\($0)") }
        keyspace.withAllLocked {
            for (index, key) in keys.enumerated() {
                db.set(key, .string("old-\(index)"), expiry: index % 100 == 0 ? .at(now + 1_000) : .remove)
            }
        }
        let before = contents(keyspace)
        let snapshot = keyspace.beginSnapshot()
        // Reads through read-only locks, some a second later, when every hundredth key has expired and the read
        // removes it: no stripe is captured by them.
        let later = keyspace.database(0, now: now + 2_000)
        var expiredSeen = 0
        for (index, key) in keys.enumerated() where index % 7 == 0 || index % 100 == 0 {
            let stripe = keyspace.stripeIndex(for: key)
            keyspace.lock(stripe: stripe, capturing: false)
            let read = index % 100 == 0 ? later.value(key) : db.value(key)
            if read == nil { expiredSeen += 1 }
            keyspace.unlock(stripe: stripe)
        }
        #expect(expiredSeen == keys.count / 100)
        #expect(keyspace.stripes.allSatisfy { $0.capturePending.load(ordering: .relaxed) }, "reads captured nothing")
        // Writes after the reads capture as before and are not in the snapshot.
        for (index, key) in keys.enumerated() where index % 3 == 1 {
            keyspace.withLocked([key]) { db.set(key, .string("new-\(index)")) }
        }
        let restored = Keyspace(databases: 1)
        try load(drain(snapshot), pieceSize: 4096, into: restored)
        // As of the beginning, except the keys whose expiry passed and that a read removed before their stripe was
        // captured (a loader after their expiry drops them anyway).
        let expiredLines = Set(before.filter { line in
            guard let number = Int(line.split(separator: "/")[1].split(separator: ":")[1]) else { return false }
            return number % 100 == 0
        })
        #expect(Set(contents(restored)).subtracting(expiredLines) == Set(before).subtracting(expiredLines))
        #expect(contents(restored).allSatisfy { !$0.contains("new-") })
    }

    @Test func theFirstLockOfAPendingStripeCapturesIt() {
        let keyspace = Keyspace(databases: 1)
        let db = keyspace.database(0, now: now)
        keyspace.withAllLocked { for index in 0..<1000 { db.set(KeyRef("k\(index)"), .string("v")) } }
        let snapshot = keyspace.beginSnapshot()
        #expect(keyspace.stripes.allSatisfy { $0.capturePending.load(ordering: .relaxed) })
        let key = KeyRef("k1")
        let stripe = keyspace.stripeIndex(for: key)
        // A read-only lock leaves the stripe pending; the next writing lock captures it.
        keyspace.lock(stripe: stripe, capturing: false)
        #expect(keyspace.stripes[stripe].pendingCapture != nil)
        keyspace.unlock(stripe: stripe)
        keyspace.lock(stripe: stripe)
        #expect(keyspace.stripes[stripe].pendingCapture == nil)
        keyspace.unlock(stripe: stripe)
        let pendingAfterOneWrite = keyspace.stripes.filter { $0.capturePending.load(ordering: .relaxed) }.count
        #expect(pendingAfterOneWrite == keyspace.stripes.count - 1)
        // The captured bytes wait in the snapshot; nothing else was serialized.
        #expect(snapshot.sink.captured.withLock { slots in slots.indices.filter { slots[$0] != nil } } == [stripe])
        // Read-only whole-keyspace commands do not capture; writing ones do.
        keyspace.lockAll(capturing: false)
        keyspace.unlockAll()
        #expect(keyspace.stripes.filter { $0.capturePending.load(ordering: .relaxed) }.count == pendingAfterOneWrite)
        keyspace.lockAll()
        keyspace.unlockAll()
        #expect(keyspace.stripes.allSatisfy { !$0.capturePending.load(ordering: .relaxed) })
        #expect(snapshot.recordsWritten == 0)
        while snapshot.nextChunk() != nil {}
        #expect(snapshot.recordsWritten == 1000)
    }

    @Test func overlappingSnapshotsShareCapturesAndEachSeeItsOwnMoment() throws {
        let keyspace = Keyspace(databases: 1)
        let db = keyspace.database(0, now: now)
        let keys = (0..<500).map { KeyRef("k\($0)") }
        keyspace.withAllLocked { for key in keys { db.set(key, .string("one")) } }
        let first = keyspace.beginSnapshot()
        keyspace.withLocked([keys[0]]) { db.set(keys[0], .string("two")) }
        let stateAtSecond = contents(keyspace)
        let second = keyspace.beginSnapshot()
        keyspace.withAllLocked { for key in keys { db.set(key, .string("three")) } }
        let fromFirst = Keyspace(databases: 1)
        try load(drain(first), pieceSize: 333, into: fromFirst)
        let fromSecond = Keyspace(databases: 1)
        try load(drain(second), pieceSize: 333, into: fromSecond)
        #expect(contents(fromFirst).filter { $0.contains("three") || $0.contains("two") }.isEmpty)
        #expect(contents(fromSecond) == stateAtSecond)
    }

    @Test func cancelledSnapshotsStopCapturing() {
        let keyspace = Keyspace(databases: 1)
        let db = keyspace.database(0, now: now)
        keyspace.withAllLocked { for index in 0..<100 { db.set(KeyRef("k\(index)"), .string("v")) } }
        let snapshot = keyspace.beginSnapshot()
        snapshot.cancel()
        keyspace.lockAll()
        keyspace.unlockAll()
        #expect(snapshot.sink.captured.withLock { $0.allSatisfy { $0 == nil } })
        #expect(snapshot.nextChunk() != nil)  // the header
        #expect(snapshot.nextChunk() == nil)
    }
}
