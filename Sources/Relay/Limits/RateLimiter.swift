import Foundation
public import Klaviyo
public import Logging
import Metrics
public import Redis

/// Klaviyo's rate limits (DESIGN §7, FACTS §5), shared by every consumer process through Redis.
///
/// One sliding-window log per account and operation (`kr:{<account_id>}:rl:<operationId>`, a sorted set of
/// admission times, DESIGN §5). A Lua script reads Redis's clock (`TIME`: one clock for all processes), drops
/// entries older than 60 s and admits a call only if fewer than `burst` calls were admitted in the last
/// 1000 ms and fewer than `steady` in the last 60 000 ms. A sliding log is stricter than Klaviyo's fixed
/// windows whatever their alignment, so all consumers together never exceed either window. Limits are the
/// spec's (``KlaviyoRateLimits/table``) times ``Settings/share``; operations without a limit are not limited.
public struct RateLimiter: Sendable {
    /// Tuning (`RELAY_RATE_LIMIT_SHARE`, `RELAY_RATE_LIMIT_MAX_WAIT`).
    public struct Settings: Sendable, Hashable {
        /// Part of each limit this relay may use, in (0, 1]; each scaled limit is at least 1.
        public var share: Double
        /// Longest a call waits inline (in total) before it is held back for a delayed retry.
        public var maxWait: Duration

        /// Creates settings.
        public init(share: Double = 1.0, maxWait: Duration = .seconds(1)) {
            self.share = share
            self.maxWait = maxWait
        }
    }

    /// What the limiter said about one call.
    public enum Decision: Sendable, Hashable {
        /// Admitted; Redis's clock (epoch milliseconds) at admission.
        case admitted(atMilliseconds: Int64)
        /// Refused; the call would be admitted after this wait (at the earliest).
        case refused(wait: Duration)
    }

    /// Redis.
    public let redis: RedisClient
    /// The settings.
    public let settings: Settings
    /// The effective limits (the table scaled by the share), by operationId.
    public let limits: [String: KlaviyoRateLimit]

    /// Entries live this long past their last admission (a little more than the steady window).
    static let keyTTLMilliseconds = 61_000

    /// KEYS[1] = the bucket; ARGV = burst, steady, a unique member suffix, key TTL (ms).
    /// Returns {0, now_ms} when admitted, {wait_ms, now_ms} when refused.
    static let script = RedisScript(
        """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local key = KEYS[1]
        local burst = tonumber(ARGV[1])
        local steady = tonumber(ARGV[2])
        redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - 60000))
        local wait = 0
        local total = redis.call('ZCARD', key)
        if total >= steady then
            local entry = redis.call('ZRANGE', key, total - steady, total - steady, 'WITHSCORES')
            wait = math.max(wait, tonumber(entry[2]) + 60000 - now)
        end
        local since = string.format('(%d', now - 1000)
        local recent = redis.call('ZCOUNT', key, since, '+inf')
        if recent >= burst then
            local entry = redis.call('ZRANGEBYSCORE', key, since, '+inf', 'WITHSCORES', 'LIMIT', recent - burst, 1)
            wait = math.max(wait, tonumber(entry[2]) + 1000 - now)
        end
        if wait > 0 then
            return {wait, now}
        end
        if total >= steady or recent >= burst then
            return {1, now}
        end
        redis.call('ZADD', key, now, string.format('%d', now) .. '-' .. ARGV[3])
        redis.call('PEXPIRE', key, ARGV[4])
        return {0, now}
        """)

    /// Creates a limiter over `table` (default: the spec's) scaled by `settings.share`.
    public init(
        redis: RedisClient, settings: Settings = Settings(),
        table: [String: KlaviyoRateLimit] = KlaviyoRateLimits.table
    ) {
        self.redis = redis
        self.settings = settings
        self.limits = table.mapValues { $0.scaled(by: settings.share) }
    }

    /// The effective limit of an operation; nil when it is not limited.
    public func limit(for operationID: String) -> KlaviyoRateLimit? {
        limits[operationID]
    }

    /// One admission attempt against Redis for `accountID` and an operation with limit `limit`.
    ///
    /// - Throws: the Redis client's errors (nothing was admitted then, or the admission is lost).
    public func acquire(
        accountID: String, operationID: String, limit: KlaviyoRateLimit
    ) async throws -> Decision {
        let reply = try await redis.run(
            Self.script, keys: [RedisKeys.rateLimit(accountID, bucket: operationID)],
            arguments: [
                String(limit.burst), String(limit.steady), UUID().uuidString, String(Self.keyTTLMilliseconds),
            ])
        guard let parts = reply.array, parts.count == 2, let wait = parts[0].int, let now = parts[1].int else {
            throw RelayError(
                code: .unexpectedReply, message: "rate limiter script answered \(reply), expected {wait_ms, now_ms}")
        }
        return wait <= 0
            ? .admitted(atMilliseconds: now) : .refused(wait: .milliseconds(min(wait, Self.maxWaitMilliseconds)))
    }

    /// Longest wait the script can honestly answer (the steady window); a larger answer (a corrupted key, a
    /// clock jump) is taken as this, so the wait cannot overflow later arithmetic.
    static let maxWaitMilliseconds: Int64 = 60_000

    /// The gate for the calls of one command of `accountID`.
    public func gate(accountID: String, logger: Logger) -> RateLimitGate {
        RateLimitGate(limiter: self, accountID: accountID, logger: logger)
    }
}

/// Admits the Klaviyo calls of one account through the shared ``RateLimiter``: a refused call waits inline
/// while the total wait stays within ``RateLimiter/Settings/maxWait``, else it is held back
/// (``KlaviyoError/Code/heldBack`` with `retryAfter`), and the processor parks the command in a retry tier.
public struct RateLimitGate: KlaviyoCallGate {
    /// The limiter.
    public let limiter: RateLimiter
    /// The account (the HeroPixel account id of the command).
    public let accountID: String
    let logger: Logger
    /// Redis failures are retried with backoff this many times (like the processor's other Redis steps),
    /// then the call fails with ``KlaviyoError/Code/gateUnavailable``.
    var maxRedisAttempts = 100

    /// Creates a gate.
    public init(limiter: RateLimiter, accountID: String, logger: Logger) {
        self.limiter = limiter
        self.accountID = accountID
        self.logger = logger
    }

    /// Returns once the call is admitted; throws `.heldBack` when it would have to wait longer than the
    /// maximum inline wait, `.gateUnavailable` when Redis stays unreachable or the task is cancelled.
    public func admit(operationID: String, credential: KlaviyoCredential) async throws(KlaviyoError) {
        guard let limit = limiter.limit(for: operationID) else { return }
        var waited = Duration.zero
        while true {
            switch try await acquire(operationID: operationID, limit: limit, credential: credential) {
            case .admitted:
                if waited > .zero {
                    Self.count(operationID, outcome: "waited")
                    logger.debug(
                        "rate limiter admitted the call after a wait",
                        metadata: [
                            LogKeys.klaviyoOperation: "\(operationID)",
                            "rate_limit_wait_ms": "\(waited.wholeMilliseconds)",
                        ])
                }
                return
            case .refused(let wait):
                if waited + wait <= limiter.settings.maxWait {
                    do {
                        try await Task.sleep(for: wait)
                    } catch {
                        throw KlaviyoError(
                            code: .gateUnavailable, operationID: operationID,
                            message: "cancelled while waiting for the rate limiter", requestMayHaveBeenSent: false,
                            usedOAuth: credential.isOAuth)
                    }
                    waited += wait
                    continue
                }
                Self.count(operationID, outcome: "held_back")
                throw KlaviyoError(
                    code: .heldBack, operationID: operationID,
                    message: "held back by the relay's rate limiter: \(operationID) allows \(limit.burst)/s and "
                        + "\(limit.steady)/min per account (Klaviyo's limits × RELAY_RATE_LIMIT_SHARE "
                        + "\(limiter.settings.share)); next slot in \(wait.wholeMilliseconds)ms",
                    retryAfter: wait, requestMayHaveBeenSent: false, usedOAuth: credential.isOAuth)
            }
        }
    }

    /// One admission attempt; Redis failures are retried with backoff.
    func acquire(
        operationID: String, limit: KlaviyoRateLimit, credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> RateLimiter.Decision {
        var backoff = Duration.milliseconds(50)
        var attempts = 0
        while true {
            do {
                return try await limiter.acquire(accountID: accountID, operationID: operationID, limit: limit)
            } catch {
                attempts += 1
                if attempts == 1 || attempts % 20 == 0 {
                    logger.warning(
                        "rate limiter lookup failed; retrying",
                        metadata: [LogKeys.klaviyoOperation: "\(operationID)", LogKeys.errorDetail: "\(error)"])
                }
                if attempts >= maxRedisAttempts {
                    throw KlaviyoError(
                        code: .gateUnavailable, operationID: operationID,
                        message: "rate limiter unavailable after \(attempts) attempts: \(error)",
                        requestMayHaveBeenSent: false, usedOAuth: credential.isOAuth)
                }
                do {
                    try await Task.sleep(for: backoff * Double.random(in: 0.5...1.0))
                } catch {
                    throw KlaviyoError(
                        code: .gateUnavailable, operationID: operationID,
                        message: "cancelled while waiting for the rate limiter", requestMayHaveBeenSent: false,
                        usedOAuth: credential.isOAuth)
                }
                backoff = min(backoff * 2, .seconds(2))
            }
        }
    }

    static func count(_ operationID: String, outcome: String) {
        Counter(label: "relay_rate_limit_waits_total", dimensions: [("operation", operationID), ("outcome", outcome)])
            .increment()
    }
}
