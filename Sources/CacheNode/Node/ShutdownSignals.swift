// SIGTERM/SIGINT handling for the node: the signals are blocked in every thread (call `block()` first thing in
// main, before any thread exists, so all threads inherit the mask) and one dedicated thread waits for them with
// sigwait and asks the node to shut down gracefully. This does not depend on an executor or dispatch queue being
// drained, so a node under full load still stops promptly.
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Foundation

/// Graceful-shutdown signals.
public enum ShutdownSignals {
    private static func signalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        return set
    }

    /// Blocks SIGTERM and SIGINT in the calling thread (and every thread it creates later).
    public static func block() {
        // An inherited "ignore" disposition would discard the signal before sigwait could take it.
        signal(SIGTERM, SIG_DFL)
        signal(SIGINT, SIG_DFL)
        var set = signalSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Starts a thread that waits for SIGTERM or SIGINT and calls `handler` with the signal number; a second
    /// signal exits the process at once.
    public static func waitInBackground(_ handler: @escaping @Sendable (Int32) -> Void) {
        let thread = Thread {
            var set = signalSet()
            var signal: Int32 = 0
            sigwait(&set, &signal)
            handler(signal)
            sigwait(&set, &signal)
            exit(1)
        }
        thread.name = "cache-node-signals"
        thread.start()
    }
}
