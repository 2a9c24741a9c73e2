// Pushing a topology by hand to cache nodes with identities, as the framework does: `cachectl node send` through the
// node's secure port with a framework identity (role framework) of the test authority. Such a node refuses
// `CLUSTER TOPOLOGY SET` on its plain client port.
import Foundation

extension TestIdentities {
    /// The framework identity's file, issued on first use (node id `framework`, role framework).
    func frameworkIdentity() throws -> String {
        let path = "\(directory)/framework.identity"
        if FileManager.default.fileExists(atPath: path) { return path }
        let cachectl = PackagePaths.root.appendingPathComponent(".build/debug/cachectl").path
        let issued = try runProgram(cachectl, [
            "identity", "issue", "--authority-key", "\(directory)/authority.key", "--node-id", "framework", "--role", "framework",
            "--out", path,
        ])
        guard issued.status == 0 else { throw HarnessError(description: "cachectl identity issue (framework) failed: \(issued.output)") }
        return path
    }

    /// Sends `arguments` to the node `nodeID` through its secure port as the framework; returns the printed reply
    /// (`(error) …` for an error reply).
    func sendAsFramework(_ arguments: [String], securePort: Int, nodeID: String) throws -> String {
        let cachectl = PackagePaths.root.appendingPathComponent(".build/debug/cachectl").path
        let result = try runProgram(cachectl, [
            "node", "send", "--secure", "127.0.0.1:\(securePort)", "--identity", try frameworkIdentity(),
            "--authority", "\(directory)/authority.pub", "--peer-node-id", nodeID,
        ] + arguments)
        var text = result.output
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// `CLUSTER TOPOLOGY SET epoch payload` to the node `nodeID` through its secure port, as the framework.
    func pushTopology(epoch: Int, _ payload: String, securePort: Int, nodeID: String) throws -> String {
        try sendAsFramework(["CLUSTER", "TOPOLOGY", "SET", String(epoch), payload], securePort: securePort, nodeID: nodeID)
    }
}
