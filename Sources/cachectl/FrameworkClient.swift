// How cachectl reaches a running framework: the shared connection flags (`@OptionGroup`), the JSON-over-HTTP
// client (AsyncHTTPClient), and the exit codes scripts can rely on.

import AsyncHTTPClient
import ArgumentParser
import CacheFrameworkAPI
import Foundation
import NIOCore
import NIOHTTP1

/// Exit codes of the framework commands.
enum ExitStatus {
    /// The framework is not running (or not at the given address).
    static let notRunning = ExitCode(3)
    /// Not enough resources for the request.
    static let insufficientResources = ExitCode(4)
    /// The cluster (or shard) does not exist.
    static let notFound = ExitCode(5)
    /// The request conflicts with the current state (cluster exists, no primary).
    static let conflict = ExitCode(6)
    /// Waiting for the cluster timed out.
    static let timedOut = ExitCode(7)
    /// Missing or wrong token.
    static let unauthorized = ExitCode(8)
    /// Any other refusal (invalid spec, …).
    static let refused = ExitCode(1)

    static let help = "Exit codes: 0 ok, 1 refused/invalid, 3 framework not running, 4 not enough resources, "
        + "5 not found, 6 conflict, 7 timed out, 8 unauthorized, 64 usage."
}

/// The file `cachectl serve` writes into its data directory so other commands find it.
struct FrameworkEndpointFile: Codable {
    var url: String
    var token: String?
    var pid: Int32

    static func path(dataDirectory: String) -> String { dataDirectory + "/framework.json" }
}

/// Flags naming the framework to talk to.
struct FrameworkConnectionOptions: ParsableArguments {
    @Option(help: "The framework API URL (default: $CACHECTL_API, the --data-dir's framework.json, or http://127.0.0.1:7380).")
    var api: String?

    @Option(help: "Bearer token for the API (default: $CACHECTL_TOKEN or the --data-dir's framework.json).")
    var token: String?

    @Option(name: .customLong("data-dir"), help: "Find the API URL and token in this framework data directory.")
    var dataDirectory: String?

    @Flag(help: "Print JSON instead of tables.")
    var json = false

    func client() throws -> FrameworkHTTPClient {
        let environment = ProcessInfo.processInfo.environment
        var file: FrameworkEndpointFile?
        if let dataDirectory {
            let path = FrameworkEndpointFile.path(dataDirectory: dataDirectory)
            guard let data = FileManager.default.contents(atPath: path) else {
                print("error: no framework.json in \(dataDirectory): is `cachectl serve --data-dir \(dataDirectory)` running?")
                throw ExitStatus.notRunning
            }
            file = try JSONDecoder().decode(FrameworkEndpointFile.self, from: data)
        }
        let url = api ?? environment["CACHECTL_API"] ?? file?.url ?? "http://127.0.0.1:7380"
        return FrameworkHTTPClient(baseURL: url, token: token ?? environment["CACHECTL_TOKEN"] ?? file?.token)
    }
}

/// An error answer of the API, decoded.
struct APIErrorBody: Codable {
    struct Detail: Codable {
        var code: String
        var message: String
    }
    var error: Detail
}

/// The HTTP methods the API uses.
enum APIMethod: String {
    case GET, POST, DELETE

    var nio: HTTPMethod {
        switch self {
        case .GET: .GET
        case .POST: .POST
        case .DELETE: .DELETE
        }
    }
}

/// JSON over HTTP to the framework API.
struct FrameworkHTTPClient {
    let baseURL: String
    let token: String?

    /// Sends a request and decodes the answer; API errors become exit codes with the API's message printed.
    func call<Response: Decodable>(
        _ method: APIMethod, _ path: String, body: (some Encodable)? = Optional<String>.none, as: Response.Type
    ) async throws -> Response {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method.nio
        request.headers.add(name: "Accept", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch {
            printError("the framework is not running at \(baseURL) (\(error)); start it with `cachectl serve` or pass --api")
            throw ExitStatus.notRunning
        }
        let data = Data(bytes.readableBytesView)
        guard (200..<300).contains(response.status.code) else {
            let decoded = try? JSONDecoder().decode(APIErrorBody.self, from: data)
            printError(decoded?.error.message ?? "HTTP \(response.status.code): \(String(decoding: data, as: UTF8.self))")
            switch decoded?.error.code {
            case "insufficient_resources": throw ExitStatus.insufficientResources
            case "unknown_cluster", "unknown_vnf_instance", "unknown_op_occ": throw ExitStatus.notFound
            case "cluster_exists", "no_primary", "conflict": throw ExitStatus.conflict
            case "unauthorized": throw ExitStatus.unauthorized
            default: throw ExitStatus.refused
            }
        }
        if Response.self == EmptyAnswer.self { return EmptyAnswer() as! Response }
        do {
            return try JSONDecoder().decode(Response.self, from: data)
        } catch {
            printError("cannot decode the framework's answer to \(method) \(path): \(error)")
            throw ExitCode.failure
        }
    }
}

/// For calls whose answer body does not matter.
struct EmptyAnswer: Decodable {}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
}

/// Prints rows as an aligned table.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows { for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
}

/// Prints a value as pretty JSON.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
