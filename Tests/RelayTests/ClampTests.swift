import Foundation
import Klaviyo
import Logging
import Redis
import RelayTestSupport
import Testing

@testable import Relay

/// Every number from outside is clamped before the relay computes with it: retry waits from `Retry-After`, the
/// limiter's answers from Redis, retry bookkeeping, configured durations, timestamps.
@Suite("Numbers from outside are clamped")
struct ClampTests {
    static let durations: [Duration] = [
        .zero, .milliseconds(1), .seconds(1), .seconds(86_400), .seconds(86_401), .seconds(100_000_000_000_000_000),
        .seconds(Int64.max), .seconds(-1), .seconds(Int64.min), .milliseconds(Int64.max),
    ]
    static let attempts = [Int.min, -1, 0, 1, 2, 5, 30, 31, 64, 1_000_000, Int.max]
    static let times: [Int64] = [.min, .min + 1, -1, 0, 1_796_040_000_000, .max - 1, .max]
    static let draws: [Double] = [0, 0.5, 0.999_999, 1, -1, 2, .nan, .infinity, -.infinity, .ulpOfOne]

    static func error(_ random: inout SeededRandom) -> KlaviyoError {
        let code = random.pick([
            KlaviyoError.Code.throttled, .heldBack, .serverError, .transport, .unauthorized, .rejected,
            .gateUnavailable,
        ])
        return KlaviyoError(
            code: code, status: random.pick([nil, 429, 500, 503, 401, 400]), operationID: "create_event",
            message: "fuzz", retryAfter: random.chance(0.7) ? random.pick(durations) : nil,
            requestMayHaveBeenSent: random.chance(0.5), usedOAuth: random.chance(0.5))
    }

    /// RetryPolicy with extreme inputs: every wait is within the policy's bound, every tier is a declared one,
    /// and the processor's millisecond conversions of it cannot overflow.
    @Test func retryPolicyStaysWithinBoundsForExtremeInputs() {
        let seed = SeededRandom.seed(default: 0xC1A_0001)
        print("ClampTests.retryPolicyStaysWithinBoundsForExtremeInputs seed \(seed) (FUZZ_SEED to reproduce)")
        var random = SeededRandom(seed: seed)
        let topology = RelayTopology()
        let year = RelayConfiguration.maximumDuration
        for index in 0..<4000 {
            // Any policy the configuration accepts (durations up to a year, attempts 1...100), or odder.
            let policy = RetryPolicy(
                maxAttempts: random.chance(0.8) ? Int.random(in: 1...100, using: &random) : random.pick(Self.attempts),
                baseDelay: random.pick([.zero, .milliseconds(200), .seconds(10), year]),
                maxDelay: random.pick([.zero, .seconds(10), .seconds(3600), year]),
                maxRetryAge: random.pick([.zero, .seconds(1), .seconds(86_400), year]))
            let error = Self.error(&random)
            let attempt =
                random.chance(0.5) ? random.pick(Self.attempts) : Int.random(in: .min ... .max, using: &random)
            let first = random.pick(Self.times)
            let now = random.pick(Self.times)
            let draw = random.pick(Self.draws)
            let label =
                "seed \(seed) case \(index): \(error.code) retryAfter \(String(describing: error.retryAfter)) attempt \(attempt)"

            if case .retry(let wait) = policy.decide(
                after: error, attempt: attempt, isIdempotent: true, random: { draw })
            {
                #expect(wait >= .zero && wait <= policy.longestWait, "\(label): wait \(wait)")
                #expect(wait.wholeMilliseconds >= 0, "\(label)")
            }
            let schedule = policy.schedule(
                after: error, attempt: attempt, isIdempotent: random.chance(0.5), firstFailedAtMilliseconds: first,
                nowMilliseconds: now, topology: topology, random: { draw })
            if case .delay(let tier, let wanted) = schedule {
                #expect(wanted >= .zero && wanted <= policy.longestWait, "\(label): wanted \(wanted)")
                #expect(topology.retryTiers.contains(tier), "\(label)")
                // What the processor logs and the delayed retry computes.
                _ = wanted.wholeMilliseconds
                _ = wanted.roundedDescription
                #expect(Clamp.difference(now, first) < policy.maxRetryAge.wholeMilliseconds, "\(label): too old")
            }
            let held = policy.scheduleHeldBack(
                wait: random.pick(Self.durations), firstFailedAtMilliseconds: first, nowMilliseconds: now,
                topology: topology, random: { draw })
            if case .delay(_, let wanted) = held {
                #expect(wanted >= .zero && wanted <= Clamp.maxRetryAfter * 1.2, "\(label): held back \(wanted)")
            }
        }
    }

    /// Regression: `Retry-After: 100000000000000000` through the client and the policy: the processor's
    /// `wanted.wholeMilliseconds` (its log line) trapped on `seconds * 1000`.
    @Test func hugeRetryAfterSchedulesWithinADay() throws {
        let answer = KlaviyoHTTPResponse(
            status: 429, headers: [("Retry-After", "100000000000000000")], body: Array(#"{"errors":[]}"#.utf8))
        let error: KlaviyoError
        do {
            _ = try KlaviyoClient.interpret(answer, operationID: "create_event", usedOAuth: false)
            Issue.record("a 429 produced a value")
            return
        } catch let thrown {
            error = thrown
        }
        let policy = RetryPolicy()
        let schedule = policy.schedule(
            after: error, attempt: 1, isIdempotent: true, firstFailedAtMilliseconds: 1_796_040_000_000,
            nowMilliseconds: 1_796_040_000_000, topology: RelayTopology(), random: { 0.5 })
        guard case .delay(let tier, let wanted) = schedule else {
            Issue.record("expected a delayed retry, got \(schedule)")
            return
        }
        // 86 400 s asked, plus 10 % (half of the 20 % jitter).
        #expect(abs(wanted.wholeMilliseconds - 95_040_000) <= 1, "\(wanted)")
        #expect(tier.name == "1h")
    }

    @Test(arguments: [
        ("9223372036854775807d", "at most 365d"), ("9223372036854775807", "at most 365d"), ("366d", "at most 365d"),
        ("99999999999999999999s", "must be a duration"), ("-1s", "must be a duration"), ("1y", "must be a duration"),
    ])
    func absurdConfiguredDurationsAreRefusedClearly(text: String, message: String) {
        #expect(RelayConfiguration.parseDuration(text) == nil)
        do {
            _ = try RelayConfiguration(environment: ["RELAY_MAX_RETRY_AGE": text], development: true)
            Issue.record("RELAY_MAX_RETRY_AGE=\(text) was accepted")
        } catch {
            #expect(error.description.contains("RELAY_MAX_RETRY_AGE"), "\(error)")
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test func durationsUpToAYearAreAccepted() throws {
        #expect(RelayConfiguration.parseDuration("365d") == .seconds(365 * 86_400))
        #expect(RelayConfiguration.parseDuration("31536000") == .seconds(365 * 86_400))
        #expect(RelayConfiguration.parseDuration("8760h") == .seconds(365 * 86_400))
        #expect(RelayConfiguration.parseDuration("0") == .zero)
        let configuration = try RelayConfiguration(environment: ["RELAY_IDEMPOTENCY_TTL": "365d"], development: true)
        #expect(configuration.idempotencyTTL == .seconds(365 * 86_400))
    }

    @Test func timestampsFormatWhateverTheirValue() {
        for milliseconds in Self.times + [-1, 999, 1000, -62_167_219_200_000, 253_402_300_799_999] {
            let text = Timestamp.format(milliseconds: milliseconds)
            #expect(text.count == 24, "\(milliseconds) -> \(text)")
            #expect(Timestamp.parseMilliseconds(text) != nil, "\(milliseconds) -> \(text)")
        }
        #expect(Timestamp.format(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp.format(milliseconds: .max) == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp.format(epochSeconds: .max) == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp.format(seconds: .min) == "0001-01-01T00:00:00.000Z")
    }

    @Test func saturatingArithmetic() {
        #expect(Clamp.difference(.max, -1) == .max)
        #expect(Clamp.difference(.min, 1) == .min)
        #expect(Clamp.difference(5, 3) == 2)
        #expect(Clamp.sum(.max, 1) == .max && Clamp.sum(.min, -1) == .min)
        #expect(Clamp.int64(.nan, to: 0...10) == nil)
        #expect(Clamp.int64(1e300, to: .min ... .max) == .max)
        #expect(Clamp.int64(-.infinity, to: .min ... .max) == .min)
        #expect(Clamp.epochMilliseconds(fromEpochSeconds: UInt64.max) == nil)
        #expect(Clamp.epochMilliseconds(fromEpochSeconds: Int64(-1)) == nil)
        #expect(Clamp.epochMilliseconds(fromEpochSeconds: UInt64(1_796_040_000)) == 1_796_040_000_000)
        #expect(Duration.seconds(Int64.max).roundedDescription.hasSuffix("h"))
        #expect(Duration.seconds(Int64.min).roundedDescription.hasSuffix("s"))
    }

    /// A corrupted rate-limit key (an admission time far in the future) makes the limiter's script answer an
    /// absurd wait: it is taken as the steady window, so a held-back command waits a minute, not forever.
    @Test func absurdLimiterWaitFromRedisIsOneWindow() async throws {
        let url = ProcessInfo.processInfo.environment["RELAY_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
        var logger = Logger(label: "clamp-tests")
        logger.logLevel = .warning
        let redis = RedisClient(configuration: try RedisConfiguration(url: url), logger: logger)
        defer { Task { await redis.shutdown() } }
        let account = "clamp-\(UUID().uuidString.lowercased())"
        let key = RedisKeys.rateLimit(account, bucket: "test_operation")
        _ = try await redis.send(["ZADD", key, "9000000000000000000", "corrupt"])
        _ = try await redis.send(["PEXPIRE", key, "60000"])
        let limiter = RateLimiter(
            redis: redis, settings: .init(share: 1, maxWait: .seconds(1)),
            table: ["test_operation": KlaviyoRateLimit(burst: 10, steady: 1)])
        let decision = try await limiter.acquire(
            accountID: account, operationID: "test_operation", limit: KlaviyoRateLimit(burst: 10, steady: 1))
        // The longest wait a schedule can honestly hold (reservations up to the horizon, then a window), not
        // an overflow.
        #expect(decision == .refused(wait: .seconds(3600)))
        _ = try await redis.send(["DEL", key])
    }
}
