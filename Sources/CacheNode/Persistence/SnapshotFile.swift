// Snapshot files on disk. Writing is crash-safe: the bytes go to `temp-<pid>-<n>.snap` in the same directory,
// which is fsynced, closed and renamed over the target, and then the directory itself is fsynced so the rename
// survives a power loss. A crash at any point leaves the previous file or the new one, never a torn one.
// Loading reads the file in blocks through SnapshotStreamDecoder and fails on the first damaged byte; the caller
// refuses to start with a keyspace that was loaded only in part.
public import CacheStore
import Synchronization
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// A failed save or load, naming the file and what to do.
public struct PersistenceError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Reads and writes snapshot files.
public enum SnapshotFile {
    /// What a completed write or load did.
    public struct Outcome: Sendable {
        /// Keys written, or keys loaded.
        public var records: Int
        /// File size.
        public var bytes: Int
        /// Keys in the file that had already expired and were not loaded.
        public var skipped = 0
        /// The file's auxiliary fields (loads only), such as the replication id and offset its data matches.
        public var auxiliary: [String: String] = [:]
        /// The source code of the file's function libraries (loads only), in the order they were written.
        public var functionLibraries: [[UInt8]] = []
    }

    private static let temporaryCounter = Atomic<Int>(0)

    /// `directory/filename`.
    public static func path(directory: String, filename: String) -> String {
        if filename.hasPrefix("/") { return filename }
        return directory.hasSuffix("/") ? directory + filename : directory + "/" + filename
    }

    /// Writes every chunk of `snapshot` to `directory/filename` atomically (temp file, fsync, rename, fsync dir).
    public static func write(_ snapshot: KeyspaceSnapshot, directory: String, filename: String) throws(PersistenceError) -> Outcome {
        let target = path(directory: directory, filename: filename)
        let temporary = path(directory: directory, filename: "temp-\(getpid())-\(temporaryCounter.add(1, ordering: .relaxed).newValue).snap")
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw PersistenceError("Failed opening the temp snapshot file \(temporary) for saving: \(errorText())")
        }
        var bytes = 0
        do throws(PersistenceError) {
            while let chunk = snapshot.nextChunk() {
                try writeAll(descriptor, chunk, path: temporary)
                bytes += chunk.count
            }
            guard fsync(descriptor) == 0 else { throw PersistenceError("fsync of \(temporary) failed: \(errorText())") }
            guard close(descriptor) == 0 else { throw PersistenceError("close of \(temporary) failed: \(errorText())") }
        } catch {
            _ = close(descriptor)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, target) == 0 else {
            let text = errorText()
            unlink(temporary)
            throw PersistenceError("Error moving temp snapshot file \(temporary) on the final destination \(target): \(text)")
        }
        let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            _ = close(directoryDescriptor)
        }
        return Outcome(records: snapshot.recordsWritten, bytes: bytes)
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], path: String) throws(PersistenceError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw PersistenceError("Write error saving the snapshot to \(path): \(errorText())")
            }
            offset += written
        }
    }

    /// Loads `path` into `keyspace`.
    /// - Returns: `nil` when the file does not exist (a first start), else what was loaded.
    /// - Throws: when the file cannot be read or is damaged; `keyspace` may then hold part of it and must not serve.
    public static func load(path: String, into keyspace: Keyspace, now: Int64) throws(PersistenceError) -> Outcome? {
        var loaded = 0
        var read = 0
        let decoded = try decode(path: path, databases: keyspace.databaseCount) { (records) throws(SnapshotError) in
            loaded += try keyspace.apply(records, now: now)
            read += records.count
        }
        return decoded.map {
            Outcome(
                records: loaded, bytes: $0.bytes, skipped: read - loaded, auxiliary: $0.auxiliary,
                functionLibraries: $0.functionLibraries)
        }
    }

    /// Reads and verifies a whole snapshot file without touching any keyspace (DEBUG RELOAD checks before flushing):
    /// its records and its FUNCTION libraries.
    static func readContents(path: String, databases: Int) throws(PersistenceError) -> (records: [SnapshotRecord], functionLibraries: [[UInt8]]) {
        var all: [SnapshotRecord] = []
        guard let decoded = try decode(path: path, databases: databases, { all += $0 }) else {
            throw PersistenceError("The snapshot file \(path) does not exist")
        }
        return (all, decoded.functionLibraries)
    }

    /// Feeds the file at `path` through a decoder in 1 MiB blocks, handing over records as they complete.
    /// Returns the bytes read, the auxiliary fields and the function libraries, or `nil` if the file does not exist.
    private static func decode(
        path: String, databases: Int, _ body: ([SnapshotRecord]) throws(SnapshotError) -> Void
    ) throws(PersistenceError) -> (bytes: Int, auxiliary: [String: String], functionLibraries: [[UInt8]])? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            if errno == ENOENT { return nil }
            throw PersistenceError("Cannot open the snapshot file \(path): \(errorText())")
        }
        defer { _ = close(descriptor) }
        var decoder = SnapshotStreamDecoder(limits: .init(maximumDatabase: max(0, databases - 1)))
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var bytes = 0
        func damaged(_ error: SnapshotError) -> PersistenceError {
            PersistenceError(
                "The snapshot file \(path) is damaged (\(error.message); \(decoder.recordCount) records were read before it). "
                    + "The node refuses to start with part of the data: move the file away to start empty, or replace it "
                    + "with a good copy (a backup, or a snapshot taken from a replica), then start again.")
        }
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw PersistenceError("Read error loading the snapshot file \(path): \(errorText())")
            }
            if count == 0 { break }
            bytes += count
            do throws(SnapshotError) {
                try body(try decoder.feed(buffer[0..<count]))
            } catch {
                throw damaged(error)
            }
        }
        do throws(SnapshotError) {
            try decoder.finish()
        } catch {
            throw damaged(error)
        }
        return (bytes, decoder.auxiliary, decoder.functionLibraries)
    }

    static func errorText() -> String { String(cString: strerror(errno)) }
}
