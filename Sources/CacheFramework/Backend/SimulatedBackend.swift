// `SimulatedCluster` behind the `SchedulerBackend` protocol, for tests of drivers that talk to a backend.

/// A `SchedulerBackend` over a `SimulatedCluster`: calls change the simulation and yield the events it produces.
public actor SimulatedBackend: SchedulerBackend {
    /// The simulation; tests inspect and drive it.
    public private(set) var cluster: SimulatedCluster
    public nonisolated let events: AsyncStream<BackendEvent>
    private let continuation: AsyncStream<BackendEvent>.Continuation
    private let frameworkID: FrameworkID

    /// Creates a backend over `cluster`; `subscribe()` starts the event flow.
    public init(cluster: SimulatedCluster, frameworkID: FrameworkID = FrameworkID("simulated-framework")) {
        self.cluster = cluster
        self.frameworkID = frameworkID
        (events, continuation) = AsyncStream.makeStream(of: BackendEvent.self)
    }

    /// Emits SUBSCRIBED.
    public func subscribe() { continuation.yield(.subscribed(frameworkID)) }

    /// Emits OFFERS for every agent that can be offered now (nothing if there is none).
    public func sendOffers() {
        let offers = cluster.makeOffers()
        if !offers.isEmpty { continuation.yield(.offers(offers)) }
    }

    /// Moves the simulated clock.
    public func advance(by seconds: Double) { cluster.advance(by: seconds) }

    /// Moves a task to `state` and emits the update.
    public func setState(_ taskID: TaskID, _ state: TaskState) {
        if let event = cluster.setState(taskID, state) { continuation.yield(event) }
    }

    /// Ends the event stream.
    public func finish() { continuation.finish() }

    public func accept(offerIDs: [OfferID], operations: [OfferOperation], filters: Filters) async throws {
        emit(cluster.apply(.accept(offerIDs: offerIDs, operations: operations, filters: filters)))
    }

    public func decline(offerIDs: [OfferID], filters: Filters) async throws {
        emit(cluster.apply(.decline(offerIDs: offerIDs, filters: filters)))
    }

    public func acknowledge(agentID: AgentID, taskID: TaskID, uuid: String) async throws {
        emit(cluster.apply(.acknowledge(agentID: agentID, taskID: taskID, uuid: uuid)))
    }

    public func kill(taskID: TaskID, agentID: AgentID?) async throws {
        emit(cluster.apply(.kill(taskID: taskID, agentID: agentID)))
    }

    public func reconcile(_ tasks: [ReconcileTask]) async throws { emit(cluster.apply(.reconcile(tasks))) }

    public func revive() async throws { emit(cluster.apply(.revive)) }

    public func suppress() async throws { emit(cluster.apply(.suppress)) }

    private func emit(_ events: [BackendEvent]) {
        for event in events { continuation.yield(event) }
    }
}
