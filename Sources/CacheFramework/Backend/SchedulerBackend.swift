// The boundary between the scheduler and a resource manager: the Mesos v1 scheduler calls (ACCEPT, DECLINE,
// ACKNOWLEDGE, KILL, RECONCILE, REVIVE, SUPPRESS) and the events that come back (SUBSCRIBED, OFFERS, RESCIND,
// UPDATE). The Mesos HTTP backend, the local process backend and `SimulatedBackend` implement it.

/// An event from the resource manager.
public enum BackendEvent: Hashable, Sendable {
    /// SUBSCRIBED: the framework is registered under this id.
    case subscribed(FrameworkID)
    /// OFFERS.
    case offers([Offer])
    /// RESCIND: an offer is no longer valid.
    case rescind(OfferID)
    /// UPDATE: a task status (acknowledge it if it carries a uuid).
    case update(TaskStatus)
    /// The connection was lost; the backend resubscribes and sends `.subscribed` again.
    case disconnected
}

/// A resource manager the scheduler talks to.
///
/// ## Implementing SchedulerBackend
/// - `events` yields `.subscribed` first after every (re)connection, then offers and updates.
/// - Calls are fire-and-forget as in Mesos: an accepted launch reports its outcome through status updates
///   (TASK_STAGING … or TASK_DROPPED/TASK_LOST if the offer was gone), never through the call's result.
/// - Status updates carrying a `uuid` are redelivered until acknowledged.
/// - Answers to `reconcile` carry reason `REASON_RECONCILIATION` and no `uuid`; an explicit reconcile of a task the
///   manager does not know answers TASK_UNKNOWN (or TASK_LOST), an empty list asks for every known task.
public protocol SchedulerBackend: Sendable {
    /// The event stream; one consumer.
    var events: AsyncStream<BackendEvent> { get }
    /// ACCEPT offers of one agent with operations.
    func accept(offerIDs: [OfferID], operations: [OfferOperation], filters: Filters) async throws
    /// DECLINE offers.
    func decline(offerIDs: [OfferID], filters: Filters) async throws
    /// ACKNOWLEDGE a status update.
    func acknowledge(agentID: AgentID, taskID: TaskID, uuid: String) async throws
    /// KILL a task.
    func kill(taskID: TaskID, agentID: AgentID?) async throws
    /// RECONCILE tasks (empty: all).
    func reconcile(_ tasks: [ReconcileTask]) async throws
    /// REVIVE offers.
    func revive() async throws
    /// SUPPRESS offers.
    func suppress() async throws
}
