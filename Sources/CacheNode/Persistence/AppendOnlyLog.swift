// The append-only file (redis 7's multi-part AOF): with `appendonly yes`, every write the node applies is appended to
// a log in `<dir>/<appenddirname>`, and at start-up the node rebuilds its keyspace from it instead of the snapshot.
//
// Files: a manifest (`<appendfilename>.manifest`) names one base (a snapshot in this node's format,
// `<appendfilename>.<n>.base.snap`) and the incremental logs after it (`<appendfilename>.<n>.incr.aof`: the same RESP
// commands the replication stream carries, rewritten for replay: PEXPIREAT, SET for INCRBYFLOAT, MULTI…EXEC blocks).
// The log is fed from `ReplicationState.appendLocked`, so it sees exactly the replication stream, in order.
//
// Every write reaches the kernel (write(2)) inside its critical section, before its reply can leave, so a process
// crash loses no acknowledged write whatever the policy (as redis writes its AOF buffer before replying). fsync
// (`appendfsync`): `always` fsyncs there too; `everysec` fsyncs once a second from `PersistenceService`, off the lock,
// so an operating-system crash loses at most about a second; `no` leaves it to the kernel.
//
// Rewrite (BGREWRITEAOF, automatic growth past `auto-aof-rewrite-percentage`/`-min-size`, or enabling the AOF at
// run time): a new incremental file is created and added to the manifest, then the keyspace is frozen for an instant
// (as a snapshot's start) and the log switches to the new file at exactly the snapshot's point; the snapshot is
// written as the new base in the background, and a final manifest names only the new base and the new incremental
// file. A crash at any step leaves a manifest whose files rebuild every acknowledged write. Loading accepts a
// truncated last command (a crash in the middle of a write, redis's `aof-load-truncated yes`): the file is cut back to
// its last complete command; damage anywhere else refuses the start with a message naming the file.

import CacheStore
import Logging
import NIOCore
import NIOEmbedded
import RESPServer
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The node's append-only file: its state, the write path and rewrites.
public final class AppendOnlyLog: Sendable {
    /// What INFO persistence reports.
    public struct Status: Sendable {
        public var enabled = false
        public var rewriteInProgress = false
        public var rewriteScheduled = false
        public var lastRewriteOK = true
        public var lastWriteOK = true
        public var lastRewriteSeconds = -1
        public var currentSize = 0
        public var baseSize = 0
        public var rewrites = 0
        public var lastError: String?
    }

    struct State {
        var status = Status()
        var descriptor: Int32 = -1
        var pending: [UInt8] = []
        var policy = "everysec"
        var lastFsyncMilliseconds: Int64 = 0
        var manifest = AppendOnlyManifest()
        var directory = ""
        var prefix = "appendonly.aof"
        var autoRewritePercentage = 100
        var autoRewriteMinimumSize = 64 << 20
        /// Once the node has loaded its data: configuration changes then take effect (enable → rewrite).
        var started = false
        /// A rewrite asked for while one ran, after a full sync replaced the keyspace.
        var scheduledRewriteReplacesHistory = false
    }

    let state = Mutex(State())

    public init() {}

    /// A copy of the status.
    public var status: Status { state.withLock { $0.status } }

    // MARK: write path

    /// Appends stream bytes (called with the replication lock held, in stream order).
    func append(_ bytes: UnsafeRawBufferPointer) {
        state.withLock { state in
            guard state.descriptor >= 0 else { return }
            state.pending.append(contentsOf: bytes)
            state.status.currentSize += bytes.count
            Self.writePending(&state, fsyncing: state.policy == "always", now: 0)
        }
    }

    /// Retries bytes a failed write left pending, and with `everysec` fsyncs once a second, on a duplicate of the
    /// descriptor outside the lock (writes go on meanwhile). `PersistenceService` calls it every tick.
    func flush(now: Int64) {
        let duplicate: Int32? = state.withLock { state in
            guard state.descriptor >= 0 else { return nil }
            if !state.pending.isEmpty { Self.writePending(&state, fsyncing: false, now: now) }
            guard state.policy == "everysec", now - state.lastFsyncMilliseconds >= 1000 else { return nil }
            state.lastFsyncMilliseconds = now
            let copy = dup(state.descriptor)
            return copy >= 0 ? copy : nil
        }
        guard let duplicate else { return }
        if fsync(duplicate) != 0 {
            let text = SnapshotFile.errorText()
            state.withLock {
                $0.status.lastWriteOK = false
                $0.status.lastError = "fsync of the AOF failed: \(text)"
            }
        }
        close(duplicate)
    }

    private static func writePending(_ state: inout State, fsyncing: Bool, now: Int64) {
        var offset = 0
        while offset < state.pending.count {
            let written = state.pending.withUnsafeBytes { raw in
                Glibc.write(state.descriptor, raw.baseAddress! + offset, raw.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                state.status.lastWriteOK = false
                state.status.lastError = "Error writing to the AOF: \(SnapshotFile.errorText())"
                // Keep what was not written: the next flush tries again.
                state.pending.removeFirst(offset)
                return
            }
            offset += written
        }
        state.pending.removeAll(keepingCapacity: true)
        state.status.lastWriteOK = true
        if fsyncing {
            if fsync(state.descriptor) != 0 {
                state.status.lastWriteOK = false
                state.status.lastError = "fsync of the AOF failed: \(SnapshotFile.errorText())"
            }
            state.lastFsyncMilliseconds = now
        }
    }

    // MARK: configuration

    /// Takes the configuration's AOF settings; once started, `appendonly` turning on starts a rewrite that creates the
    /// AOF, and turning off closes it.
    func apply(_ configuration: NodeConfiguration, node: NodeState) {
        let change: Bool? = state.withLock { state in
            if state.descriptor >= 0, state.policy != configuration.appendFsync {
                Self.writePending(&state, fsyncing: true, now: node.clock.nowMilliseconds())
            }
            state.policy = configuration.appendFsync
            state.autoRewritePercentage = configuration.autoAOFRewritePercentage
            state.autoRewriteMinimumSize = configuration.autoAOFRewriteMinimumSize
            if !state.started {
                state.directory = SnapshotFile.path(directory: configuration.directory, filename: configuration.appendDirectoryName)
                state.prefix = configuration.appendFilename
                return nil
            }
            if configuration.appendOnly == state.status.enabled { return nil }
            return configuration.appendOnly
        }
        switch change {
        case true?:
            _ = try? startRewrite(node: node)
        case false?:
            state.withLock { state in
                if state.descriptor >= 0 {
                    Self.writePending(&state, fsyncing: true, now: node.clock.nowMilliseconds())
                    close(state.descriptor)
                }
                state.descriptor = -1
                state.status.enabled = false
            }
            node.replication.setAppendOnlyLog(nil)
        case nil:
            break
        }
    }

    // MARK: start-up

    /// What loading the AOF did.
    public struct LoadOutcome: Sendable {
        /// Keys in the base.
        public var baseKeys = 0
        /// Commands replayed from the incremental files.
        public var commands = 0
        /// Bytes cut from a truncated last command.
        public var truncatedBytes = 0
    }

    /// At start-up with `appendonly yes`: rebuilds the keyspace from the manifest's base and incremental files, then
    /// opens the last incremental file for appending. Without a manifest (first start with the AOF, or after
    /// enabling it in the configuration file) it returns `nil`: the caller loads the snapshot, then `start` creates
    /// the AOF from that data.
    func loadAtStartup(node: NodeState, logger: Logger) throws(PersistenceError) -> LoadOutcome? {
        let (directory, prefix) = state.withLock { ($0.directory, $0.prefix) }
        guard let manifest = try AppendOnlyManifest.read(directory: directory, prefix: prefix) else { return nil }
        var outcome = LoadOutcome()
        if let base = manifest.base {
            let path = SnapshotFile.path(directory: directory, filename: base)
            guard let loaded = try SnapshotFile.load(path: path, into: node.keyspace, now: node.clock.nowMilliseconds()) else {
                throw PersistenceError("The AOF manifest names the base \(path), which does not exist: restore it, or remove \(directory) to start from the snapshot file")
            }
            try SnapshotPersistence.loadFunctions(loaded.functionLibraries, into: node, from: path)
            outcome.baseKeys = loaded.records
        }
        let replayer = AppendOnlyReplayer(node: node)
        for (index, name) in manifest.incrementals.enumerated() {
            let path = SnapshotFile.path(directory: directory, filename: name)
            let result = try replayer.replay(path: path, isLast: index == manifest.incrementals.count - 1)
            outcome.commands += result.commands
            if result.truncatedAt != nil {
                outcome.truncatedBytes += result.truncatedBytes
                logger.warning("!!! Warning: short read while loading the AOF \(path): cut back to its last complete command (\(result.truncatedBytes) bytes dropped), as aof-load-truncated does")
            }
        }
        state.withLock { $0.manifest = manifest }
        return outcome
    }

    /// After the data was loaded: opens the AOF for appending (creating it by a rewrite when the node has none yet).
    func start(node: NodeState, enabled: Bool) throws(PersistenceError) {
        let opened: Bool = try state.withLock { (state: inout State) throws(PersistenceError) -> Bool in
            state.started = true
            guard enabled, let last = state.manifest.incrementals.last else { return false }
            try Self.openForAppend(&state, name: last)
            state.status.enabled = true
            state.status.baseSize = state.manifest.base.map { Self.fileSize(SnapshotFile.path(directory: state.directory, filename: $0)) } ?? 0
            state.status.currentSize = state.status.baseSize
                + state.manifest.incrementals.reduce(0) { $0 + Self.fileSize(SnapshotFile.path(directory: state.directory, filename: $1)) }
            return true
        }
        if opened {
            node.replication.setAppendOnlyLog(self, keyspace: node.keyspace)
        } else if enabled {
            _ = try? startRewrite(node: node)
        }
    }

    private static func openForAppend(_ state: inout State, name: String) throws(PersistenceError) {
        let path = SnapshotFile.path(directory: state.directory, filename: name)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw PersistenceError("Can't open the append-only file \(path): \(SnapshotFile.errorText())")
        }
        if state.descriptor >= 0 { close(state.descriptor) }
        state.descriptor = descriptor
    }

    static func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    // MARK: rewrite

    /// Why a rewrite did not start.
    public enum RewriteRefusal: Error, Sendable {
        case alreadyInProgress
    }

    /// Whether the log grew past the automatic rewrite threshold.
    func rewriteDue() -> Bool {
        state.withLock { state in
            guard state.status.enabled, !state.status.rewriteInProgress, state.autoRewritePercentage > 0 else { return false }
            let base = max(1, state.status.baseSize)
            let growth = (state.status.currentSize - base) * 100 / base
            return state.status.currentSize >= state.autoRewriteMinimumSize && growth >= state.autoRewritePercentage
        }
    }

    /// Starts a rewrite: switches appends to a new incremental file at a snapshot's instant and writes that snapshot
    /// as the new base in the background. `onFinish` runs when the new manifest is in place (or the rewrite failed).
    ///
    /// `replacingHistory`: the keyspace was replaced wholesale (a replica's full sync), so the files on disk no
    /// longer lead to it; the new incremental file is then kept out of the manifest until the new base is written
    /// (as redis 7 uses a temporary INCR file while in AOF_WAIT_REWRITE): a crash before leaves the old, consistent
    /// history. A rewrite already running makes it run again when it ends.
    @discardableResult
    func startRewrite(
        node: NodeState, replacingHistory: Bool = false,
        onFinish: @escaping @Sendable (Result<Int, PersistenceError>) -> Void = { _ in }
    ) throws -> Int {
        let startedAt = node.clock.nowMilliseconds()
        // 1. A new incremental file, named in the manifest before anything is written to it (when an AOF exists).
        let (sequence, incremental, directory, prefix, first) = try state.withLock {
            (state: inout State) throws -> (Int, String, String, String, Bool) in
            guard !state.status.rewriteInProgress else {
                if replacingHistory {
                    state.status.rewriteScheduled = true
                    state.scheduledRewriteReplacesHistory = true
                }
                throw RewriteRefusal.alreadyInProgress
            }
            if !makeDirectory(state.directory) {
                throw PersistenceError("Can't create the AOF directory \(state.directory): \(SnapshotFile.errorText())")
            }
            let sequence = state.manifest.sequence + 1
            let incremental = AppendOnlyManifest.incrementalName(prefix: state.prefix, sequence: sequence)
            let path = SnapshotFile.path(directory: state.directory, filename: incremental)
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw PersistenceError("Can't create \(path): \(SnapshotFile.errorText())") }
            close(descriptor)
            let first = !state.status.enabled || replacingHistory
            if !first {
                var interim = state.manifest
                interim.incrementals.append(incremental)
                interim.sequence = sequence
                try interim.write(directory: state.directory, prefix: state.prefix)
                state.manifest = interim
            }
            state.status.rewriteInProgress = true
            return (sequence, incremental, state.directory, state.prefix, first)
        }
        // 2. The switch, at the snapshot's instant (every stripe frozen, then the stream's lock).
        let snapshot = node.replication.withStreamApplyPaused {
            node.keyspace.beginSnapshot(createdAt: startedAt, headerWhileFrozen: {
                node.replication.switchAppendOnlyLog(self, keyspace: node.keyspace) {
                    self.switchLocked(to: incremental, now: node.clock.nowMilliseconds())
                }
                return ([:], node.functions.librarySources())
            })
        }
        // 3. The new base, then the final manifest.
        let base = AppendOnlyManifest.baseName(prefix: prefix, sequence: sequence)
        Task.detached {
            let result: Result<Int, PersistenceError>
            do throws(PersistenceError) {
                let written = try SnapshotFile.write(snapshot, directory: directory, filename: base)
                try self.finishRewrite(base: base, incremental: incremental, sequence: sequence, bytes: written.bytes)
                result = .success(written.bytes)
            } catch {
                result = .failure(error)
            }
            self.state.withLock { state in
                state.status.rewriteInProgress = false
                state.status.lastRewriteSeconds = Int((node.clock.nowMilliseconds() - startedAt) / 1000)
                switch result {
                case .success:
                    state.status.lastRewriteOK = true
                    state.status.rewrites += 1
                case .failure(let error):
                    state.status.lastRewriteOK = false
                    state.status.lastError = error.message
                    // A first AOF that failed stays off (nothing names its files); the switch is undone below.
                    if first {
                        if state.descriptor >= 0 { close(state.descriptor) }
                        state.descriptor = -1
                        state.status.enabled = false
                    }
                }
            }
            if first, !replacingHistory, case .failure = result { node.replication.setAppendOnlyLog(nil) }
            onFinish(result)
            let again = self.state.withLock { state -> Bool in
                defer { state.scheduledRewriteReplacesHistory = false }
                guard state.status.rewriteScheduled else { return false }
                state.status.rewriteScheduled = false
                return state.scheduledRewriteReplacesHistory
            }
            if again { _ = try? self.startRewrite(node: node, replacingHistory: true) }
        }
        return sequence
    }

    /// Called inside the switch: moves appends to `incremental` (what was pending goes to the old file first).
    private func switchLocked(to incremental: String, now: Int64) {
        state.withLock { state in
            if state.descriptor >= 0 { Self.writePending(&state, fsyncing: true, now: now) }
            do throws(PersistenceError) {
                try Self.openForAppend(&state, name: incremental)
                state.status.enabled = true
            } catch {
                state.status.lastError = error.message
                state.status.lastWriteOK = false
            }
        }
    }

    private func finishRewrite(base: String, incremental: String, sequence: Int, bytes: Int) throws(PersistenceError) {
        let (obsolete, directory): ([String], String) = try state.withLock { (state: inout State) throws(PersistenceError) in
            let old = state.manifest
            var final = AppendOnlyManifest()
            final.base = base
            final.incrementals = [incremental]
            final.sequence = sequence
            try final.write(directory: state.directory, prefix: state.prefix)
            state.manifest = final
            state.status.baseSize = bytes
            state.status.currentSize = bytes + Self.fileSize(SnapshotFile.path(directory: state.directory, filename: incremental))
            return ((old.base.map { [$0] } ?? []) + old.incrementals.filter { $0 != incremental }, state.directory)
        }
        for name in obsolete { unlink(SnapshotFile.path(directory: directory, filename: name)) }
    }

    /// Writes and fsyncs what is pending (SHUTDOWN, SIGTERM).
    func flushForShutdown(now: Int64) {
        state.withLock { state in
            guard state.descriptor >= 0 else { return }
            Self.writePending(&state, fsyncing: true, now: now)
        }
    }
}

/// `mkdir -p` for one level (the AOF directory under `dir`).
private func makeDirectory(_ path: String) -> Bool {
    if mkdir(path, 0o755) == 0 || errno == EEXIST { return true }
    return false
}

/// The AOF manifest: the base and the incremental files, in replay order.
struct AppendOnlyManifest: Equatable {
    var base: String?
    var incrementals: [String] = []
    var sequence = 0

    static func baseName(prefix: String, sequence: Int) -> String { "\(prefix).\(sequence).base.snap" }
    static func incrementalName(prefix: String, sequence: Int) -> String { "\(prefix).\(sequence).incr.aof" }
    static func manifestName(prefix: String) -> String { "\(prefix).manifest" }

    /// One line per file, redis's shape: `file <name> seq <n> type b|i`.
    func serialized() -> String {
        var lines: [String] = []
        if let base { lines.append("file \(base) seq \(sequence) type b") }
        for name in incrementals { lines.append("file \(name) seq \(sequence) type i") }
        return lines.joined(separator: "\n") + "\n"
    }

    static func parse(_ text: String, path: String) throws(PersistenceError) -> AppendOnlyManifest {
        var manifest = AppendOnlyManifest()
        for (number, line) in text.split(separator: "\n").enumerated() {
            let words = line.split(separator: " ").map(String.init)
            guard words.count == 6, words[0] == "file", words[2] == "seq", let sequence = Int(words[3]), words[4] == "type",
                !words[1].contains("/")
            else {
                throw PersistenceError("The AOF manifest \(path) is damaged at line \(number + 1): '\(line.prefix(80))'. Fix or remove it (the base and incremental files it names are next to it).")
            }
            manifest.sequence = max(manifest.sequence, sequence)
            switch words[5] {
            case "b": manifest.base = words[1]
            case "i": manifest.incrementals.append(words[1])
            default: throw PersistenceError("The AOF manifest \(path) has an unknown file type '\(words[5])' at line \(number + 1)")
            }
        }
        return manifest
    }

    /// The manifest in `directory`, or nil if there is none.
    static func read(directory: String, prefix: String) throws(PersistenceError) -> AppendOnlyManifest? {
        let path = SnapshotFile.path(directory: directory, filename: manifestName(prefix: prefix))
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            if errno == ENOENT { return nil }
            throw PersistenceError("Can't open the AOF manifest \(path): \(SnapshotFile.errorText())")
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return try parse(String(decoding: bytes, as: UTF8.self), path: path)
    }

    /// Writes the manifest atomically (temp file, fsync, rename, fsync of the directory).
    func write(directory: String, prefix: String) throws(PersistenceError) {
        let target = SnapshotFile.path(directory: directory, filename: Self.manifestName(prefix: prefix))
        let temporary = target + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw PersistenceError("Can't write the AOF manifest \(temporary): \(SnapshotFile.errorText())") }
        let bytes = Array(serialized().utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress!, $0.count) }
        guard written == bytes.count, fsync(descriptor) == 0 else {
            close(descriptor)
            unlink(temporary)
            throw PersistenceError("Can't write the AOF manifest \(temporary): \(SnapshotFile.errorText())")
        }
        close(descriptor)
        guard rename(temporary, target) == 0 else {
            unlink(temporary)
            throw PersistenceError("Can't replace the AOF manifest \(target): \(SnapshotFile.errorText())")
        }
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}

/// Replays incremental AOF files through the dispatcher, as the link from a primary applies its stream.
struct AppendOnlyReplayer {
    let node: NodeState

    struct Result {
        var commands = 0
        var truncatedAt: Int?
        var truncatedBytes = 0
    }

    func replay(path: String, isLast: Bool) throws(PersistenceError) -> Result {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw PersistenceError("The AOF manifest names \(path), which cannot be opened: \(SnapshotFile.errorText())")
        }
        var input = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            input.writeBytes(chunk[0..<count])
        }
        close(descriptor)
        let total = input.readableBytes
        let channel = EmbeddedChannel()
        let session = ClientSession(
            connection: ClientConnection(id: -2, channel: channel), createdAt: node.clock.nowMilliseconds(),
            isAuthenticated: true, stats: node.stats.block(for: ObjectIdentifier(channel.eventLoop)))
        session.replicationRole = .primary
        var decoder = RESPCommandDecoder(limits: .trustedStream)
        var arguments = CommandArguments()
        var reply = ReplyWriter(buffer: ByteBufferAllocator().buffer(capacity: 256))
        let dispatcher = NodeDispatcher(node: node)
        var result = Result()
        /// Where the last command outside a transaction ended: a truncated file is cut back to here.
        var safeEnd = 0
        while true {
            let before = input.readerIndex
            let complete: Bool
            do {
                complete = try decoder.next(from: &input, into: &arguments)
            } catch {
                throw PersistenceError("The AOF file \(path) is damaged at byte \(before) (\(error)). Fix it or restore a backup; a file cut in its last command is repaired automatically.")
            }
            guard complete else { break }
            reply.buffer.clear()
            _ = dispatcher.dispatch(&arguments, session: session, reply: &reply)
            result.commands += 1
            if session.transaction == nil { safeEnd = input.readerIndex }
        }
        _ = try? channel.finish()
        if safeEnd < total {
            // A command or transaction cut by a crash: only the last file may end so.
            guard isLast else {
                throw PersistenceError("The AOF file \(path) ends in the middle of a command, but it is not the last file of the manifest: it is damaged. Restore a backup.")
            }
            if session.transaction != nil {
                // The half transaction was queued, never executed: discard it.
                session.transaction = nil
            }
            guard truncate(path, off_t(safeEnd)) == 0 else {
                throw PersistenceError("Can't cut the truncated AOF file \(path) back to \(safeEnd) bytes: \(SnapshotFile.errorText())")
            }
            result.truncatedAt = safeEnd
            result.truncatedBytes = total - safeEnd
        }
        return result
    }
}
