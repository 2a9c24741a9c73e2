// How the driver reaches members with control commands: members of a cache-node cluster with secure replication
// (and a framework with an authority) through their replication port as the framework, every other member over plain
// RESP on its client port. Simulated backend, no processes.

import CacheFramework
import Testing

struct ControlEndpointTests {
    func provisioned(_ spec: ClusterSpec, credentials: Bool = true) throws -> SchedulerHarness {
        var harness = SchedulerHarness(
            agents: 4, configuration: credentials ? ClusterHealTests.secureConfiguration() : SchedulerStateMachine.Configuration())
        harness.subscribe()
        try harness.create(spec)
        harness.offerRound()
        harness.startAll()
        return harness
    }

    @Test func secureClusterMembersAreControlledThroughTheirReplicationPort() throws {
        let harness = try provisioned(ClusterSpec(name: "c", shardCount: 2, replicasPerShard: 1, memoryMBPerNode: 64))
        #expect(harness.machine.tasks.count == 4)
        for record in harness.machine.tasks.values {
            let endpoint = harness.machine.controlEndpoint(record.endpoint)
            #expect(endpoint.securePort == record.ports[1])
            #expect(endpoint.port == record.ports[0] && endpoint.hostname == record.hostname && endpoint.taskID == record.taskID)
        }
        let unknown = TaskEndpoint(taskID: TaskID("gone"), hostname: "127.0.0.1", port: 7000)
        #expect(harness.machine.controlEndpoint(unknown) == unknown)
    }

    @Test func otherMembersStayOnTheirClientPort() throws {
        let specs = [
            (ClusterSpec(name: "plain", shardCount: 1, replicasPerShard: 1, memoryMBPerNode: 64, secureReplication: false), true),
            (ClusterSpec(name: "redis", shardCount: 1, replicasPerShard: 1, memoryMBPerNode: 64, engine: .redisServer, secureReplication: false), true),
            (ClusterSpec(name: "noauthority", shardCount: 1, replicasPerShard: 1, memoryMBPerNode: 64), false),
        ]
        for (spec, credentials) in specs {
            let harness = try provisioned(spec, credentials: credentials)
            #expect(!harness.machine.tasks.isEmpty)
            for record in harness.machine.tasks.values {
                #expect(harness.machine.controlEndpoint(record.endpoint) == record.endpoint, "\(spec.name)")
            }
        }
    }
}
