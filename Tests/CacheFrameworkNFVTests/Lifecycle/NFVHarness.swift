// A deterministic driver for NFV state machine tests: `NFVStateMachine` against a `SimulatedCluster` (the scheduler
// core's simulated Mesos), with a snapshot standing in for the durable store and a manual clock.

import CacheFramework
import CacheFrameworkNFV

struct NFVHarness {
    var machine: NFVStateMachine
    var simulation: SimulatedCluster
    var durable = NFVSnapshot()
    var log: [NFVAction] = []
    var leftovers: [Offer] = []
    let configuration: NFVStateMachine.Configuration

    init(agents: Int, zones: Int = 0, configuration: NFVStateMachine.Configuration = NFVStateMachine.Configuration()) {
        let list = (0..<agents).map { index in
            SimulatedAgent(
                id: AgentID("agent-\(index)"), hostname: "host-\(index)",
                attributes: zones > 0 ? [.text("zone", "z\(index % zones)")] : [],
                total: ResourceQuantities(cpus: 2, memMB: 1024, diskMB: 1000, ports: RangeSet([ValueRange(begin: 31_000, end: 31_009)])))
        }
        self.configuration = configuration
        machine = NFVStateMachine(configuration: configuration)
        simulation = SimulatedCluster(agents: list, now: SchedulerTime(seconds: 1000))
    }

    var now: SchedulerTime { simulation.now }

    mutating func run(_ actions: [NFVAction]) {
        var queue = actions
        while !queue.isEmpty {
            let action = queue.removeFirst()
            log.append(action)
            var events: [BackendEvent] = []
            switch action {
            case .persist(let batch): durable.apply(batch)
            case .accept(let offers, let operations, let filters):
                events = simulation.apply(.accept(offerIDs: offers, operations: operations, filters: filters))
            case .kill(let taskID, let agentID): events = simulation.apply(.kill(taskID: taskID, agentID: agentID))
            case .acknowledge(let agentID, let taskID, let uuid):
                events = simulation.apply(.acknowledge(agentID: agentID, taskID: taskID, uuid: uuid))
            case .reconcile(let tasks): events = simulation.apply(.reconcile(tasks))
            case .revive: events = simulation.apply(.revive)
            case .runHook, .rebind: break
            }
            for case .update(let status) in events { queue += machine.handle(.update(status, now: now)) }
        }
    }

    mutating func tick(_ seconds: Double = 1) {
        simulation.advance(by: seconds)
        run(machine.handle(.tick(now: now)))
    }

    /// One offer round; offers NFV leaves are declined (as the cache scheduler would with nothing to do).
    mutating func offerRound() {
        let offers = simulation.makeOffers()
        let (actions, leftover) = machine.handleOffers(offers, now: now)
        leftovers = leftover
        run(actions)
        if !leftover.isEmpty { _ = simulation.apply(.decline(offerIDs: leftover.map(\.id), filters: Filters(refuseSeconds: 0))) }
    }

    /// Every staging task of the simulation reports RUNNING.
    mutating func runLaunched() {
        for task in simulation.tasks.values.sorted(by: { $0.info.taskID < $1.info.taskID }) where task.state == .staging {
            if let event = simulation.setState(task.info.taskID, .running), case .update(let status) = event {
                run(machine.handle(.update(status, now: now)))
            }
        }
    }

    /// tick → offers → running → tick, until the occurrence is final or `rounds` pass.
    mutating func converge(_ operationID: String, rounds: Int = 5) -> LcmOperationState {
        for _ in 0..<rounds {
            tick()
            offerRound()
            runLaunched()
            tick()
            if let state = machine.operations[operationID]?.state, state.isFinal || state == .failedTemp { return state }
        }
        return machine.operations[operationID]!.state
    }

    func runningTasks(of instanceID: String) -> [SimulatedTask] {
        simulation.tasks.values.filter { $0.info.labels[VNFTaskTemplate.Label.instance] == instanceID && $0.state == .running }
            .sorted { $0.info.taskID < $1.info.taskID }
    }
}
