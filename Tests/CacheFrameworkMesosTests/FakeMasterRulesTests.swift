// The fake master's wire rules, spoken to with raw HTTP (status codes, headers, RecordIO framing), so the fake is
// known to refuse what a real master refuses before the backend is tested against it.

import AsyncHTTPClient
import CacheFramework
import CacheFrameworkMesos
import Foundation
import MesosFakeMaster
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing

@Suite(.serialized)
struct FakeMasterRulesTests {
    let subscribeBody = #"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"test","name":"raw","failover_timeout":3600,"capabilities":[{"type":"PARTITION_AWARE"}]}}}"#

    @Test func statusCodesFollowTheMaster() async throws {
        let fixture = try await MesosFixture()
        let http = RawClient.make()
        defer { Task { try? await http.shutdown(); await fixture.stop() } }
        let raw = RawClient(client: http)
        let leader = fixture.urls[0]

        // The standby redirects to the leader, naming it in Location.
        let redirected = try await raw.post(fixture.urls[1], subscribeBody)
        #expect(redirected.status == 307)
        #expect(redirected.location == "//\(leader.authority)/api/v1/scheduler")

        // Malformed requests.
        #expect(try await raw.post(leader, subscribeBody, contentType: nil).status == 400)
        #expect(try await raw.post(leader, subscribeBody, contentType: "text/plain").status == 415)
        #expect(try await raw.post(leader, "{not json").status == 400)
        #expect(try await raw.post(leader, #"{"type":"ACCEPT","framework_id":{"value":"x"}}"#).body.contains("Expecting 'accept'"))
        #expect(try await raw.post(leader, #"{"type":"REVIVE"}"#).status == 400)
        // SUBSCRIBE must not carry a stream id.
        let withHeader = try await raw.post(leader, subscribeBody, streamID: "abc")
        #expect(withHeader.status == 400)
        #expect(withHeader.body.contains("Mesos-Stream-Id"))
        // A call for a framework the master does not know.
        #expect(try await raw.post(leader, #"{"type":"REVIVE","framework_id":{"value":"nobody"}}"#, streamID: "abc").status == 400)

        // SUBSCRIBE through the backend's HTTP client path gives a stream id; then the stream-id rules.
        let backend = fixture.backend()
        let running = try await RunningBackend(backend)
        try await running.waitSubscribed()
        let id = try #require(await backend.currentFrameworkID)
        let stream = try #require(await backend.currentStreamID)
        let revive = #"{"type":"REVIVE","framework_id":{"value":"\#(id.value)"}}"#
        #expect(try await raw.post(leader, revive, streamID: stream).status == 202)
        let missing = try await raw.post(leader, revive)
        #expect(missing.status == 400)
        #expect(missing.body == "All non-subscribe calls should include the 'Mesos-Stream-Id' header")
        let stale = try await raw.post(leader, revive, streamID: "not-the-stream")
        #expect(stale.status == 400)
        #expect(stale.body.contains("didn't match the stream ID"))
        // The backend's own calls carried the header; the master's log shows SUBSCRIBE never did.
        let log = await fixture.master.callLog
        #expect(log.filter { $0.type == "SUBSCRIBE" && $0.status == 200 }.allSatisfy { $0.streamIDHeader == nil })

        // Once the stream closes (the backend stops), the framework is known but not subscribed: 403.
        await running.stop()
        try await waitUntil("the master sees the disconnect") { await fixture.master.frameworkState?.connected == false }
        #expect(try await raw.post(leader, revive, streamID: stream).status == 403)
    }

    @Test func subscribeStreamIsChunkedRecordIO() async throws {
        let fixture = try await MesosFixture(heartbeatInterval: .milliseconds(200))
        let http = RawClient.make()
        defer { Task { try? await http.shutdown(); await fixture.stop() } }
        var request = HTTPClientRequest(url: fixture.urls[0].schedulerEndpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: subscribeBody))
        let response = try await http.execute(request, timeout: .seconds(10))
        #expect(response.status == .ok)
        #expect(response.headers.first(name: "Transfer-Encoding") == "chunked")
        #expect(response.headers.first(name: "Content-Length") == nil)
        #expect(response.headers.first(name: "Mesos-Stream-Id") != nil)
        // Read raw bytes until SUBSCRIBED and a HEARTBEAT were framed: "<length>\n<json>".
        var bytes = ByteBuffer()
        var types: [Mesos.Event.EventType] = []
        for try await chunk in response.body {
            var chunk = chunk
            bytes.writeBuffer(&chunk)
            let processor = NIOSingleStepByteToMessageProcessor(RecordIODecoder())
            types = []
            try processor.process(buffer: bytes) { types.append(try JSONDecoder().decode(Mesos.Event.self, from: $0).type) }
            if types.contains(.heartbeat) { break }
        }
        #expect(types.first == .subscribed)
        #expect(types.contains(.heartbeat))
        let text = String(buffer: bytes)
        let firstLine = text.prefix { $0 != "\n" }
        let firstRecordLength = try #require(Int(firstLine))
        let afterNewline = text.utf8.dropFirst(firstLine.utf8.count + 1)
        #expect(String(decoding: afterNewline.prefix(firstRecordLength), as: UTF8.self).hasSuffix("}"))
    }
}
