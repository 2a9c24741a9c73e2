// The one narrow interface between the protocol layer and whatever executes commands (the "facade" rule:
// this module knows RESP and connections, never keys or values).

/// What the connection does after a command has been dispatched.
public enum DispatchOutcome: Sendable, Hashable {
    /// Go on with the next buffered command.
    case proceed
    /// Send what was written, then close the connection (QUIT, a fatal protocol state).
    case closeAfterReply
    /// The command waits for something (a blocking pop): keep later commands buffered until
    /// ``ClientConnection/resume(with:)`` is called.
    case suspend
}

/// Executes commands for connections.
///
/// ## Implementing CommandDispatcher
/// - ``openSession(for:)`` is called once per connection on its event loop; the session value is owned by that
///   connection and only ever passed back to this dispatcher, on the same event loop.
/// - ``dispatch(_:session:reply:)`` runs on the connection's event loop. It must write exactly one reply per command
///   into `reply` (or none, returning `.suspend`, and later resume the connection with the reply bytes), and must
///   not block the thread.
/// - ``closeSession(_:)`` is called once when the connection closes, for any reason, including after `.suspend`.
public protocol CommandDispatcher: Sendable {
    /// Per-connection state (selected database, transaction queue, subscriptions…): an object, so the connection
    /// handler holds and passes it without knowing its layout.
    associatedtype Session: AnyObject

    /// Why a newly accepted connection must be turned away (redis's `maxclients`), or `nil` to admit it. A refused
    /// connection gets the reason as an `-ERR` reply and is closed; no session is opened for it.
    func refusal(for connection: ClientConnection) -> String?

    /// Creates the state of a newly accepted connection.
    func openSession(for connection: ClientConnection) -> Session

    /// Executes one command, writing its reply.
    ///
    /// The arguments are passed `inout` only so that a command is run where it lies (in the connection's batch)
    /// instead of being copied: a copy costs a reference-count increment and decrement per buffer it holds. The
    /// dispatcher may move them while the command runs but must leave them as it found them.
    func dispatch(_ arguments: inout CommandArguments, session: Session, reply: inout ReplyWriter) -> DispatchOutcome

    /// Whether the session has authenticated (until then the decoder applies redis's pre-auth limits).
    func isAuthenticated(_ session: Session) -> Bool

    /// Releases what a closing connection held (subscriptions, blocked waits, watched keys).
    func closeSession(_ session: inout Session)

    /// Counts bytes read from and written to the connection (called once per read and per flush, not per command).
    func recordTraffic(_ session: Session, inputBytes: Int, outputBytes: Int)

    /// Called with the commands decoded from a connection's input (a pipelined batch: `commands[0..<count]`, two or
    /// more) before the first of them is dispatched, so that the dispatcher can start loading what they will read
    /// into the CPU cache, and leave itself a ``CommandArguments/note`` on each for when it runs. It must not change
    /// any state a client could observe nor write replies: each command is still dispatched, in order, afterwards,
    /// and may find the data changed in between.
    func prefetch(_ commands: inout [CommandArguments], count: Int, session: Session)

    /// Called when the connection's unprocessed input (a command still arriving, or commands waiting behind a blocked
    /// one) has changed size since the last call, as seen after each read, each resume of a blocked command and each
    /// end of backpressure: redis's `qbuf`. Not called while it stays empty.
    func recordQueryBuffer(_ session: Session, bufferedBytes: Int)

    /// Called once when the connection is about to be closed because its unprocessed input passed
    /// ``RESPCommandDecoder/Limits/maximumQueryBufferLength`` (redis `client-query-buffer-limit`); for statistics and
    /// logs. ``closeSession(_:)`` follows as for any close.
    func closingForQueryBufferLimit(_ session: Session, bufferedBytes: Int)

    /// Called with the connection's output the socket has not taken yet (replies and pushes the client has not read):
    /// after more was handed to the channel while it is over its write high-water mark, and once it is back under
    /// its low-water mark. Returns whether the client passed its output limit (redis `client-output-buffer-limit`):
    /// the connection is then closed and that output dropped. ``closeSession(_:)`` follows as for any close.
    func outputBufferChanged(_ session: Session, bufferedBytes: Int) -> Bool

    /// Called when the connection has run what it could of its input for now (its batch of commands ended, or a
    /// command suspended it): e.g. to end the timing of the batch's last command with one clock reading per batch.
    func inputProcessed(_ session: Session)
}

extension CommandDispatcher {
    /// Admits every connection.
    public func refusal(for connection: ClientConnection) -> String? { nil }

    /// Counts nothing.
    public func recordTraffic(_ session: Session, inputBytes: Int, outputBytes: Int) {}

    /// Prefetches nothing.
    public func prefetch(_ commands: inout [CommandArguments], count: Int, session: Session) {}

    /// Records nothing.
    public func recordQueryBuffer(_ session: Session, bufferedBytes: Int) {}

    /// Records nothing.
    public func closingForQueryBufferLimit(_ session: Session, bufferedBytes: Int) {}

    /// Limits nothing.
    public func outputBufferChanged(_ session: Session, bufferedBytes: Int) -> Bool { false }

    /// Does nothing.
    public func inputProcessed(_ session: Session) {}
}
