// Range arithmetic for ports and the proto-shaped JSON of the model types.

import CacheFramework
import Foundation
import Testing

struct ResourcesTests {
    @Test func rangesAreNormalized() {
        let set = RangeSet([ValueRange(begin: 10, end: 12), ValueRange(begin: 1, end: 3), ValueRange(begin: 4, end: 5)])
        #expect(set.ranges == [ValueRange(begin: 1, end: 5), ValueRange(begin: 10, end: 12)])
        #expect(set.count == 8)
    }

    @Test func subtractingSplitsRanges() {
        let set = RangeSet([ValueRange(begin: 1, end: 10)])
        let rest = set.subtracting(RangeSet([ValueRange(begin: 3, end: 4), ValueRange(begin: 10, end: 20)]))
        #expect(rest.ranges == [ValueRange(begin: 1, end: 2), ValueRange(begin: 5, end: 9)])
        #expect(set.contains(RangeSet.of([2, 7])))
        #expect(!rest.contains(RangeSet.of([3])))
    }

    @Test func takeLowestAcrossRanges() {
        var set = RangeSet([ValueRange(begin: 1, end: 2), ValueRange(begin: 5, end: 9)])
        #expect(set.takeLowest(3) == [1, 2, 5])
        #expect(set.ranges == [ValueRange(begin: 6, end: 9)])
        #expect(set.takeLowest(5) == nil)
        #expect(set.count == 4)
    }

    @Test func offerDecodesFromMesosJSON() throws {
        let json = """
            {"id":{"value":"o1"},"framework_id":{"value":"f"},"agent_id":{"value":"a1"},"hostname":"h1",
             "resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":2}},
                          {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":31009}]}}],
             "attributes":[{"name":"zone","type":"TEXT","text":{"value":"z1"}}]}
            """
        let offer = try JSONDecoder().decode(Offer.self, from: Data(json.utf8))
        #expect(offer.agentID == AgentID("a1"))
        #expect(ResourceQuantities(offer.resources).ports.count == 10)
        #expect(offer.failureDomain == "zone:z1")
    }

    @Test func taskStatusUsesProtoNames() throws {
        let status = TaskStatus(taskID: TaskID("t"), state: .running, agentID: AgentID("a"), uuid: "dXU=")
        let text = String(decoding: try JSONEncoder().encode(status), as: UTF8.self)
        #expect(text.contains("\"task_id\""))
        #expect(text.contains("\"TASK_RUNNING\""))
        let operation = OfferOperation.launch([])
        let opText = String(decoding: try JSONEncoder().encode(operation), as: UTF8.self)
        #expect(opText.contains("\"LAUNCH\"") && opText.contains("task_infos"))
    }
}
