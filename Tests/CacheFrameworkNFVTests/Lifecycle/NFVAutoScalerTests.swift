// Auto-scaling decisions on a monitoring parameter (pure, times given): collection periods, the cooldown (also after
// the parameter is first watched), thresholds, the aspect's level bounds, and no decision while the instance is busy.

import CacheFramework
import CacheFrameworkNFV
import Testing

/// A load balancer VNF with a metrics port whose `connections_active` drives its scaling aspect.
let scaledLBYAML = """
    vnfd:
      id: scaled-lb
      version: "1.0"
      provider: tests
      vdus:
        - id: lb
          command: vnf-sample
          args: [lb, --bind, "${host}", --port, "${port:traffic}", --next, "${ext:egress}", --metrics-port, "${port:metrics}"]
          cpus: 0.1
          mem: 32
          ports: [traffic, metrics]
          min_instances: 1
          max_instances: 3
          health_check: {type: tcp, port: traffic}
      connection_points:
        - {id: lb-in, vdu: lb, port: traffic, virtual_link: ingress}
        - {id: lb-out, vdu: lb, virtual_link: egress, direction: outbound}
      external_virtual_links:
        - {id: ingress}
        - {id: egress}
      deployment_flavours:
        - id: default
          instantiation_levels:
            - {id: single, vdu_instances: {lb: 1}}
          scaling_aspects:
            - {id: lb-scale, max_scale_level: 2, deltas: [{lb: 1}]}
      monitoring_parameters:
        - {id: conns, metric: connections_active, collection_period: 1, scaling_aspect: lb-scale,
           scale_out_threshold: 2, scale_in_threshold: 1, cooldown: 5}
    """

struct NFVAutoScalerTests {
    func running() throws -> (NFVHarness, VNFInstance) {
        var harness = NFVHarness(agents: 2)
        let result = try harness.machine.instantiate(
            vnfd: try VNFDescriptorParser.parse(scaledLBYAML), name: "lb", extLinks: ["egress": ["127.0.0.1:9"]], now: harness.now)
        harness.run(result.actions)
        #expect(harness.converge(result.operationID) == .completed)
        return (harness, harness.machine.instances[result.instanceID]!)
    }

    @Test func collectsEachParameterOncePerPeriodFromTheMetricsPorts() throws {
        let (harness, instance) = try running()
        var scaler = NFVAutoScaler()
        let start = harness.now
        let due = scaler.due([instance], now: start)
        #expect(due.count == 1)
        #expect(due.first?.parameter.metric == "connections_active")
        let vnfc = instance.vnfcs["lb.0"]!
        #expect(due.first?.endpoints == ["lb.0": vnfc.endpoint("metrics")!])
        #expect(scaler.due([instance], now: start.adding(seconds: 0.5)).isEmpty)
        #expect(scaler.due([instance], now: start.adding(seconds: 1)).count == 1)
        // Nothing for an instance without auto-scaling parameters, or one not instantiated.
        var stopped = instance
        stopped.instantiationState = .notInstantiated
        #expect(scaler.due([stopped], now: start.adding(seconds: 10)).isEmpty)
    }

    @Test func thresholdsCooldownAndBounds() throws {
        let (harness, instance) = try running()
        let parameter = instance.vnfd.monitoringParameters[0]
        var scaler = NFVAutoScaler()
        let start = harness.now
        _ = scaler.due([instance], now: start)  // watching starts: the cooldown runs from here
        #expect(scaler.observe(instance, parameter: parameter, values: [5], busy: false, now: start.adding(seconds: 1)) == nil)
        #expect(scaler.observe(instance, parameter: parameter, values: [5], busy: true, now: start.adding(seconds: 6)) == nil)
        let out = scaler.observe(instance, parameter: parameter, values: [5, 1], busy: false, now: start.adding(seconds: 6))
        #expect(out?.type == .scaleOut)
        #expect(out?.aspect == "lb-scale")
        #expect(out?.reason == "connections_active mean 3 over 2 VNFCs above 2")
        // Cooldown after an action.
        #expect(scaler.observe(instance, parameter: parameter, values: [5], busy: false, now: start.adding(seconds: 8)) == nil)
        // Between the thresholds nothing happens.
        #expect(scaler.observe(instance, parameter: parameter, values: [1.5], busy: false, now: start.adding(seconds: 20)) == nil)
        // At the aspect's highest level it does not scale out; at level 0 it does not scale in.
        var top = instance
        top.scaleLevels["lb-scale"] = 2
        #expect(scaler.observe(top, parameter: parameter, values: [9], busy: false, now: start.adding(seconds: 30)) == nil)
        #expect(scaler.observe(instance, parameter: parameter, values: [0], busy: false, now: start.adding(seconds: 40)) == nil)
        var scaled = instance
        scaled.scaleLevels["lb-scale"] = 1
        let scaleIn = scaler.observe(scaled, parameter: parameter, values: [0, 0], busy: false, now: start.adding(seconds: 50))
        #expect(scaleIn?.type == .scaleIn)
        // No values (no VNFC could be read): no decision.
        #expect(scaler.observe(scaled, parameter: parameter, values: [], busy: false, now: start.adding(seconds: 60)) == nil)
    }

    @Test func anAutoScaleIsAnAutomaticOccurrenceWithItsCause() throws {
        var (harness, instance) = try running()
        let result = try harness.machine.scale(
            instance.id, aspect: "lb-scale", type: .scaleOut, automatic: true, cause: "connections_active mean 3 above 2",
            now: harness.now)
        harness.run(result.actions)
        #expect(harness.converge(result.operationID) == .completed)
        let operation = harness.machine.operations[result.operationID]!
        #expect(operation.isAutomaticInvocation)
        #expect(operation.parameters["cause"] == "connections_active mean 3 above 2")
        instance = harness.machine.instances[instance.id]!
        #expect(instance.vnfcs.count == 2)
    }
}
