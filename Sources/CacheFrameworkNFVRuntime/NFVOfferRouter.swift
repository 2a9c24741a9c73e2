// How VNF tasks reach the offer loop without changing the cache scheduler: `NFVOfferRouter` wraps the framework's
// backend and is what `FrameworkDriver` is given. It forwards the driver's calls to the real backend, and on the
// event side hands every round of offers to `NFVManager` first (which places pending VNFCs with the same
// `Placement` and accepts what it uses) and forwards only the offers left over; status updates of VNF tasks
// (`vnf.` task ids) go to the manager and never reach the cache scheduler, so its implicit reconciliation does not
// kill them. A SUPPRESS from the cache scheduler is held back while VNFCs wait for offers.

public import CacheFramework
import CacheFrameworkNFV
public import CacheFrameworkRuntime

/// A `DriverBackend` that shares a backend's offers between NFV and the cache scheduler.
public final class NFVOfferRouter: DriverBackend {
    /// The wrapped backend.
    public let base: any DriverBackend
    /// The NFV manager offers go to first.
    public let manager: NFVManager
    public let events: AsyncStream<BackendEvent>
    private let continuation: AsyncStream<BackendEvent>.Continuation

    /// Wraps `base`; give the router to `FrameworkDriver` and `base` to `NFVManager`.
    public init(base: any DriverBackend, manager: NFVManager) {
        self.base = base
        self.manager = manager
        (events, continuation) = AsyncStream.makeStream(of: BackendEvent.self)
    }

    /// Whether a task is a VNF task.
    public static func isVNFTask(_ taskID: TaskID) -> Bool { taskID.value.hasPrefix(VNFTaskTemplate.taskPrefix) }

    public func start() async throws { try await base.start() }

    public func clusterDeleted(_ name: String) async { await base.clusterDeleted(name) }

    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.base.run() }
            group.addTask {
                for await event in self.base.events {
                    switch event {
                    case .offers(let offers):
                        let leftover = await self.manager.offers(offers)
                        if !leftover.isEmpty { self.continuation.yield(.offers(leftover)) }
                    case .update(let status) where Self.isVNFTask(status.taskID):
                        self.manager.update(status)
                    case .subscribed:
                        self.continuation.yield(event)
                        self.manager.subscribed()
                    default:
                        self.continuation.yield(event)
                    }
                }
                self.continuation.finish()
            }
        }
    }

    public func shutdown(killTasks: Bool) async { await base.shutdown(killTasks: killTasks) }
    public func capacityOffers() async -> [Offer] { await base.capacityOffers() }
    public func agents() async -> [LocalAgentView] { await base.agents() }
    public func taskViews() async -> [LocalTaskView] { await base.taskViews() }
    public func outstandingOffers() async -> [Offer] { await base.outstandingOffers() }

    public func accept(offerIDs: [OfferID], operations: [OfferOperation], filters: Filters) async throws {
        try await base.accept(offerIDs: offerIDs, operations: operations, filters: filters)
    }

    public func decline(offerIDs: [OfferID], filters: Filters) async throws {
        // While VNFCs wait, do not let a long idle refusal hide these agents from NFV.
        let filters = manager.hasPendingLaunches ? Filters(refuseSeconds: min(filters.refuseSeconds, 1)) : filters
        try await base.decline(offerIDs: offerIDs, filters: filters)
    }

    public func acknowledge(agentID: AgentID, taskID: TaskID, uuid: String) async throws {
        try await base.acknowledge(agentID: agentID, taskID: taskID, uuid: uuid)
    }

    public func kill(taskID: TaskID, agentID: AgentID?) async throws { try await base.kill(taskID: taskID, agentID: agentID) }

    public func reconcile(_ tasks: [ReconcileTask]) async throws { try await base.reconcile(tasks) }

    public func revive() async throws { try await base.revive() }

    public func suppress() async throws {
        guard !manager.hasPendingLaunches else { return }
        try await base.suppress()
    }
}
