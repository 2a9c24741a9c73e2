// The HTTP API through HummingbirdTesting's router client, over a driver with a real local backend: auth, cluster
// create/get/list/delete, error shapes (invalid spec, not enough resources, unknown cluster), tasks, agents, events,
// health, Prometheus metrics and the HTML status page.

import CacheFramework
import CacheFrameworkAPI
import CacheFrameworkRuntime
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Prometheus
import Testing

struct FrameworkAPITests {
    static let token = "test-token"
    var auth: HTTPFields { [.authorization: "Bearer \(Self.token)", .contentType: "application/json"] }

    func body(_ value: some Encodable) throws -> ByteBuffer { ByteBuffer(bytes: try JSONEncoder().encode(value)) }
    func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        try JSONDecoder().decode(type, from: Data(response.body.readableBytesView))
    }

    @Test func clusterLifecycleAndErrorsOverHTTP() async throws {
        let directory = FrameworkFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let registry = PrometheusCollectorRegistry()
        let framework = try FrameworkFixture(
            directory: directory, agents: 2, firstPort: FrameworkFixture.portBase(), memMB: 2000,
            metricsFactory: PrometheusMetricsFactory(registry: registry))
        let router = FrameworkAPI.router(driver: framework.driver, registry: registry, token: Self.token)
        let app = Application(router: router)
        try await FrameworkFixture.waitUntil("the driver runs") { framework.driver.isStarted }
        try await app.test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("\"status\":\"ok\""))
            }
            try await client.execute(uri: "/api/v1/clusters", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("\"code\":\"unauthorized\""))
            }
            try await client.execute(uri: "/api/v1/clusters", method: .get, headers: [.authorization: "Bearer wrong"]) { response in
                #expect(response.status == .unauthorized)
            }

            let create = ClusterCreateRequest(name: "web", shards: 2, replicas: 1, memoryMB: 32, cpus: 0.1, secureReplication: false)
            try await client.execute(uri: "/api/v1/clusters", method: .post, headers: auth, body: try body(create)) { response in
                #expect(response.status == .created)
                let status = try decode(ClusterStatus.self, response)
                #expect(status.spec.name == "web")
                #expect(status.members.count == 4)
            }
            try await client.execute(uri: "/api/v1/clusters", method: .post, headers: auth, body: try body(create)) { response in
                #expect(response.status == .conflict)
                #expect(String(buffer: response.body).contains("\"code\":\"cluster_exists\""))
            }
            let invalid = ClusterCreateRequest(name: "bad name!", shards: 1, replicas: 0, memoryMB: 32)
            try await client.execute(uri: "/api/v1/clusters", method: .post, headers: auth, body: try body(invalid)) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("invalid cluster name"))
            }
            let huge = ClusterCreateRequest(name: "huge", shards: 8, replicas: 1, memoryMB: 400, cpus: 0.1, secureReplication: false)
            try await client.execute(uri: "/api/v1/clusters", method: .post, headers: auth, body: try body(huge)) { response in
                #expect(response.status == .conflict)
                let text = String(buffer: response.body)
                #expect(text.contains("\"code\":\"insufficient_resources\""))
                #expect(text.contains("\"resource\":\"mem MB\""))
            }
            try await client.execute(uri: "/api/v1/clusters/nope", method: .get, headers: auth) { response in
                #expect(response.status == .notFound)
            }

            try await FrameworkFixture.waitUntil("the cluster is ready") { framework.driver.clusterStatus("web")?.ready == true }
            try await client.execute(uri: "/api/v1/clusters/web", method: .get, headers: auth) { response in
                let status = try decode(ClusterStatus.self, response)
                #expect(status.ready)
                #expect(status.members.allSatisfy { $0.state == .running && $0.endpoint != nil })
            }
            try await client.execute(uri: "/api/v1/tasks", method: .get, headers: auth) { response in
                let rows = try decode([TaskRow].self, response)
                #expect(rows.count == 4)
                #expect(rows.allSatisfy { $0.pid != nil && $0.state == .running })
            }
            try await client.execute(uri: "/api/v1/agents", method: .get, headers: auth) { response in
                let agents = try decode([LocalAgentView].self, response)
                #expect(agents.count == 2)
                #expect(agents.map(\.taskCount) == [2, 2])
                #expect(agents.allSatisfy { $0.free.memMB == 1000 - 80 })
            }
            try await client.execute(uri: "/api/v1/events", method: .get, headers: auth) { response in
                let events = try decode([FrameworkEvent].self, response)
                #expect(events.contains { $0.kind == "cluster" && $0.message.contains("created web") })
                #expect(events.contains { $0.kind == "cluster" && $0.message.contains("not enough resources for cluster 'huge'") })
            }
            // A member can fail to start when another test in the run holds its port; the framework then launches a
            // replacement, so every failure adds one launch and one RUNNING update.
            let failedMembers = await framework.backend.taskViews().filter { $0.state == .failed }.count
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("cacheframework_tasks_launched_total \(4 + failedMembers)"), "\(text)")
                #expect(text.contains("cacheframework_task_updates_total{state=\"TASK_FAILED\"} \(failedMembers)"), "\(text)")
                #expect(text.contains("cacheframework_tasks_running 4.0"), "\(text)")
            }
            // The status page: open, plain HTML, the cluster with its shards, slot map, members and placement.
            let rows = await FrameworkAPI.taskRows(framework.driver)
            try await client.execute(uri: "/status", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                let html = String(buffer: response.body)
                #expect(html.hasPrefix("<!DOCTYPE html>"))
                #expect(!html.contains("<script"))
                #expect(html.contains("<h2>Cluster web</h2>"))
                #expect(html.contains("<span class=\"ok\">ready</span>"))
                #expect(html.contains("<td>0-8191</td>") && html.contains("<td>8192-16383</td>"), "both shards' slots")
                #expect(html.components(separatedBy: "<div class=\"slotmap\"").count == 2)
                #expect(html.components(separatedBy: "title=\"slots ").count == 129, "128 slot-map cells")
                #expect(html.components(separatedBy: "<h3>").count == 3, "one section per agent")
                for row in rows {
                    #expect(html.components(separatedBy: "<td>\(row.taskID.value)</td>").count >= 3, "task in members and placement")
                    #expect(html.contains("<td>\(row.endpoint ?? "?")</td>"))
                }
                #expect(html.contains("created web"), "events")
                #expect(html.contains("not enough resources for cluster &#39;huge&#39;"), "messages are escaped")
            }
            try await client.execute(uri: "/api/v1/clusters/web", method: .delete, headers: auth) { response in
                #expect(response.status == .ok)
            }
            try await FrameworkFixture.waitUntil("the members are killed") {
                let views = await framework.backend.taskViews()
                return views.filter { $0.state == .killed }.count == 4 && views.allSatisfy { $0.state == .killed || $0.state == .failed }
            }
            try await client.execute(uri: "/api/v1/clusters", method: .get, headers: auth) { response in
                let clusters = try decode([ClusterStatus].self, response)
                #expect(clusters.isEmpty)
            }
        }
        await framework.stop()
    }
}
