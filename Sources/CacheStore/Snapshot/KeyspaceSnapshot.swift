// Point-in-time snapshots of a live keyspace without stopping it: stripe-granularity copy-on-write.
//
// beginSnapshot locks every stripe for a moment (no data is copied), hangs a "capture pending" marker on each,
// runs `whileFrozen` (replication records its offset there: the snapshot is exactly the state at that offset)
// and unlocks. From then on, whoever next takes a stripe's lock through Keyspace.lock(stripe:) or lockAll —
// a writer, a reader with lazy expiry, eviction, active expiry, or the snapshot's own background iteration —
// first serializes that stripe's keys into the snapshot and clears the marker. Until that moment nobody has
// locked the stripe, so nothing in it changed since the freeze: the serialized bytes are its state at freeze
// time. The cost on the hot path is one load of `Stripe.pendingCapture` after taking a lock; while a snapshot
// runs, one command per stripe pays for serializing that stripe (1/64 of the keys).
//
// Several snapshots may overlap (a BGSAVE and a replica's full sync): a stripe still pending for an older
// snapshot has not changed since, so the newer one joins the same marker and one serialization feeds both.
// Memory: a captured stripe's bytes stay in the snapshot until its consumer takes them (`nextChunk`); under a
// write load touching every stripe that is up to one serialized copy of the keyspace, like redis's fork COW.
import Synchronization

/// The capture owed to the snapshots waiting on one stripe. Guarded by the stripe's lock.
final class PendingCapture {
    var sinks: [SnapshotSink]

    init(_ sink: SnapshotSink) {
        sinks = [sink]
    }
}

/// Where captured stripes of one snapshot land.
final class SnapshotSink: Sendable {
    struct Captured {
        var bytes: [UInt8]
        var records: Int
    }

    let captured: Mutex<[Captured?]>
    let cancelled = Atomic<Bool>(false)

    init(stripeCount: Int) {
        captured = Mutex(Array(repeating: nil, count: stripeCount))
    }

    func deliver(stripe: Int, _ capture: Captured) {
        captured.withLock { $0[stripe] = capture }
    }

    func take(stripe: Int) -> Captured? {
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
        whileFrozen()
        for index in stripes.indices.reversed() { stripes[index].lock.unlock() }
        return KeyspaceSnapshot(keyspace: self, sink: sink, createdAt: createdAt)
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
        var bytes: [UInt8] = []
        let records = SnapshotFormat.appendRecords(of: stripe, into: &bytes)
        for sink in live { sink.deliver(stripe: index, SnapshotSink.Captured(bytes: bytes, records: records)) }
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
    /// Only `nextChunk` takes this lock (it may lock a stripe inside, so nothing holding a stripe may take it).
    private let progress = Mutex(Progress())
    private let recordCount = Atomic<Int>(0)
    private let byteCount = Atomic<Int>(0)

    init(keyspace: Keyspace, sink: SnapshotSink, createdAt: Int64) {
        self.keyspace = keyspace
        self.sink = sink
        self.createdAt = createdAt
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
                    let header = SnapshotFormat.header(createdAt: createdAt)
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
                    progress.crc.update(captured.bytes)
                    progress.records += UInt64(captured.records)
                    recordCount.add(captured.records, ordering: .relaxed)
                    byteCount.add(captured.bytes.count, ordering: .relaxed)
                    return captured.bytes
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
