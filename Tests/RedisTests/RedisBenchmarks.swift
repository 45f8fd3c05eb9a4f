import Foundation
import Logging
import Redis
import Testing

/// Throughput observations, not timed assertions: run with `RELAY_BENCH=1 swift test --filter Benchmarks`.
@Suite("Redis benchmarks", .enabled(if: ProcessInfo.processInfo.environment["RELAY_BENCH"] == "1"))
struct RedisBenchmarks {
    @Test func sixtyFourConcurrentCallers() async throws {
        var logger = Logger(label: "redis-bench")
        logger.logLevel = .info
        let client = try RedisTestSupport.makeClient(poolSize: 8)
        defer { Task { await client.shutdown() } }
        let key = RedisTestSupport.prefix() + "bench"
        let clock = ContinuousClock()
        let total = 50_000

        var start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<64 {
                group.addTask {
                    for _ in stride(from: worker, to: total, by: 64) { _ = try await client.increment(key) }
                }
            }
            try await group.waitForAll()
        }
        var elapsed = clock.now - start
        logger.info("\(total) INCR, 64 callers, pool 8: \(elapsed), \(Self.rate(total, elapsed)) ops/s")

        start = clock.now
        for _ in 0..<10_000 { _ = try await client.get(key) }
        elapsed = clock.now - start
        logger.info("10000 sequential GET: \(elapsed), \(Self.rate(10_000, elapsed)) ops/s")

        start = clock.now
        for _ in 0..<50 { _ = try await client.pipeline(Array(repeating: ["INCR", key], count: 1_000)) }
        elapsed = clock.now - start
        logger.info("50 pipelines of 1000 INCR: \(elapsed), \(Self.rate(50_000, elapsed)) ops/s")
        _ = try await client.delete([key])
    }

    static func rate(_ count: Int, _ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(Double(count) / (Double(seconds) + Double(attoseconds) / 1e18))
    }
}
