import Foundation
import HTTPClient
import Logging
import Testing

/// Throughput observations, not timed assertions: run with `RELAY_BENCH=1 swift test --filter Benchmarks`.
@Suite("HTTPClient benchmarks", .enabled(if: ProcessInfo.processInfo.environment["RELAY_BENCH"] == "1"))
struct HTTPClientBenchmarks {
    @Test func tenThousandSmallRequests() async throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        var logger = Logger(label: "http-bench")
        logger.logLevel = .info
        let client = HTTPClient(logger: logger)
        defer { Task { await client.shutdown() } }
        let url = server.baseURL + "/status/200"
        let clock = ContinuousClock()

        var start = clock.now
        for _ in 0..<10_000 { _ = try await client.execute(HTTPRequest(url: url)) }
        let sequential = clock.now - start
        logger.info(
            "10000 sequential requests: \(sequential), \(Self.rate(10_000, sequential)) req/s, connections: \(server.snapshot.acceptedConnections)"
        )

        start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<64 {
                group.addTask {
                    for _ in stride(from: worker, to: 10_000, by: 64) {
                        _ = try await client.execute(HTTPRequest(url: url))
                    }
                }
            }
            try await group.waitForAll()
        }
        let concurrent = clock.now - start
        logger.info(
            "10000 requests, 64 concurrent: \(concurrent), \(Self.rate(10_000, concurrent)) req/s, connections: \(server.snapshot.acceptedConnections), max in flight: \(server.snapshot.maxInFlight)"
        )
    }

    static func rate(_ count: Int, _ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(Double(count) / (Double(seconds) + Double(attoseconds) / 1e18))
    }
}
