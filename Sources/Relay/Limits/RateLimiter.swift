import Foundation
public import Klaviyo
public import Logging
import Metrics
public import Redis
import Synchronization

/// Klaviyo's rate limits (docs/operations.md, "Rate limits"), shared by every consumer process through Redis.
///
/// One schedule per account and operation (`kr:{<account_id>}:rl:<operationId>`, a sorted set, docs/contracts.md)
/// holds the time of every call admitted in the last minute (the last day, for operations with a daily cap)
/// and of every slot reserved in the future. A Lua script reads Redis's clock (`TIME`: one clock for all
/// processes) and gives a call the earliest time `t`, no earlier than any entry already in the schedule, at
/// which fewer than `burst` entries fall in the window `(t - 1 s - slack, t]`, fewer than `steady` in
/// `(t - 60 s - slack, t]` and fewer than `daily` in `(t - 24 h - slack, t]`. When `t` is now the call is
/// admitted; when it is later and within ``Settings/horizon``, the slot is **reserved** for this call: it
/// waits inline when the slot is near (``Settings/maxWait``), else its command is parked in a retry tier no
/// longer than the wait and claims the same slot when it comes back. Slots are handed out in order, so a
/// backlog keeps its order and every slot of the quota is used; a call that starts more than `slack` after its
/// slot (a parked command that came back late) gives the slot up and takes a new one.
///
/// Why that never exceeds Klaviyo's windows, whatever their alignment: every call starts within `slack` of
/// its slot, so the calls that start in any window of length `w` hold slots in a window of length
/// `w + slack`, which by construction holds at most the limit. Limits are the spec's
/// (``KlaviyoRateLimits/table``) times ``Settings/share``; operations without a limit are not limited.
public struct RateLimiter: Sendable {
    /// Tuning (`RELAY_RATE_LIMIT_SHARE`, `RELAY_RATE_LIMIT_MAX_WAIT`; the horizon and the slack keep their defaults).
    public struct Settings: Sendable, Hashable {
        /// Part of each limit this relay may use, in (0, 1]; each scaled limit is at least 1.
        public var share: Double
        /// Longest a call waits inline for its slot; a later slot parks the command in a retry tier.
        public var maxWait: Duration
        /// Furthest ahead a slot is reserved; a call whose slot would be later is refused (its command is
        /// parked and asks again), so a huge backlog cannot grow a schedule without bound.
        public var horizon: Duration
        /// How late after its slot a call may still start (and how much wider than Klaviyo's windows the
        /// schedule's windows are).
        public var slack: Duration

        /// Creates settings.
        public init(
            share: Double = 1.0, maxWait: Duration = Self.defaultMaxWait, horizon: Duration = .seconds(900),
            slack: Duration = .milliseconds(250)
        ) {
            self.share = share
            self.maxWait = maxWait
            self.horizon = horizon
            self.slack = slack
        }

        /// 1.5 s: the shortest retry tier (1 s) plus the margin a parked command is due back before its slot
        /// (`RetryPolicy.defaultHeldBackReturnMargin`), so a wait too short to park with that margin is waited
        /// inline.
        public static let defaultMaxWait: Duration = .milliseconds(1500)
    }

    /// A slot reserved for one call of an operation (carried by a parked command, sealed).
    public struct Reservation: Sendable, Hashable, CustomStringConvertible {
        /// The operation the slot is for.
        public var operationID: String
        /// The schedule entry.
        public var member: String
        /// The slot, Redis's clock in epoch milliseconds.
        public var slotMilliseconds: Int64

        /// Creates a reservation.
        public init(operationID: String, member: String, slotMilliseconds: Int64) {
            self.operationID = operationID
            self.member = member
            self.slotMilliseconds = slotMilliseconds
        }

        /// `<operation> <member> <slot ms>`: the form of the `x-relay-slot` header.
        public var description: String { "\(operationID) \(member) \(slotMilliseconds)" }

        /// Parses ``description``; nil when malformed (a malformed header counts as absent).
        public init?(header: String) {
            let parts = header.split(separator: " ")
            guard parts.count == 3, parts[0].count <= 100, parts[1].count <= 100, let slot = Int64(parts[2]) else {
                return nil
            }
            self.init(operationID: String(parts[0]), member: String(parts[1]), slotMilliseconds: slot)
        }
    }

    /// What the limiter said about one call.
    public enum Decision: Sendable, Hashable {
        /// Admitted; Redis's clock (epoch milliseconds) at admission.
        case admitted(atMilliseconds: Int64)
        /// A slot `wait` from now is this call's (reserved now, or claimed again).
        case reserved(Reservation, wait: Duration)
        /// Refused; the call would be admitted after this wait (at the earliest). Nothing was reserved.
        case refused(wait: Duration)
    }

    /// How one admission asks.
    enum Mode: String {
        /// Now or never: refused when the call cannot start now (nothing reserved).
        case now
        /// Now, or a reserved slot within the horizon.
        case reserve
        /// The slot of an earlier reservation (its member), or a new one when it is gone or missed.
        case claim
        /// How long until a slot would be free; never changes the schedule.
        case peek
    }

    /// Redis.
    public let redis: RedisClient
    /// The settings.
    public let settings: Settings
    /// The effective limits (the table scaled by the share), by operationId.
    public let limits: [String: KlaviyoRateLimit]

    /// KEYS[1] = the schedule, KEYS[2] = its pause (a 429's end, ``pause(accountID:operationID:for:)``); ARGV =
    /// burst, steady, daily (0 = none), member, mode, slack ms, horizon ms.
    /// Returns {status, wait_ms, now_ms, slot_ms}: status 0 admitted now, 1 slot reserved (or claimed),
    /// 2 refused (nothing reserved), 3 peek.
    static let script = RedisScript(
        """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local key = KEYS[1]
        local burst = tonumber(ARGV[1])
        local steady = tonumber(ARGV[2])
        local daily = tonumber(ARGV[3])
        local member = ARGV[4]
        local mode = ARGV[5]
        local slack = tonumber(ARGV[6])
        local horizon = tonumber(ARGV[7])
        local keep = 60000 + slack
        if daily > 0 then keep = 86400000 + slack end
        redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('(%d', now - keep))
        local pause = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
        if mode == 'claim' then
            local score = redis.call('ZSCORE', key, member)
            if score then
                score = tonumber(score)
                if now <= score + slack and score >= pause then
                    return {1, math.max(score - now, 0), now, score}
                end
                redis.call('ZREM', key, member)
            end
            mode = 'reserve'
        end
        local slot = math.max(now, pause)
        local n = redis.call('ZCARD', key)
        if n > 0 then
            local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
            slot = math.max(slot, tonumber(last[2]))
            local function after(limit, window)
                if limit > 0 and n >= limit then
                    local entry = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
                    slot = math.max(slot, tonumber(entry[2]) + window)
                end
            end
            after(burst, 1000 + slack)
            after(steady, 60000 + slack)
            after(daily, 86400000 + slack)
        end
        if mode == 'peek' then
            return {3, slot - now, now, slot}
        end
        if slot > now and (mode == 'now' or slot - now > horizon) then
            return {2, slot - now, now, slot}
        end
        redis.call('ZADD', key, slot, member)
        redis.call('PEXPIRE', key, slot - now + keep + 1000)
        if slot == now then
            return {0, 0, now, slot}
        end
        return {1, slot - now, now, slot}
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

    /// Admits a call now or refuses it, reserving nothing.
    ///
    /// - Throws: the Redis client's errors (nothing was admitted then, or the admission is lost).
    public func acquire(
        accountID: String, operationID: String, limit: KlaviyoRateLimit
    ) async throws -> Decision {
        try await ask(.now, accountID: accountID, operationID: operationID, limit: limit, member: Self.newMember())
    }

    /// Admits a call now, or reserves its slot (within `horizon`, default the settings'), or refuses it. With
    /// `claiming`, the slot of that earlier reservation is this call's again unless it was missed by more than
    /// the slack.
    public func reserve(
        accountID: String, operationID: String, limit: KlaviyoRateLimit, claiming: Reservation? = nil,
        horizon: Duration? = nil
    ) async throws -> Decision {
        if let claiming, claiming.operationID == operationID {
            return try await ask(
                .claim, accountID: accountID, operationID: operationID, limit: limit, member: claiming.member,
                horizon: horizon)
        }
        return try await ask(
            .reserve, accountID: accountID, operationID: operationID, limit: limit, member: Self.newMember(),
            horizon: horizon)
    }

    /// How long until the operation's next free slot for `accountID` (.zero when a call could start now): the
    /// depth of the account's backlog for that operation. Changes nothing.
    public func backlog(accountID: String, operationID: String) async throws -> Duration {
        guard let limit = limit(for: operationID) else { return .zero }
        switch try await ask(.peek, accountID: accountID, operationID: operationID, limit: limit, member: "-") {
        case .refused(let wait), .reserved(_, let wait): return wait
        case .admitted: return .zero
        }
    }

    func ask(
        _ mode: Mode, accountID: String, operationID: String, limit: KlaviyoRateLimit, member: String,
        horizon: Duration? = nil
    ) async throws -> Decision {
        let reply = try await redis.run(
            Self.script,
            keys: [
                RedisKeys.rateLimit(accountID, bucket: operationID),
                RedisKeys.rateLimitPause(accountID, bucket: operationID),
            ],
            arguments: [
                String(limit.burst), String(limit.steady), String(limit.daily ?? 0), member, mode.rawValue,
                String(settings.slack.wholeMilliseconds), String((horizon ?? settings.horizon).wholeMilliseconds),
            ])
        guard let parts = reply.array, parts.count == 4, let status = parts[0].int, let wait = parts[1].int,
            let now = parts[2].int, let slot = parts[3].int
        else {
            throw RelayError(
                code: .unexpectedReply,
                message: "rate limiter script answered \(reply), expected {status, wait_ms, now_ms, slot_ms}")
        }
        // A wait beyond what the windows can explain (a corrupted key, a clock jump) is taken as the longest
        // honest one, so it cannot overflow later arithmetic.
        let longest = limit.daily == nil ? Self.maxWaitMilliseconds : Self.maxDailyWaitMilliseconds
        let clamped = Duration.milliseconds(min(max(wait, 0), longest))
        switch status {
        case 0:
            return .admitted(atMilliseconds: now)
        case 1:
            let reservation = Reservation(operationID: operationID, member: member, slotMilliseconds: slot)
            return .reserved(reservation, wait: clamped)
        case 3:
            return clamped == .zero ? .admitted(atMilliseconds: now) : .refused(wait: clamped)
        default:
            return .refused(wait: max(clamped, .milliseconds(1)))
        }
    }

    static func newMember() -> String { UUID().uuidString.lowercased() }

    /// KEYS[1] = the pause; ARGV = milliseconds. Moves the pause to now + ARGV[1] (Redis time) unless it is
    /// already later; returns the pause's end.
    static let pauseScript = RedisScript(
        """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local untilMs = now + tonumber(ARGV[1])
        local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
        if current >= untilMs then return current end
        redis.call('SET', KEYS[1], untilMs, 'PX', tonumber(ARGV[1]) + 1000)
        return untilMs
        """)

    /// Klaviyo answered 429 for this account and operation: no call of it is admitted (or reserved) before
    /// `retryAfter` has passed, by any process. The wait is clamped like every `Retry-After`.
    public func pause(accountID: String, operationID: String, for retryAfter: Duration) async throws {
        let milliseconds = max(1, Clamp.retryAfter(retryAfter).wholeMilliseconds)
        _ = try await redis.run(
            Self.pauseScript, keys: [RedisKeys.rateLimitPause(accountID, bucket: operationID)],
            arguments: [String(milliseconds)])
    }

    /// Longest wait the steady window can honestly answer, plus a horizon's worth of reservations ahead.
    static let maxWaitMilliseconds: Int64 = 3_600_000
    /// Longest wait a daily cap can honestly answer.
    static let maxDailyWaitMilliseconds: Int64 = 86_400_000 + 3_600_000

    /// The gate for the calls of one command of `accountID`; `slot` holds the slot its command reserved on an
    /// earlier delivery (from its sealed `x-relay-slot` header) and receives the slot of a call held back.
    public func gate(
        accountID: String, slot: CarriedReservation = CarriedReservation(), logger: Logger
    ) -> RateLimitGate {
        RateLimitGate(limiter: self, accountID: accountID, slot: slot, logger: logger)
    }
}

/// The slot a command carries between deliveries: the one it reserved before it was parked (claimed by its
/// next call of that operation, once), and, after a call is held back, the slot to park it with.
public final class CarriedReservation: Sendable {
    let value: Mutex<RateLimiter.Reservation?>

    /// Creates a box holding `reservation`.
    public init(_ reservation: RateLimiter.Reservation? = nil) {
        value = Mutex(reservation)
    }

    /// The slot held now (nil: none).
    public var reservation: RateLimiter.Reservation? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }

    /// Takes the slot for a call of `operationID`, once: later calls reserve their own.
    func take(for operationID: String) -> RateLimiter.Reservation? {
        value.withLock { slot in
            guard let taken = slot, taken.operationID == operationID else { return nil }
            slot = nil
            return taken
        }
    }
}

/// Admits the Klaviyo calls of one account through the shared ``RateLimiter``: a call whose slot is within
/// ``RateLimiter/Settings/maxWait`` waits for it inline; a later slot is reserved and the call held back
/// (``KlaviyoError/Code/heldBack`` with `retryAfter`, the slot left in ``CarriedReservation``), and the processor
/// parks the command in a retry tier no longer than the wait; the command claims its slot when it comes back.
public struct RateLimitGate: KlaviyoCallGate {
    /// The limiter.
    public let limiter: RateLimiter
    /// The account (the HeroPixel account id of the command).
    public let accountID: String
    /// The slot the command reserved on an earlier delivery; receives the slot of a held-back call.
    public let slot: CarriedReservation
    let logger: Logger
    /// Redis failures are retried with backoff this many times (like the processor's other Redis steps),
    /// then the call fails with ``KlaviyoError/Code/gateUnavailable``.
    var maxRedisAttempts = 100
    /// Longest inline wait for a slot (nil: the limiter's ``RateLimiter/Settings/maxWait``).
    public var maxWait: Duration?
    /// Furthest slot reserved (nil: the limiter's ``RateLimiter/Settings/horizon``).
    var horizon: Duration?

    /// A gate for a call shared by several commands (an event batch): its own maximum inline wait (the waiting
    /// commands hold no consumer slot, only unacked deliveries), and no reservation beyond it: a held-back
    /// shared call is refused, reserving nothing, because no command carries its slot to claim it later. (It
    /// used to reserve one anyway: each held-back batch left an unused slot in the schedule, and batches retried
    /// by several processes kept an account's events schedule full, so none was admitted.)
    public func forSharedCall(maxWait: Duration) -> RateLimitGate {
        var gate = RateLimitGate(limiter: limiter, accountID: accountID, logger: logger)
        gate.maxWait = maxWait
        gate.horizon = maxWait
        return gate
    }

    /// Creates a gate.
    public init(
        limiter: RateLimiter, accountID: String, slot: CarriedReservation = CarriedReservation(), logger: Logger
    ) {
        self.limiter = limiter
        self.accountID = accountID
        self.slot = slot
        self.logger = logger
    }

    /// Returns once the call may start; throws `.heldBack` when its slot is further away than the maximum
    /// inline wait (or beyond the horizon), `.gateUnavailable` when Redis stays unreachable or the task is
    /// cancelled.
    public func admit(operationID: String, credential: KlaviyoCredential) async throws(KlaviyoError) {
        guard let limit = limiter.limit(for: operationID) else { return }
        var claiming = slot.take(for: operationID)
        while true {
            switch try await acquire(operationID: operationID, limit: limit, claiming: claiming, credential: credential)
            {
            case .admitted:
                return
            case .reserved(let reservation, let wait) where wait <= (maxWait ?? limiter.settings.maxWait):
                let due = ContinuousClock.now + wait
                do {
                    try await Task.sleep(until: due)
                } catch {
                    throw KlaviyoError(
                        code: .gateUnavailable, operationID: operationID,
                        message: "cancelled while waiting for the rate limiter", requestMayHaveBeenSent: false,
                        usedOAuth: credential.isOAuth)
                }
                // Woken too late (a starved process): the slot may no longer be safe to use; ask Redis again,
                // which confirms it or hands out a new one.
                if ContinuousClock.now - due > limiter.settings.slack / 2 {
                    claiming = reservation
                    continue
                }
                Self.count(operationID, outcome: "waited")
                logger.trace(
                    "rate limiter slot reached",
                    metadata: [
                        LogKeys.klaviyoOperation: "\(operationID)", "rate_limit_wait_ms": "\(wait.wholeMilliseconds)",
                        "rate_limit_slot": "\(reservation.slotMilliseconds)",
                    ])
                return
            case .reserved(let reservation, let wait):
                slot.reservation = reservation
                Self.count(operationID, outcome: "held_back")
                throw heldBack(operationID, limit: limit, wait: wait, credential: credential, reserved: true)
            case .refused(let wait):
                slot.reservation = nil
                Self.count(operationID, outcome: "held_back")
                throw heldBack(operationID, limit: limit, wait: wait, credential: credential, reserved: false)
            }
        }
    }

    /// Klaviyo's 429: the operation's schedule for this account pauses for `retryAfter` in every process (FACTS
    /// §10.2: pause the bucket rather than let each command find out). Calls of other operations go on. Best
    /// effort: a Redis failure is logged, and the command's own retry waits the `Retry-After` anyway.
    public func throttled(operationID: String, retryAfter: Duration) async {
        guard limiter.limit(for: operationID) != nil else { return }
        do {
            try await limiter.pause(accountID: accountID, operationID: operationID, for: retryAfter)
            Self.count(operationID, outcome: "paused")
            logger.warning(
                "klaviyo answered 429: the operation's calls for this account pause",
                metadata: [
                    LogKeys.klaviyoOperation: "\(operationID)", "retry_after_ms": "\(retryAfter.wholeMilliseconds)",
                ])
        } catch {
            logger.warning(
                "could not pause the rate limiter after a 429",
                metadata: [LogKeys.klaviyoOperation: "\(operationID)", LogKeys.errorDetail: "\(error)"])
        }
    }

    func heldBack(
        _ operationID: String, limit: KlaviyoRateLimit, wait: Duration, credential: KlaviyoCredential, reserved: Bool
    ) -> KlaviyoError {
        let daily = limit.daily.map { " and \($0)/day" } ?? ""
        return KlaviyoError(
            code: .heldBack, operationID: operationID,
            message: "held back by the relay's rate limiter: \(operationID) allows \(limit.burst)/s, "
                + "\(limit.steady)/min\(daily) per account (Klaviyo's limits × RELAY_RATE_LIMIT_SHARE "
                + "\(limiter.settings.share)); "
                + (reserved
                    ? "slot reserved in \(wait.wholeMilliseconds)ms" : "next slot in \(wait.wholeMilliseconds)ms"),
            retryAfter: wait, requestMayHaveBeenSent: false, usedOAuth: credential.isOAuth)
    }

    /// One admission attempt; Redis failures are retried with backoff.
    func acquire(
        operationID: String, limit: KlaviyoRateLimit, claiming: RateLimiter.Reservation?,
        credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> RateLimiter.Decision {
        var backoff = Duration.milliseconds(50)
        var attempts = 0
        while true {
            do {
                return try await limiter.reserve(
                    accountID: accountID, operationID: operationID, limit: limit, claiming: claiming,
                    horizon: horizon)
            } catch {
                attempts += 1
                // The account's Redis Cluster shard is down (its primary gone for longer than the client's retry
                // timeout, no replica to take over): retrying for minutes would hold the command's consumer slot,
                // or an event batch's deliveries, for nothing. Give up at once; the command is handed back, and its
                // next delivery is parked by the processor's first Redis step on the same shard.
                if attempts >= maxRedisAttempts || RedisError.isShardDown(error) {
                    throw KlaviyoError(
                        code: .gateUnavailable, operationID: operationID,
                        message: "rate limiter unavailable after \(attempts) attempts: \(error)",
                        requestMayHaveBeenSent: false, usedOAuth: credential.isOAuth)
                }
                if attempts == 1 || attempts % 20 == 0 {
                    logger.warning(
                        "rate limiter lookup failed; retrying",
                        metadata: [LogKeys.klaviyoOperation: "\(operationID)", LogKeys.errorDetail: "\(error)"])
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
        waits[operationID, outcome].increment()
    }

    private static let waits = MetricHandles {
        Counter(label: "relay_rate_limit_waits_total", dimensions: [("operation", $0), ("outcome", $1)])
    }
}
