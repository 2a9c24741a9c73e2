// Point-in-time snapshots of a live keyspace without stopping it: stripe-granularity copy-on-write.
//
// beginSnapshot locks every stripe for a moment (no data is copied), hangs a "capture pending" marker on each, runs
// `whileFrozen` (replication records its offset there: the snapshot is exactly the state at that offset; the header's
// auxiliary fields and function libraries are read there too) and unlocks. From then on, whoever next takes a stripe's
// lock through Keyspace.lock(stripe:) or lockAll — a writer, a reader with lazy expiry, eviction, active expiry, or the
// snapshot's own background iteration — first captures that stripe's keys for the snapshot and clears the marker. Until
// that moment nobody has locked the stripe, so nothing in it changed since the freeze: the capture is its state at
// freeze time. Capturing copies string keys by reference (a retain; strings are copy-on-write, see CapturedEntry) and
// serializes only collections, which are mutated in place; the string records are serialized later by the snapshot's
// reader, off the lock. The cost on the hot path is one load of `Stripe.pendingCapture` after taking a lock; while a
// snapshot runs, one command per stripe pays for capturing that stripe (1/64 of the keys).
//
// Several snapshots may overlap (a BGSAVE and a replica's full sync): a stripe still pending for an older
// snapshot has not changed since, so the newer one joins the same marker and one serialization feeds both.
// Memory: a captured stripe stays in the snapshot until its reader takes it (`nextChunk`), keeping overwritten
// strings alive and holding serialized collections; under a write load touching every stripe that is up to one
// copy of the keyspace's entries, like the pages redis's forked child keeps by copy-on-write.
import Synchronization

/// The capture owed to the snapshots waiting on one stripe. Guarded by the stripe's lock.
final class PendingCapture {
    var sinks: [SnapshotSink]

    init(_ sink: SnapshotSink) {
        sinks = [sink]
    }
}

/// A string key captured by reference: keys and string values are never mutated while shared (APPEND and
/// SETRANGE copy a block that is not uniquely referenced), so holding them is a copy-on-write snapshot.
struct CapturedEntry {
    let database: Int
    let key: CompactBytes
    let value: StoredValue
    let expireAt: Int64?
}

/// One stripe as captured: string keys by reference (serialized later, off the lock), collections (mutated in
/// place, so they cannot be shared) already serialized as records.
struct CapturedStripe: @unchecked Sendable {
    // @unchecked: the entries' heap blocks are immutable while shared (see CapturedEntry), and collections are
    // held only as bytes.
    var entries: [CapturedEntry]
    var encoded: [UInt8]
    var encodedRecords: Int

    var records: Int { entries.count + encodedRecords }

    /// The stripe's records as snapshot bytes.
    func serialized() -> [UInt8] {
        var bytes = encoded
        bytes.reserveCapacity(encoded.count + entries.count * 64)
        for entry in entries {
            SnapshotFormat.appendRecord(
                database: entry.database, key: entry.key, value: entry.value, expireAt: entry.expireAt, into: &bytes)
        }
        return bytes
    }
}

/// Where captured stripes of one snapshot land.
final class SnapshotSink: Sendable {
    let captured: Mutex<[CapturedStripe?]>
    let cancelled = Atomic<Bool>(false)

    init(stripeCount: Int) {
        captured = Mutex(Array(repeating: nil, count: stripeCount))
    }

    func deliver(stripe: Int, _ capture: CapturedStripe) {
        captured.withLock { $0[stripe] = capture }
    }

    func take(stripe: Int) -> CapturedStripe? {
        captured.withLock { slots in
            defer { slots[stripe] = nil }
            return slots[stripe]
        }
    }
}

extension Keyspace {
    /// Starts a point-in-time snapshot of every database.
    ///
    /// Every stripe is locked only while markers are set and `whileFrozen` runs (microseconds; no key is copied
    /// then). The snapshot's contents are the keyspace exactly as it was during `whileFrozen`.
    /// - Parameters:
    ///   - createdAt: the time written in the header (unix ms).
    ///   - whileFrozen: runs with every stripe locked, e.g. to record the replication offset the snapshot matches.
    ///     Must not lock stripes.
    /// - Returns: the snapshot; read it with ``KeyspaceSnapshot/nextChunk()``.
    public func beginSnapshot(createdAt: Int64 = 0, whileFrozen: () -> Void = {}) -> KeyspaceSnapshot {
        beginSnapshot(createdAt: createdAt, auxiliaryWhileFrozen: {
            whileFrozen()
            return [:]
        })
    }

    /// Starts a point-in-time snapshot whose header carries auxiliary fields read while every stripe is locked
    /// (the replication id and offset the data matches), as ``beginSnapshot(createdAt:whileFrozen:)`` otherwise.
    public func beginSnapshot(createdAt: Int64 = 0, auxiliaryWhileFrozen: () -> [String: String]) -> KeyspaceSnapshot {
        beginSnapshot(createdAt: createdAt, headerWhileFrozen: { (auxiliary: auxiliaryWhileFrozen(), functionLibraries: []) })
    }

    /// Starts a point-in-time snapshot whose header carries auxiliary fields and function libraries read while
    /// every stripe is locked, as ``beginSnapshot(createdAt:whileFrozen:)`` otherwise.
    /// - Parameters:
    ///   - createdAt: the time written in the header (unix ms).
    ///   - headerWhileFrozen: runs with every stripe locked and returns the auxiliary fields (the replication id
    ///     and offset the data matches) and the source code of each function library, written in the given order.
    ///     Must not lock stripes.
    /// - Returns: the snapshot; read it with ``KeyspaceSnapshot/nextChunk()``.
    public func beginSnapshot(
        createdAt: Int64 = 0, headerWhileFrozen: () -> (auxiliary: [String: String], functionLibraries: [[UInt8]])
    ) -> KeyspaceSnapshot {
        let sink = SnapshotSink(stripeCount: stripes.count)
        for stripe in stripes { stripe.lock.lock() }
        for stripe in stripes {
            if let pending = stripe.pendingCapture {
                pending.sinks.append(sink)
            } else {
                stripe.pendingCapture = PendingCapture(sink)
                stripe.capturePending.store(true, ordering: .relaxed)
            }
        }
        let header = headerWhileFrozen()
        for index in stripes.indices.reversed() { stripes[index].lock.unlock() }
        return KeyspaceSnapshot(
            keyspace: self, sink: sink, createdAt: createdAt, auxiliary: header.auxiliary,
            functionLibraries: header.functionLibraries)
    }

    /// Serializes stripe `index` for the snapshots waiting on it. Requires the stripe locked.
    @inline(never)
    func captureStripe(_ index: Int) {
        let stripe = stripes[index]
        guard let pending = stripe.pendingCapture else { return }
        stripe.pendingCapture = nil
        stripe.capturePending.store(false, ordering: .relaxed)
        let live = pending.sinks.filter { !$0.cancelled.load(ordering: .relaxed) }
        if live.isEmpty { return }
        var capture = CapturedStripe(entries: [], encoded: [], encodedRecords: 0)
        var total = 0
        for case let table? in stripe.tables { total += table.count }
        capture.entries.reserveCapacity(total)
        for (database, table) in stripe.tables.enumerated() {
            guard let table else { continue }
            for position in 0..<table.count {
                let entry = table.entry(at: position)
                switch entry.pointee.value {
                case .shortString, .string:
                    capture.entries.append(
                        CapturedEntry(
                            database: database, key: entry.pointee.key, value: entry.pointee.value,
                            expireAt: entry.pointee.meta.expireAt))
                default:
                    SnapshotFormat.appendRecord(
                        database: database, key: entry.pointee.key, value: entry.pointee.value,
                        expireAt: entry.pointee.meta.expireAt, into: &capture.encoded)
                    capture.encodedRecords += 1
                }
            }
        }
        for sink in live { sink.deliver(stripe: index, capture) }
    }
}

/// A point-in-time snapshot being read out, chunk by chunk, while the keyspace keeps serving.
///
/// The concatenation of all chunks is a complete snapshot file (see ``SnapshotFormat``). Read it from one task
/// at a time; dropping or cancelling it releases the stripes still pending for it.
public final class KeyspaceSnapshot: Sendable {
    private enum Phase {
        case header
        case stripe(Int)
        case trailer
        case done
    }

    private struct Progress {
        var phase = Phase.header
        var crc = CRC64()
        var records: UInt64 = 0
    }

    let keyspace: Keyspace
    let sink: SnapshotSink
    /// The creation time written in the header (unix ms).
    public let createdAt: Int64
    /// The auxiliary fields written after the header.
    public let auxiliary: [String: String]
    /// The source code of each function library, written after the auxiliary fields in this order.
    public let functionLibraries: [[UInt8]]
    /// Only `nextChunk` takes this lock (it may lock a stripe inside, so nothing holding a stripe may take it).
    private let progress = Mutex(Progress())
    private let recordCount = Atomic<Int>(0)
    private let byteCount = Atomic<Int>(0)

    init(keyspace: Keyspace, sink: SnapshotSink, createdAt: Int64, auxiliary: [String: String], functionLibraries: [[UInt8]]) {
        self.keyspace = keyspace
        self.sink = sink
        self.createdAt = createdAt
        self.auxiliary = auxiliary
        self.functionLibraries = functionLibraries
    }

    deinit {
        sink.cancelled.store(true, ordering: .relaxed)
    }

    /// The next bytes of the snapshot: the header, then each non-empty stripe's records (serializing the stripe
    /// now under its lock if no command did yet), then the trailer; `nil` when complete or cancelled.
    public func nextChunk() -> [UInt8]? {
        progress.withLock { progress in
            while true {
                switch progress.phase {
                case .header:
                    let header = SnapshotFormat.header(createdAt: createdAt, auxiliary: auxiliary, functionLibraries: functionLibraries)
                    progress.crc.update(header)
                    byteCount.add(header.count, ordering: .relaxed)
                    progress.phase = .stripe(0)
                    return header
                case .stripe(let index):
                    if index >= keyspace.stripes.count {
                        progress.phase = .trailer
                        continue
                    }
                    if sink.cancelled.load(ordering: .relaxed) {
                        progress.phase = .done
                        return nil
                    }
                    progress.phase = .stripe(index + 1)
                    var captured = sink.take(stripe: index)
                    if captured == nil {
                        // Taking the lock runs the pending capture for every snapshot waiting on this stripe.
                        keyspace.lock(stripe: index)
                        keyspace.unlock(stripe: index)
                        captured = sink.take(stripe: index)
                    }
                    guard let captured else {
                        // Only a cancellation between the check above and the lock skips our capture.
                        precondition(sink.cancelled.load(ordering: .relaxed), "stripe \(index) was neither captured nor pending")
                        progress.phase = .done
                        return nil
                    }
                    if captured.records == 0 { continue }
                    let bytes = captured.serialized()
                    progress.crc.update(bytes)
                    progress.records += UInt64(captured.records)
                    recordCount.add(captured.records, ordering: .relaxed)
                    byteCount.add(bytes.count, ordering: .relaxed)
                    return bytes
                case .trailer:
                    let trailer = SnapshotFormat.trailer(recordCount: progress.records, crc: progress.crc)
                    byteCount.add(trailer.count, ordering: .relaxed)
                    progress.phase = .done
                    return trailer
                case .done:
                    return nil
                }
            }
        }
    }

    /// Abandons the snapshot: stripes not captured yet are no longer serialized for it.
    public func cancel() {
        sink.cancelled.store(true, ordering: .relaxed)
    }

    /// Records emitted so far (safe to read from anywhere, e.g. INFO).
    public var recordsWritten: Int { recordCount.load(ordering: .relaxed) }
    /// Bytes emitted so far (safe to read from anywhere).
    public var bytesWritten: Int { byteCount.load(ordering: .relaxed) }
}
