public import Logging
import Metrics
public import Redis
public import ServiceLifecycle

/// Keeps the `relay_connections{state}` gauge current at a bounded cost.
///
/// Once per ``Settings/interval``, one process of the whole fleet (whoever takes the Redis lock
/// `kr:metrics:connections:lock` first) walks the stored connections (`SCAN MATCH kr:{*}:conn`, at most
/// ``Settings/maxKeys`` keys) and writes the counts to the hash `kr:metrics:connections`; every process (the
/// counter included) then sets its gauges from that hash, one `HGETALL`. So the cost is one bounded scan per
/// minute for the fleet, and each process's `/metrics` shows the same numbers (graph them with `max`).
public struct ConnectionStateMetrics: Service {
    /// Tunables.
    public struct Settings: Sendable {
        /// How often the counts are refreshed (and the longest the lock is held).
        public var interval: Duration = .seconds(60)
        /// The most connection keys one count looks at; beyond it the count is marked truncated.
        public var maxKeys = 20_000
        /// Keys asked for per `SCAN` round trip.
        public var scanBatch = 1_000

        /// Defaults.
        public init() {}
    }

    /// The hash the counts are shared in (`connected`, `reauth_required`, `disconnected`, `truncated`, `at`).
    public static let countsKey = "kr:metrics:connections"
    /// The lock that elects the counting process for one interval.
    public static let lockKey = "kr:metrics:connections:lock"
    /// The states counted (the gauge's closed label set).
    public static let states = ["connected", "reauth_required", "disconnected"]

    let redis: RedisClient
    let settings: Settings
    let logger: Logger

    /// Creates the service.
    public init(redis: RedisClient, settings: Settings = Settings(), logger: Logger) {
        self.redis = redis
        self.settings = settings
        self.logger = logger
    }

    /// Refreshes the gauges every interval until graceful shutdown (the first time at once).
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await refresh()
            } catch {
                logger.debug("connection count failed; will try again", metadata: [LogKeys.errorDetail: "\(error)"])
            }
            let pause = settings.interval * Double.random(in: 0.9...1.1)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
        }
    }

    /// One round: count if this process wins the lock, then set the gauges from the shared counts. Returns the
    /// counts the gauges now show.
    @discardableResult
    public func refresh() async throws -> [String: Int] {
        let owner = "\(ProcessIdentity.appID)-\(UInt64.random(in: 0...UInt64.max))"
        if try await redis.set(Self.lockKey, owner, expiry: settings.interval, onlyIfAbsent: true) {
            let (counts, truncated) = try await count()
            var fields = counts.mapValues(String.init)
            fields["truncated"] = truncated ? "1" : "0"
            fields["at"] = String(Timestamp.nowMilliseconds())
            try await redis.hashSet(Self.countsKey, fields)
        }
        let stored = try await redis.hashGetAll(Self.countsKey)
        var shown: [String: Int] = [:]
        for state in Self.states {
            let value = stored[state].flatMap { Int($0) } ?? 0
            shown[state] = value
            Gauge(label: RelayMetrics.connections, dimensions: [("state", state)]).record(value)
        }
        Gauge(label: RelayMetrics.connectionsTruncated).record(stored["truncated"] == "1" ? 1 : 0)
        return shown
    }

    /// Counts the stored connections by state, reading at most ``Settings/maxKeys`` keys.
    func count() async throws -> (counts: [String: Int], truncated: Bool) {
        var counts = Dictionary(uniqueKeysWithValues: Self.states.map { ($0, 0) })
        var cursor = "0"
        var seen = 0
        repeat {
            let reply = try await redis.send([
                "SCAN", cursor, "MATCH", "kr:{*}:conn", "COUNT", String(settings.scanBatch),
            ])
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let batch = parts[1].array
            else { throw RelayError(code: .unexpectedReply, message: "SCAN answered \(reply)", isRetriable: true) }
            for key in batch.compactMap(\.string) {
                guard seen < settings.maxKeys else { return (counts, true) }
                seen += 1
                if let state = try await redis.hashGet(key, "state"), counts[state] != nil { counts[state]! += 1 }
            }
            cursor = next
        } while cursor != "0"
        return (counts, false)
    }
}
