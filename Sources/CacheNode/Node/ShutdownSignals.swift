// SIGTERM/SIGINT handling for the node, with the self-pipe trick: the signal handler (which may run on any
// thread) only writes the signal number to a pipe; a dedicated thread reads it and asks the node to shut down
// gracefully. This depends on no executor, dispatch queue or thread signal mask, so a node under full load still
// stops promptly; a second signal exits at once.
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Foundation

/// The write end of the shutdown pipe, read by the async-signal-safe handler.
nonisolated(unsafe) private var shutdownPipeWriteEnd: Int32 = -1

/// Graceful-shutdown signals.
public enum ShutdownSignals {
    /// Installs handlers for SIGTERM and SIGINT and starts the thread that calls `handler` with the signal number.
    public static func waitInBackground(_ handler: @escaping @Sendable (Int32) -> Void) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return }
        let readEnd = ends[0]
        shutdownPipeWriteEnd = ends[1]
        for number in [SIGTERM, SIGINT] {
            signal(number) { received in
                var byte = UInt8(truncatingIfNeeded: received)
                _ = write(shutdownPipeWriteEnd, &byte, 1)
            }
        }
        let thread = Thread {
            var byte: UInt8 = 0
            while read(readEnd, &byte, 1) != 1 {}
            handler(Int32(byte))
            while read(readEnd, &byte, 1) != 1 {}
            exit(1)
        }
        thread.name = "cache-node-signals"
        thread.start()
    }
}
