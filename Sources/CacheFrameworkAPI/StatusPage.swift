// The framework's status page (`GET /status`): plain server-rendered HTML for a browser — every cluster with its
// shards, slot map, members and health, resharding progress, the VNF instances with their VNFCs, health and where
// their links lead (the chains), the task placement per agent, and the last events.
// No JavaScript; it refreshes itself every 5 s with a meta tag. Read-only and open like `/metrics` (a browser cannot
// send the bearer token); it shows no secrets.

import CacheFramework
import CacheFrameworkNFV
import CacheFrameworkRuntime

/// Renders the status page.
enum StatusPage {
    /// The page for the framework's current views.
    static func render(
        phase: String, clusters: [ClusterStatus], tasks: [TaskRow], agents: [LocalAgentView], events: [FrameworkEvent],
        vnfs: [VNFInstance] = [], vnfOperations: [LcmOpOcc] = [], vnfHealth: [TaskID: VNFCHealth] = [:]
    ) -> String {
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
            <title>cache framework status</title>
            <style>
            body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
            table{border-collapse:collapse;margin:.5em 0 1em}
            th,td{border:1px solid #ccc;padding:.2em .6em;text-align:left;font-size:.9em}
            th{background:#f3f3f3}
            .ok{color:#176f2c}.bad{color:#b00020}.warn{color:#9a6700}
            .slotmap{display:flex;width:100%;max-width:64em;height:1.4em;border:1px solid #999}
            .slotmap span{flex:1;display:block}
            </style></head><body>
            <h1>cache framework</h1>
            <p>scheduler: <b>\(escape(phase))</b> · \(clusters.count) clusters · \(vnfs.count) VNF instances · \(tasks.count) tasks · \(agents.count) agents</p>

            """
        for cluster in clusters { html += section(cluster) }
        if !vnfs.isEmpty { html += vnfSection(vnfs, operations: vnfOperations, health: vnfHealth) }
        html += "<h2>Placement per agent</h2>\n"
        let byAgent = Dictionary(grouping: tasks, by: \.agentID)
        for agent in agents {
            let placed = (byAgent[agent.spec.id] ?? []).sorted { $0.taskID < $1.taskID }
            html += "<h3>\(escape(agent.spec.id.value)) (\(escape(agent.spec.hostname)))</h3>\n"
            html += "<p>free: \(format(agent.free.cpus)) cpus, \(format(agent.free.memMB)) MB · \(placed.count) tasks</p>\n"
            html += table(
                ["task", "cluster", "shard", "role", "state", "endpoint", "pid"],
                placed.map { row in
                    [
                        row.taskID.value, row.cluster ?? "-", row.shard.map(String.init) ?? "-", row.role?.rawValue ?? "-",
                        state(row.state), row.endpoint ?? "-", row.pid.map(String.init) ?? "-",
                    ]
                })
        }
        html += "<h2>Last events</h2>\n"
        html += table(
            ["#", "kind", "message"],
            events.suffix(20).reversed().map { ["\($0.sequence)", $0.kind, $0.message] })
        html += "</body></html>\n"
        return html
    }

    private static func section(_ status: ClusterStatus) -> String {
        let spec = status.spec
        var html = "<h2>Cluster \(escape(spec.name))</h2>\n"
        let health =
            status.ready ? "<span class=\"ok\">ready</span>"
            : status.serving == true ? "<span class=\"warn\">serving, changing</span>" : "<span class=\"bad\">not ready</span>"
        html += "<p>\(spec.shardCount) shards × \(spec.membersPerShard) members · \(escape(spec.engine.rawValue)) · "
            + "\(spec.memoryMBPerNode) MB/node · \(status.runningMembers)/\(status.members.count) running · \(health)"
            + (status.topologyEpoch.map { " · topology epoch \($0)" } ?? "") + "</p>\n"
        if let resharding = status.resharding {
            html += "<p>resharding \(resharding.fromShards) → \(resharding.toShards) shards: \(escape(resharding.phase)), "
                + "<progress max=\"\(max(1, resharding.totalSlots))\" value=\"\(resharding.movedSlots)\"></progress> "
                + "\(resharding.movedSlots)/\(resharding.totalSlots) slots moved"
                + (resharding.inFlight.map { " · moving \(escape($0))" } ?? "")
                + (resharding.lastError.map { " · <span class=\"bad\">last error: \(escape($0))</span>" } ?? "") + "</p>\n"
        }
        if let shards = status.shards {
            html += slotMap(shards)
            html += table(
                ["shard", "slots", "primary", "serving", "healing"],
                shards.map { shard in
                    [
                        "\(shard.shard)", shard.slots.joined(separator: ", "), shard.primary?.value ?? "-",
                        shard.serving ? "yes" : "no", shard.healing ?? "-",
                    ]
                })
        }
        html += table(
            ["shard", "member", "role", "state", "endpoint", "task", "node id", "epoch"],
            status.members.map { member in
                [
                    "\(member.shard)", "\(member.member)", member.role?.rawValue ?? "-", state(member.state),
                    member.endpoint ?? "-", member.taskID?.value ?? (member.shortfall ?? "pending"),
                    member.clusterNodeID ?? "-", member.topologyEpoch.map(String.init) ?? "-",
                ]
            })
        return html
    }

    /// VNF instances: state, version, links (where each external link leads: the chain), VNFCs with health, and the
    /// last lifecycle operations.
    private static func vnfSection(_ instances: [VNFInstance], operations: [LcmOpOcc], health: [TaskID: VNFCHealth]) -> String {
        var owner: [String: String] = [:]
        for instance in instances {
            for point in instance.vnfd.connectionPoints where point.direction == .inbound {
                for vnfc in instance.vnfcs.values where vnfc.vdu == point.vdu {
                    if let port = point.port, let endpoint = vnfc.endpoint(port) { owner[endpoint] = instance.id }
                }
            }
        }
        var html = "<h2>VNF instances</h2>\n"
        html += table(
            ["instance", "name", "VNFD", "state", "level", "VNFCs running", "links", "last operation"],
            instances.map { instance in
                let links = instance.extLinks.keys.sorted().map { link in
                    let targets = instance.extLinks[link]!.map { endpoint in owner[endpoint].map { "\(endpoint) (\($0))" } ?? endpoint }
                    return "\(link) → \(targets.joined(separator: ", "))"
                }
                let last = operations.last { $0.vnfInstanceID == instance.id }
                return [
                    instance.id, instance.name, "\(instance.vnfd.id) \(instance.vnfd.version)",
                    instance.instantiationState == .instantiated ? instance.operationalState.rawValue : instance.instantiationState.rawValue,
                    instance.levelID + instance.scaleLevels.keys.sorted().map { " \($0)=\(instance.scaleLevels[$0]!)" }.joined(),
                    "\(instance.vnfcs.values.filter(\.isRunning).count)/\(instance.vnfcs.count)",
                    links.joined(separator: "; ").isEmpty ? "-" : links.joined(separator: "; "),
                    last.map { "\($0.operation.rawValue) \($0.state.rawValue)\($0.isAutomaticInvocation ? " (auto)" : "")" } ?? "-",
                ]
            })
        html += table(
            ["instance", "VNFC", "version", "state", "health", "endpoints", "task"],
            instances.flatMap { instance in
                instance.vnfcs.values.sorted { $0.id < $1.id }.map { vnfc in
                    let checked = vnfc.taskID.flatMap { health[$0] }
                    let healthText: String =
                        if let checked, let healthy = checked.lastHealthy {
                            healthy ? "healthy" : "failing \(checked.consecutiveFailures)/\(checked.failureThreshold)"
                        } else if instance.vnfd.vdu(vnfc.vdu)?.healthCheck == nil {
                            "no check"
                        } else {
                            vnfc.isRunning ? "healthy (ready)" : "-"
                        }
                    return [
                        instance.id, vnfc.id + (vnfc.replaces.map { " (replacing \($0))" } ?? ""), vnfc.vnfdVersion ?? "-",
                        state(vnfc.state), healthText,
                        vnfc.ports.keys.sorted().compactMap { vnfc.endpoint($0) }.joined(separator: ", "),
                        vnfc.taskID?.value ?? "pending",
                    ]
                }
            })
        return html
    }

    /// 128 cells of 128 slots each, coloured by the shard that serves the cell's first slot.
    private static func slotMap(_ shards: [ShardStatus]) -> String {
        var owner = [Int](repeating: -1, count: ClusterPlan.slotCount)
        for shard in shards {
            for text in shard.slots {
                let bounds = text.split(separator: "-").compactMap { Int($0) }
                guard let first = bounds.first, let last = bounds.last, first >= 0, last < owner.count, first <= last else { continue }
                for slot in first...last { owner[slot] = shard.shard }
            }
        }
        var html = "<div class=\"slotmap\" title=\"slot map: 0 (left) to 16383 (right)\">"
        for cell in 0..<128 {
            let shard = owner[cell * 128]
            let colour = shard < 0 ? "#eee" : "hsl(\((shard * 137) % 360),60%,55%)"
            html += "<span style=\"background:\(colour)\" title=\"slots \(cell * 128)-\(cell * 128 + 127): shard \(shard < 0 ? "none" : String(shard))\"></span>"
        }
        return html + "</div>\n"
    }

    private static func table(_ headers: [String], _ rows: [[String]]) -> String {
        var html = "<table><tr>" + headers.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
        for row in rows { html += "<tr>" + row.map { "<td>\(escape($0))</td>" }.joined() + "</tr>\n" }
        return html + "</table>\n"
    }

    private static func state(_ state: TaskState?) -> String {
        state.map { String($0.rawValue.dropFirst(5)).lowercased() } ?? "launching"
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : "\((value * 100).rounded() / 100)"
    }

    /// HTML-escapes text (names and messages come from users and members).
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
