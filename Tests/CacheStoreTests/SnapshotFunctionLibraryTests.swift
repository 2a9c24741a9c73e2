// Function libraries in snapshots (format version 3, opcode 0xF5): they round-trip in order with arbitrary bytes,
// whole or fed a byte at a time; version-2 snapshots still load as before; a library after a record, an aux field
// after a library, or one over the decoder's limit is rejected; Keyspace.beginSnapshot(headerWhileFrozen:) writes
// the libraries it is given.
@testable import CacheStore
import Synchronization
import Testing

struct SnapshotFunctionLibraryTests {
    let now: Int64 = 1_700_000_000_000

    /// Two libraries: Lua source, and arbitrary bytes that are not UTF-8 with a NUL inside.
    let libraries: [[UInt8]] = [
        Array("#!lua name=mylib\nredis.register_function('knockknock', function() return 'Who\\'s there?' end)\n".utf8),
        [0x00, 0xFF, 0xFE, 0xC3, 0x28, 0xF5, 0xFA, 0x01, 0xFF, 0x00, 0x80],
    ]

    let auxiliary = ["repl-id": String(repeating: "b", count: 40), "repl-offset": "777"]

    let records = [
        SnapshotRecord(database: 0, key: CompactBytes("plain"), value: .string("value"), expireAt: nil),
        SnapshotRecord(database: 2, key: CompactBytes("counter"), value: .string("12345"), expireAt: 1_700_000_060_000),
        SnapshotRecord(database: 1, key: CompactBytes("big"), value: .string(String(repeating: "x", count: 500)), expireAt: nil),
    ]

    /// A decoded snapshot: its records as "db/key/expiry/value", libraries and aux fields.
    private struct Decoded {
        var records: [String] = []
        var libraries: [[UInt8]] = []
        var auxiliary: [String: String] = [:]
    }

    private func describe(_ records: [SnapshotRecord]) -> [String] {
        records.map { "\($0.database)/\($0.key.string)/\(String(describing: $0.expireAt))/\(SampleValues.describe($0.value))" }
    }

    private func decode(_ bytes: [UInt8], pieceSize: Int, limits: SnapshotStreamDecoder.Limits = .init()) throws(SnapshotError) -> Decoded {
        var decoder = SnapshotStreamDecoder(limits: limits)
        var decoded = Decoded()
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + pieceSize)
            decoded.records += describe(try decoder.feed(bytes[offset..<end]))
            offset = end
        }
        try decoder.finish()
        decoded.libraries = decoder.functionLibraries
        decoded.auxiliary = decoder.auxiliary
        return decoded
    }

    private func decodeError(_ bytes: [UInt8], limits: SnapshotStreamDecoder.Limits = .init()) -> SnapshotError? {
        do {
            _ = try decode(bytes, pieceSize: bytes.count, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    /// `bytes` relabelled as format `version`, with the trailer's checksum recomputed as that writer would have.
    private func relabelled(_ bytes: [UInt8], version: UInt16) -> [UInt8] {
        var bytes = bytes
        bytes.replaceSubrange(6..<8, with: withUnsafeBytes(of: version.littleEndian, Array.init))
        var crc = CRC64()
        crc.update(bytes[0..<(bytes.count - 8)])
        bytes.replaceSubrange((bytes.count - 8)..., with: withUnsafeBytes(of: crc.value.littleEndian, Array.init))
        return bytes
    }

    @Test func theFormatVersionIsThreeAndLibrariesFollowTheAuxFields() {
        #expect(SnapshotFormat.version == 3)
        let header = SnapshotFormat.header(createdAt: now, auxiliary: ["a": "b"], functionLibraries: [[0x41, 0x00], []])
        var expected = SnapshotFormat.magic + [0x03, 0x00]
        expected += withUnsafeBytes(of: now.littleEndian, Array.init)
        expected += [0xFA, 0x04, 0x00, 0x00, 0x00, 0x01, 0x61, 0x01, 0x62]
        expected += [0xF5, 0x02, 0x00, 0x00, 0x00, 0x41, 0x00]
        expected += [0xF5, 0x00, 0x00, 0x00, 0x00]
        #expect(header == expected)
        // Without libraries the header is what it was, apart from the version.
        #expect(SnapshotFormat.header(createdAt: now).count == SnapshotFormat.headerSize)
    }

    @Test(arguments: [1, 3, 1 << 20])
    func librariesRoundTripInOrderWithAuxFieldsAndRecords(pieceSize: Int) throws {
        let bytes = SnapshotFormat.encode(records, createdAt: now, auxiliary: auxiliary, functionLibraries: libraries)
        let decoded = try decode(bytes, pieceSize: pieceSize)
        #expect(decoded.libraries == libraries)
        #expect(decoded.auxiliary == auxiliary)
        #expect(decoded.records == describe(records))
        // An empty library and a lone one decode too.
        #expect(try decode(SnapshotFormat.encode([], functionLibraries: [[]]), pieceSize: pieceSize).libraries == [[]])
        #expect(try decode(SnapshotFormat.encode(records, functionLibraries: [libraries[1]]), pieceSize: pieceSize).libraries == [libraries[1]])
    }

    @Test func snapshotsWithoutLibrariesDecodeWithNone() throws {
        let decoded = try decode(SnapshotFormat.encode(records, auxiliary: auxiliary), pieceSize: 1)
        #expect(decoded.libraries.isEmpty)
        #expect(decoded.records == describe(records))
    }

    @Test func versionTwoSnapshotsStillDecodeAsBefore() throws {
        let bytes = relabelled(SnapshotFormat.encode(records, createdAt: now, auxiliary: auxiliary), version: 2)
        #expect(bytes[6] == 2)
        for pieceSize in [1, 1 << 20] {
            let decoded = try decode(bytes, pieceSize: pieceSize)
            #expect(decoded.libraries.isEmpty)
            #expect(decoded.auxiliary == auxiliary)
            #expect(decoded.records == describe(records))
        }
        // Version 2 had no 0xF5: there it is still an unknown opcode.
        let withLibrary = relabelled(SnapshotFormat.encode(records, functionLibraries: [libraries[0]]), version: 2)
        #expect(decodeError(withLibrary)?.kind == .malformed)
    }

    @Test func aLibraryAfterARecordOrAnAuxFieldAfterALibraryIsRejected() {
        var late = SnapshotFormat.header(createdAt: 0)
        SnapshotFormat.appendRecord(records[0], into: &late)
        late += Array(SnapshotFormat.header(createdAt: 0, functionLibraries: [libraries[0]]).dropFirst(SnapshotFormat.headerSize))
        let error = decodeError(late)
        #expect(error?.kind == .malformed)
        #expect(error?.message.contains("function library after 1 records") == true)
        var auxAfterLibrary = SnapshotFormat.header(createdAt: 0, functionLibraries: [libraries[0]])
        auxAfterLibrary += Array(SnapshotFormat.header(createdAt: 0, auxiliary: ["a": "b"]).dropFirst(SnapshotFormat.headerSize))
        #expect(decodeError(auxAfterLibrary)?.kind == .malformed)
    }

    @Test func aLibraryOverTheLimitIsRejectedBeforeItsBytesArrive() throws {
        // Only the frame's length is there: the default limit (512 MiB) refuses a 4 GiB claim at once.
        var huge = SnapshotFormat.header(createdAt: 0)
        huge += [0xF5, 0xFF, 0xFF, 0xFF, 0xFF]
        var decoder = SnapshotStreamDecoder()
        #expect(SnapshotStreamDecoder.Limits().maximumFunctionLibraryBytes == 512 << 20)
        do {
            _ = try decoder.feed(huge)
            Issue.record("a 4 GiB function library was accepted")
        } catch {
            #expect(error.kind == .limitExceeded)
            #expect(error.message.contains("\(UInt32.max) bytes"))
            #expect(error.message.contains("\(512 << 20)"))
        }
        // A small configured limit: exactly at it is accepted, one byte more is not, even fed a byte at a time.
        let limits = SnapshotStreamDecoder.Limits(maximumFunctionLibraryBytes: libraries[0].count)
        let atLimit = SnapshotFormat.encode(records, functionLibraries: [libraries[0]])
        #expect(try decode(atLimit, pieceSize: 1, limits: limits).libraries == [libraries[0]])
        let overLimit = SnapshotFormat.encode(records, functionLibraries: [libraries[0] + [0x20]])
        #expect(decodeError(overLimit, limits: limits)?.kind == .limitExceeded)
        #expect(throws: SnapshotError.self) { _ = try decode(overLimit, pieceSize: 1, limits: limits) }
    }

    @Test func beginSnapshotWithHeaderWhileFrozenWritesTheLibraries() throws {
        let keyspace = Keyspace(databases: 2)
        let db = keyspace.database(1, now: now)
        keyspace.withAllLocked { for index in 0..<500 { db.set(KeyRef("k\(index)"), .string("v\(index)")) } }
        var frozen = false
        let snapshot = keyspace.beginSnapshot(createdAt: now, headerWhileFrozen: {
            frozen = keyspace.stripes.allSatisfy { $0.capturePending.load(ordering: .relaxed) }
            return (auxiliary: auxiliary, functionLibraries: libraries)
        })
        #expect(frozen)
        #expect(snapshot.functionLibraries == libraries)
        #expect(snapshot.auxiliary == auxiliary)
        var bytes: [UInt8] = []
        while let chunk = snapshot.nextChunk() { bytes += chunk }
        for pieceSize in [1, 1 << 20] {
            let decoded = try decode(bytes, pieceSize: pieceSize)
            #expect(decoded.libraries == libraries)
            #expect(decoded.auxiliary == auxiliary)
            #expect(decoded.records.count == 500)
        }
        // The older overloads write no libraries.
        let plain = keyspace.beginSnapshot(createdAt: now, auxiliaryWhileFrozen: { auxiliary })
        #expect(plain.functionLibraries.isEmpty)
        var plainBytes: [UInt8] = []
        while let chunk = plain.nextChunk() { plainBytes += chunk }
        #expect(try decode(plainBytes, pieceSize: 1 << 20).libraries.isEmpty)
    }
}
