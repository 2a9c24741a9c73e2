// redis-py 8 (installed by the test set-up from PyPI) against a real cache-node: its default RESP3 handshake
// (`HELLO 3`, refused unless the reply says proto 3), RESP2, pipelines and transactions.
import Foundation
import Testing

@Suite(.serialized)
struct RedisPyTests {
    @Test func redisPyWorksWithItsDefaultsAndWithRESP2() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let result = try runProgram("/usr/bin/env", ["python3", PackagePaths.clientScript("redis_py_client.py"), String(node.port)])
        #expect(result.status == 0, "redis-py client failed:\n\(result.output)")
        #expect(result.output.contains("redis-py: all checks passed"))
    }
}

@Suite(.serialized)
struct BackpressureTests {
    @Test func aClientThatDoesNotReadCannotMakeTheNodeBufferWithoutBound() throws {
        let node = try CacheNodeProcess()
        defer { node.stop() }
        let result = try runProgram("/usr/bin/env", ["python3", PackagePaths.clientScript("backpressure_client.py"), String(node.port)])
        #expect(result.status == 0, "backpressure client failed:\n\(result.output)")
        #expect(result.output.contains("all 20000 replies received in order"))
    }
}
