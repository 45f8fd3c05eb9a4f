import Foundation
import Logging
import Redis
import Testing

#if canImport(Glibc)
    import Glibc
#endif

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

    /// Client-side CPU (user + system, whole test process) per 10,000 INCR from 64 concurrent callers, pool 8.
    @Test func cpuTimePerTenThousandConcurrentOps() async throws {
        let key = RedisTestSupport.prefix() + "bench-cpu"
        try await Self.measure("INCR", callers: 64, poolSize: 8, roundTrips: 50_000) { client in
            _ = try await client.increment(key)
        }
        try await Self.measure("INCR", callers: 64, poolSize: 1, roundTrips: 50_000) { client in
            _ = try await client.increment(key)
        }
        let cleaner = try RedisTestSupport.makeClient(poolSize: 1)
        _ = try await cleaner.delete([key])
        await cleaner.shutdown()
    }

    /// The relay's pattern per message: HGETALL, a 2-command pipeline, HSET (3 round trips), 64 messages in flight.
    @Test func relayShapedWorkload() async throws {
        let prefix = RedisTestSupport.prefix()
        let messages = 10_000
        try await Self.measure("relay-shaped round trips", callers: 64, poolSize: 8, roundTrips: 3 * messages) {
            client in
            let key = prefix + "m:\(Int.random(in: 0..<1_000))"
            _ = try await client.hashGetAll(key)
            _ = try await client.pipeline([
                ["SET", key + ":lock", "1", "PX", "60000", "NX"], ["PEXPIRE", key, "60000"],
            ])
            try await client.hashSet(key, ["state": "done"])
        }
        let cleaner = try RedisTestSupport.makeClient(poolSize: 1)
        _ = try await cleaner.delete(try await cleaner.scan(match: prefix + "*"))
        await cleaner.shutdown()
    }

    /// Runs `body` `roundTrips / roundTripsPerBody` times from `callers` tasks on a fresh client and logs
    /// throughput and the process' CPU time per 10,000 round trips.
    static func measure(
        _ label: String, callers: Int, poolSize: Int, roundTrips: Int,
        body: @escaping @Sendable (RedisClient) async throws -> Void
    ) async throws {
        var logger = Logger(label: "redis-bench")
        logger.logLevel = .info
        let client = try RedisTestSupport.makeClient(poolSize: poolSize)
        defer { Task { await client.shutdown() } }
        // Warm up the pool.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<callers { group.addTask { try await client.ping() } }
            try await group.waitForAll()
        }
        let perBody = label.hasPrefix("relay") ? 3 : 1
        let iterations = roundTrips / perBody
        let clock = ContinuousClock()
        let cpuBefore = Self.processCPUTime()
        let switchesBefore = Self.contextSwitches()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<callers {
                group.addTask {
                    for _ in stride(from: worker, to: iterations, by: callers) { try await body(client) }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - start
        let cpu = Self.processCPUTime() - cpuBefore
        let switches = (Self.contextSwitches() - switchesBefore) * 10_000 / roundTrips
        let perTenThousand = cpu * 10_000 / Double(roundTrips)
        logger.info(
            """
            \(roundTrips) \(label), \(callers) callers, pool \(poolSize): \(elapsed), \
            \(Self.rate(roundTrips, elapsed)) ops/s, CPU \(Int(cpu * 1000)) ms = \
            \(Int(perTenThousand * 1000)) ms per 10k ops, \(Int(cpu / Self.seconds(elapsed) * 100))% of one core, \
            \(switches) context switches per 10k ops
            """)
    }

    /// User + system CPU seconds consumed so far by this process.
    static func processCPUTime() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Voluntary + involuntary context switches of this process so far.
    static func contextSwitches() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_nvcsw + usage.ru_nivcsw
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    static func rate(_ count: Int, _ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(Double(count) / (Double(seconds) + Double(attoseconds) / 1e18))
    }
}
