// What runs next to a sample function's proxy: connection counters, the `GET /metrics` endpoint the framework's
// metrics collector reads for auto-scaling (`connections_active N`, `connections_total N`), and the follower of the
// framework's file for the `--next` link (`$VNF_LINKS_DIR/LINK`, endpoints comma-separated), which a rolling update
// of the next VNF rewrites: new connections then go to the new endpoints, open ones stay where they are. On SIGTERM
// (the framework stopping the VNFC, e.g. the old one of a rolling update) the proxy stops accepting and exits once its
// open connections have ended, within a grace period, so they are not cut.

import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Accepted connections of this process.
final class ConnectionStats: Sendable {
    static let shared = ConnectionStats()
    private let active = Atomic<Int>(0)
    private let total = Atomic<Int>(0)

    /// Counts an accepted connection until its channel closes.
    func opened(_ channel: any Channel) {
        active.add(1, ordering: .relaxed)
        total.add(1, ordering: .relaxed)
        channel.closeFuture.whenComplete { _ in self.active.subtract(1, ordering: .relaxed) }
    }

    /// Connections open now.
    var activeCount: Int { active.load(ordering: .relaxed) }

    /// The metrics text.
    var text: String {
        "# vnf-sample connections\nconnections_active \(active.load(ordering: .relaxed))\nconnections_total \(total.load(ordering: .relaxed))\n"
    }
}

/// A minimal HTTP/1.0 endpoint: every request gets the metrics text, then the connection closes.
enum Metrics {
    static func serve(bind host: String, port: Int) async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(MetricsHandler()) }
            }
            .bind(host: host, port: port).get()
        print("vnf-sample: metrics on http://\(host):\(channel.localAddress?.port ?? port)/metrics")
        fflush(nil)
    }
}

/// Answers the first bytes of a request with the metrics and closes.
final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        answered = true
        let body = ConnectionStats.shared.text
        let response = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(string: response))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension MetricsHandler: Sendable {}

/// Re-reads the link file when it changes and replaces the upstreams.
struct LinkFollower {
    let path: String
    let upstreams: Upstreams
    let name: String

    func run() async {
        var last = ""
        while !Task.isCancelled {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if trimmed != last {
                    last = trimmed
                    let addresses = trimmed.split(separator: ",").compactMap { HopOptions.address(String($0)) }
                    if !addresses.isEmpty && addresses != upstreams.addresses {
                        upstreams.replace(addresses)
                        print("vnf-sample \(name): upstreams now \(addresses)")
                        fflush(nil)
                    }
                }
            }
            do { try await Task.sleep(for: .milliseconds(200)) } catch { return }
        }
    }
}

/// Graceful stop: SIGTERM closes the listener; the proxy then waits for its open connections (`waitForConnections`).
enum Drain {
    /// Seconds the open connections get after SIGTERM.
    static let graceSeconds = 10.0

    /// Closes `listener` on SIGTERM; keep the returned source for as long as the proxy runs.
    static func onSIGTERM(close listener: any Channel) -> any DispatchSourceSignal {
        signal(SIGTERM, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        source.setEventHandler { listener.close(promise: nil) }
        source.resume()
        return source
    }

    /// Waits until no connection is open, or the grace period has passed.
    static func waitForConnections() async {
        let deadline = ContinuousClock.now.advanced(by: .seconds(graceSeconds))
        while ConnectionStats.shared.activeCount > 0 && ContinuousClock.now < deadline {
            do { try await Task.sleep(for: .milliseconds(20)) } catch { return }
        }
    }
}
