// The end-mark scanner of streamed full syncs: the mark found wherever reads split it, nothing of the snapshot lost
// or duplicated, the stream's first bytes handed back, and a partial mark inside the data not mistaken for the end.
@testable import CacheNode
import Testing

struct SnapshotEndMarkScannerTests {
    @Test func findsTheMarkAcrossEverySplitPoint() {
        let mark = SnapshotEndMarkScanner.randomMark()
        #expect(mark.count == 40 && mark.allSatisfy { Array("0123456789abcdef".utf8).contains($0) })
        // Data that holds the mark's first 39 characters, so only the whole mark ends the snapshot.
        let snapshot = Array("CNSNAP".utf8) + Array(mark.prefix(39)) + (0..<300).map { UInt8($0 % 251) }
        let stream = Array("*1\r\n$4\r\nPING\r\n".utf8)
        let wire = snapshot + mark + stream
        for first in 0...wire.count {
            for second in [first, min(wire.count, first + 7), min(wire.count, first + 45)] {
                var scanner = SnapshotEndMarkScanner(mark: mark)
                var received: [UInt8] = []
                var after: [UInt8]?
                for piece in [wire[..<first], wire[first..<second], wire[second...]] {
                    // Once the mark is found, later reads are the replication stream and bypass the scanner.
                    if after != nil {
                        after! += piece
                        continue
                    }
                    let (bytes, rest) = scanner.scan(piece)
                    received += bytes
                    after = rest
                }
                #expect(received == snapshot, "split at \(first)/\(second)")
                #expect(after == stream, "split at \(first)/\(second)")
            }
        }
    }

    @Test func holdsBackOnlyWhatCouldStartTheMark() {
        let mark = Array(String(repeating: "a", count: 40).utf8)
        var scanner = SnapshotEndMarkScanner(mark: mark)
        let (bytes, rest) = scanner.scan(Array(repeating: UInt8(ascii: "b"), count: 100))
        #expect(bytes.count == 61 && rest == nil, "39 bytes are held back until the next read")
        let (more, end) = scanner.scan(mark)
        #expect(more.count == 39 && end == [])
    }
}
