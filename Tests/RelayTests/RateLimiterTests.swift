import Foundation
import Klaviyo
import Logging
import Redis
import Relay
import Synchronization
import Testing

/// The shared limiter against a real Redis (`RELAY_REDIS_URL`, default the local 6379; tests fail, never
/// skip, when it is unreachable). Every test uses its own account ids, so runs never share buckets.
@Suite("Rate limiter (Redis)")
struct RateLimiterTests {
    static var url: String {
        ProcessInfo.processInfo.environment["RELAY_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
    }

    static var logger: Logger {
        var logger = Logger(label: "rate-limiter-tests")
        logger.logLevel = .warning
        return logger
    }

    static func client(poolSize: Int = 2) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url)
        configuration.poolSize = poolSize
        return RedisClient(configuration: configuration, logger: logger)
    }

    static let operation = "test_operation"
    /// For the concurrency test: both windows bind.
    static let table = [operation: KlaviyoRateLimit(burst: 5, steady: 12)]
    /// Only the burst window binds (a refusal is the 1 s window's).
    static let burstTable = [operation: KlaviyoRateLimit(burst: 5, steady: 1000)]
    /// Only the steady window binds: its refusals last up to a minute, so tests built on them do not depend
    /// on how fast a loaded machine makes the calls.
    static let steadyTable = [operation: KlaviyoRateLimit(burst: 100, steady: 5)]

    static func account() -> String { "rl-test-\(UUID().uuidString.lowercased())" }

    static func limiter(
        _ redis: RedisClient, share: Double = 1.0, maxWait: Duration = .seconds(1),
        table: [String: KlaviyoRateLimit] = table
    ) -> RateLimiter {
        RateLimiter(redis: redis, settings: .init(share: share, maxWait: maxWait), table: table)
    }

    /// Admits `count` calls one after the other and returns Redis's admission times; fails on a refusal.
    static func admit(_ count: Int, _ limiter: RateLimiter, account: String) async throws -> [Int64] {
        var times: [Int64] = []
        let limit = try #require(limiter.limit(for: operation))
        for _ in 0..<count {
            let decision = try await limiter.acquire(accountID: account, operationID: operation, limit: limit)
            guard case .admitted(let at) = decision else {
                Issue.record("call \(times.count + 1) of \(count) was refused: \(decision)")
                return times
            }
            times.append(at)
        }
        return times
    }

    /// Calls until the limiter refuses (however long the calls take on a loaded machine): the admission
    /// times and the refusal's wait.
    static func callUntilRefused(
        _ limiter: RateLimiter, account: String
    ) async throws -> (times: [Int64], wait: Duration) {
        var times: [Int64] = []
        let limit = try #require(limiter.limit(for: operation))
        for _ in 0..<200 {
            switch try await limiter.acquire(accountID: account, operationID: operation, limit: limit) {
            case .admitted(let at): times.append(at)
            case .refused(let wait): return (times, wait)
            case .reserved(let reservation, _):
                Issue.record("acquire (now or never) reserved a slot: \(reservation)")
                throw CancellationError()
            }
        }
        Issue.record("200 calls in a row were admitted: \(limit)")
        throw CancellationError()
    }

    /// Several clients (as separate processes would) keep calling, retrying early after refusals, until the
    /// limiter's answers say the steady window is full (a wait longer than the burst window could cause):
    /// the admissions never exceed 5 in any 1000 ms nor 12 in any 60 s, and exactly 12 get through.
    @Test func concurrentClientsNeverExceedEitherWindow() async throws {
        let clients = try (0..<4).map { _ in try Self.client() }
        defer { Task { for client in clients { await client.shutdown() } } }
        let account = Self.account()
        let seen = Seen()
        let deadline = ContinuousClock.now + .seconds(60)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                let limiter = Self.limiter(client)
                let limit = try #require(limiter.limit(for: Self.operation))
                for _ in 0..<3 {
                    group.addTask {
                        while ContinuousClock.now < deadline {
                            switch try await limiter.acquire(
                                accountID: account, operationID: Self.operation, limit: limit)
                            {
                            case .admitted(let at):
                                seen.admitted.withLock { $0.append(at) }
                            case .reserved(let reservation, _):
                                Issue.record("acquire (now or never) reserved a slot: \(reservation)")
                                return
                            case .refused(let wait):
                                seen.refusals.withLock { $0 += 1 }
                                #expect(wait > .zero && wait <= .seconds(60) + RateLimiter.Settings().slack)
                                // A burst refusal waits at most 1 s; longer means the steady window is full.
                                if wait > .seconds(5) { return }
                                // Ask again early (after at most 50 ms), so a limiter that only works for
                                // callers who wait as told would be caught.
                                try await Task.sleep(for: min(wait, .milliseconds(Int.random(in: 5...50))))
                            }
                        }
                        Issue.record("the steady window never filled within 60 s")
                    }
                }
            }
            try await group.waitForAll()
        }
        let times = seen.admitted.withLock { $0 }.sorted()
        #expect(times.count == 12, "admitted \(times.count): \(times)")
        #expect(seen.refusals.withLock { $0 } > 0)
        for index in times.indices where index + 5 < times.count {
            #expect(times[index + 5] - times[index] >= 1000, "6 calls within 1000 ms: \(times)")
        }
        if let first = times.first, let last = times.last {
            #expect(last - first < 60_000)
        }
        // The burst was used: some 1000 ms held 5 admissions (a limiter admitting less would not show it).
        #expect(times.indices.contains { $0 + 4 < times.count && times[$0 + 4] - times[$0] < 1000 }, "\(times)")
        let stored = try await clients[0].send(["ZCARD", RedisKeys.rateLimit(account, bucket: Self.operation)])
        #expect(stored.int == 12)
        let ttl = try await clients[0].send(["PTTL", RedisKeys.rateLimit(account, bucket: Self.operation)])
        #expect((1...62_250).contains(ttl.int ?? -1))
    }

    @Test func anotherAccountIsIndependent() async throws {
        let redis = try Self.client()
        defer { Task { await redis.shutdown() } }
        let limiter = Self.limiter(redis, table: Self.steadyTable)
        let limit = try #require(limiter.limit(for: Self.operation))
        let busy = Self.account()
        _ = try await Self.admit(5, limiter, account: busy)
        guard case .refused = try await limiter.acquire(accountID: busy, operationID: Self.operation, limit: limit)
        else {
            Issue.record("the sixth call within a minute was admitted")
            return
        }
        let other = try await Self.admit(5, limiter, account: Self.account())
        #expect(other.count == 5)
        // Another operation of the same account has its own bucket.
        let otherOperation = try await limiter.acquire(
            accountID: busy, operationID: "another_operation", limit: limit)
        if case .refused = otherOperation { Issue.record("another operation shared the bucket") }
    }

    @Test func aRefusedBurstCallIsAdmittedAfterTheWait() async throws {
        let redis = try Self.client()
        defer { Task { await redis.shutdown() } }
        let limiter = Self.limiter(redis, table: Self.burstTable)
        let limit = try #require(limiter.limit(for: Self.operation))
        let account = Self.account()
        let (times, wait) = try await Self.callUntilRefused(limiter, account: account)
        // Refused only once the last five admissions fell within one window: one second widened by the limiter's
        // slack (the window Klaviyo counts may start a little earlier than ours).
        try #require(times.count >= 5)
        let fifthLast = times[times.count - 5]
        let window = Int64((Duration.milliseconds(1000) + limiter.settings.slack) / .milliseconds(1))
        #expect(times[times.count - 1] - fifthLast < window, "\(times)")
        #expect(wait > .zero)
        #expect(wait <= .milliseconds(1000) + limiter.settings.slack)
        try await Task.sleep(for: wait)
        let retried = try await limiter.acquire(accountID: account, operationID: Self.operation, limit: limit)
        guard case .admitted(let at) = retried else {
            Issue.record("still refused after the wait the limiter gave: \(retried)")
            return
        }
        #expect(at - fifthLast >= 1000)
    }

    @Test func theSteadyWindowRefusesForUpToAMinute() async throws {
        let redis = try Self.client()
        defer { Task { await redis.shutdown() } }
        let table = [Self.operation: KlaviyoRateLimit(burst: 10, steady: 3)]
        let limiter = RateLimiter(redis: redis, table: table)
        let limit = try #require(limiter.limit(for: Self.operation))
        let account = Self.account()
        let started = ContinuousClock.now
        _ = try await Self.admit(3, limiter, account: account)
        let decision = try await limiter.acquire(accountID: account, operationID: Self.operation, limit: limit)
        guard case .refused(let wait) = decision else {
            Issue.record("the fourth call within a minute was admitted")
            return
        }
        // Until the first admission leaves the 60 s window: 60 s minus the time since it (at most what
        // passed since just before it, however slow the machine), plus a little clock slack.
        #expect(wait >= .seconds(60) - (ContinuousClock.now - started) - .milliseconds(100))
        #expect(wait <= .seconds(60) + RateLimiter.Settings().slack)
    }

    @Test func gateWithoutInlineWaitHoldsTheCallBack() async throws {
        let redis = try Self.client()
        defer { Task { await redis.shutdown() } }
        let limiter = Self.limiter(redis, maxWait: .zero, table: Self.burstTable)
        let account = Self.account()
        let gate = limiter.gate(accountID: account, logger: Self.logger)
        var admitted = 0
        do {
            while admitted < 200 {
                try await gate.admit(operationID: Self.operation, credential: .apiKey("pk_secret_value"))
                admitted += 1
            }
            Issue.record("200 calls admitted without a hold-back")
        } catch {
            #expect(admitted >= 5)
            #expect(error.code == .heldBack)
            #expect(!error.requestMayHaveBeenSent)
            let retryAfter = try #require(error.retryAfter)
            #expect(retryAfter > .zero && retryAfter <= .seconds(1) + limiter.settings.slack)
            #expect(error.retryDecision == .retryAfter(retryAfter))
            #expect(error.message.contains(Self.operation))
            #expect(error.message.contains("5/s") && error.message.contains("1000/min"))
            #expect(!error.description.contains("pk_secret_value"))
        }
    }

    /// A shared call (an event batch) held back reserves nothing: no command carries its slot to claim it,
    /// so a reservation would only fill the account's schedule. (Each held-back batch used to leave one.)
    @Test func aHeldBackSharedCallReservesNothing() async throws {
        let redis = try Self.client()
        defer { Task { await redis.shutdown() } }
        let limiter = Self.limiter(redis, maxWait: .seconds(1), table: Self.steadyTable)
        let account = Self.account()
        _ = try await Self.callUntilRefused(limiter, account: account)
        let key = RedisKeys.rateLimit(account, bucket: Self.operation)
        let before = try await redis.send(["ZCARD", key]).int
        let shared = limiter.gate(accountID: account, logger: Self.logger).forSharedCall(maxWait: .milliseconds(10))
        for _ in 0..<3 {
            await #expect {
                try await shared.admit(operationID: Self.operation, credential: .apiKey("pk_test"))
            } throws: { error in
                (error as? KlaviyoError)?.code == .heldBack
                    && (error as? KlaviyoError)?.retryAfter ?? .zero > .seconds(1)
            }
        }
        #expect(try await redis.send(["ZCARD", key]).int == before, "no slot reserved by the shared call")
        // A command's own gate still reserves its slot to claim later.
        let own = limiter.gate(accountID: account, logger: Self.logger)
        await #expect(throws: KlaviyoError.self) {
            try await own.admit(operationID: Self.operation, credential: .apiKey("pk_test"))
        }
        #expect(own.slot.reservation != nil)
        #expect(try await redis.send(["ZCARD", key]).int == (before ?? 0) + 1)
    }

    /// Klaviyo's 429 pauses the operation's schedule for the account in every process: nothing is admitted or
    /// reserved before `Retry-After` has passed (a slot claimed from before the pause is moved after it), a
    /// shorter 429 never shortens the pause, and other accounts go on.
    @Test func aKlaviyo429PausesTheOperationForEveryProcess() async throws {
        let redis = try Self.client()
        defer { Task { await redis.shutdown() } }
        let limiter = Self.limiter(redis, table: Self.burstTable)
        let otherProcess = Self.limiter(redis, table: Self.burstTable)
        let limit = try #require(limiter.limit(for: Self.operation))
        let account = Self.account()
        // A slot reserved before the 429 (behind a full burst window), to be claimed after it. On a loaded
        // machine the one-second window may slide between the refusal and the reservation; a slot admitted
        // now fills it again, so ask until one is reserved.
        _ = try await Self.callUntilRefused(limiter, account: account)
        var reserved: RateLimiter.Reservation?
        for _ in 0..<50 where reserved == nil {
            switch try await limiter.reserve(accountID: account, operationID: Self.operation, limit: limit) {
            case .reserved(let reservation, _): reserved = reservation
            case .admitted: continue
            case .refused(let wait):
                Issue.record("refused instead of reserved behind a full burst window: \(wait)")
                return
            }
        }
        guard let early = reserved else {
            Issue.record("no slot reserved behind a full burst window")
            return
        }
        try await limiter.pause(accountID: account, operationID: Self.operation, for: .seconds(30))
        try await otherProcess.pause(accountID: account, operationID: Self.operation, for: .seconds(1))
        for candidate in [limiter, otherProcess] {
            guard
                case .refused(let wait) = try await candidate.acquire(
                    accountID: account, operationID: Self.operation, limit: limit)
            else {
                Issue.record("admitted during the pause")
                return
            }
            // Well beyond the shorter (1 s) pause, however long the machine stalled since.
            #expect(wait > .seconds(10) && wait <= .seconds(30), "the longer pause holds: \(wait)")
        }
        guard
            case .reserved(let claimed, let wait) = try await otherProcess.reserve(
                accountID: account, operationID: Self.operation, limit: limit, claiming: early,
                horizon: .seconds(60))
        else {
            Issue.record("the claim found no slot after the pause")
            return
        }
        #expect(wait > .seconds(10), "the slot reserved before the pause moved after it: \(wait)")
        #expect(claimed.slotMilliseconds > early.slotMilliseconds + 25_000)
        guard
            case .admitted = try await limiter.acquire(
                accountID: Self.account(), operationID: Self.operation, limit: limit)
        else {
            Issue.record("another account was paused too")
            return
        }
    }

    /// The gate hears Klaviyo's 429 through the client: the operation's next call is held back for the
    /// `Retry-After` instead of being sent to be refused again.
    @Test func aClientsThrottledCallPausesItsGate() async throws {
        let redis = try Self.client()
        defer { Task { await redis.shutdown() } }
        let limiter = RateLimiter(
            redis: redis, settings: .init(maxWait: .seconds(1)),
            table: ["get_accounts": KlaviyoRateLimit(burst: 1000, steady: 1000)])
        let account = Self.account()
        let transport = ScriptedTransport { _ in
            KlaviyoHTTPResponse(
                status: 429, headers: [("Content-Type", "application/vnd.api+json"), ("Retry-After", "40")],
                body: Array(#"{"errors":[{"status":429,"code":"throttled","detail":"slow down"}]}"#.utf8))
        }
        let client = KlaviyoClient(
            baseURL: "https://a.klaviyo.com", transport: transport, userAgent: "test", logger: Self.logger
        ).gated(by: limiter.gate(accountID: account, logger: Self.logger))
        await #expect {
            _ = try await client.getAccount(credential: .apiKey("pk_test"))
        } throws: { error in
            (error as? KlaviyoError)?.code == .throttled
        }
        await #expect {
            _ = try await client.getAccount(credential: .apiKey("pk_test"))
        } throws: { error in
            guard let error = error as? KlaviyoError, error.code == .heldBack, let wait = error.retryAfter else {
                return false
            }
            return wait > .seconds(35)
        }
        #expect(transport.all.count == 1, "the second call was not sent")
    }

    @Test func gateWaitsInlineWithinTheMaximumWait() async throws {
        let redis = try Self.client()
        defer { Task { await redis.shutdown() } }
        let limiter = Self.limiter(redis, maxWait: .seconds(2), table: Self.burstTable)
        let account = Self.account()
        let gate = limiter.gate(accountID: account, logger: Self.logger)
        // Six calls, none held back: the sixth waits inline until the first leaves the 1 s window.
        for _ in 0..<6 {
            try await gate.admit(operationID: Self.operation, credential: .apiKey("pk_test"))
        }
        let key = RedisKeys.rateLimit(account, bucket: Self.operation)
        let stored = try await redis.send(["ZRANGE", key, "0", "-1", "WITHSCORES"])
        let scores = (stored.array ?? []).enumerated().filter { $0.offset % 2 == 1 }
            .compactMap { $0.element.string.flatMap { Int64($0) } }.sorted()
        try #require(scores.count == 6, "\(stored)")
        #expect(scores[5] - scores[0] >= 1000, "the sixth call was admitted inside the first one's second")
    }

    /// A backlog gets slots in order, packed as tightly as the windows (plus the slack) allow: the quota is
    /// used in full, and no window ever holds more than the limit.
    @Test func reservationsAreHandedOutInOrderAndFillTheQuota() async throws {
        let redis = try Self.client()
        defer { Task { await redis.shutdown() } }
        let limiter = Self.limiter(redis, table: Self.burstTable)
        let limit = try #require(limiter.limit(for: Self.operation))
        let slack: Int64 = 250
        let account = Self.account()
        var slots: [Int64] = []
        var reserved: [Bool] = []
        for _ in 0..<23 {
            switch try await limiter.reserve(accountID: account, operationID: Self.operation, limit: limit) {
            case .admitted(let at):
                slots.append(at)
                reserved.append(false)
            case .reserved(let reservation, let wait):
                #expect(wait > .zero)
                slots.append(reservation.slotMilliseconds)
                reserved.append(true)
            case .refused(let wait): Issue.record("refused within the horizon (wait \(wait))")
            }
        }
        #expect(slots == slots.sorted(), "slots out of order: \(slots)")
        for index in slots.indices where index + 5 < slots.count {
            // Never 6 in a burst window widened by the slack ...
            #expect(slots[index + 5] - slots[index] >= 1000 + slack, "\(slots)")
        }
        // ... and nothing wasted: a reserved slot is the earliest the windows allow, exactly one widened window
        // after the fifth slot before it (or the previous slot, if later). A loaded machine may make the calls
        // so slowly that some are admitted at once instead; those are checked by the window rule above.
        #expect(reserved.contains(true), "nothing was ever reserved: the calls were slower than the window")
        for index in slots.indices where index >= 5 && reserved[index] {
            #expect(slots[index] == max(slots[index - 1], slots[index - 5] + 1000 + slack), "\(slots)")
        }
        // Nothing for another operation or account was touched.
        #expect(try await limiter.backlog(accountID: Self.account(), operationID: Self.operation) == .zero)
        #expect(try await limiter.backlog(accountID: account, operationID: Self.operation) > .zero)
    }

    /// A parked command claims its own slot when it comes back; one that comes back after its slot (plus the
    /// slack) gives it up for a new one at the end of the schedule; a slot beyond the horizon is never reserved.
    @Test func aReservationIsClaimedOnceInTimeAndReplacedWhenMissed() async throws {
        let redis = try Self.client()
        defer { Task { await redis.shutdown() } }
        let limiter = RateLimiter(
            redis: redis, settings: .init(horizon: .seconds(30)), table: Self.steadyTable)
        let limit = try #require(limiter.limit(for: Self.operation))
        let account = Self.account()
        let key = RedisKeys.rateLimit(account, bucket: Self.operation)
        _ = try await Self.admit(5, limiter, account: account)
        // The steady window is full: the sixth call's slot is a minute away, beyond the 30 s horizon.
        guard
            case .refused(let wait) = try await limiter.reserve(
                accountID: account, operationID: Self.operation, limit: limit)
        else {
            Issue.record("a slot beyond the horizon was reserved")
            return
        }
        #expect(wait > .seconds(30))
        #expect(try await redis.send(["ZCARD", key]).int == 5)

        let wide = RateLimiter(redis: redis, table: Self.steadyTable)
        guard
            case .reserved(let first, _) = try await wide.reserve(
                accountID: account, operationID: Self.operation, limit: limit)
        else {
            Issue.record("no slot reserved within the default horizon")
            return
        }
        // Claimed again: the same slot.
        guard
            case .reserved(let claimed, _) = try await wide.reserve(
                accountID: account, operationID: Self.operation, limit: limit, claiming: first)
        else {
            Issue.record("the reservation was not claimed")
            return
        }
        #expect(claimed == first)
        #expect(try await redis.send(["ZCARD", key]).int == 6)
        // Missed: move the slot into the past, beyond the slack; the claim takes a new slot and drops the old.
        _ = try await redis.send(["ZADD", key, "XX", String(first.slotMilliseconds - 120_000), first.member])
        let second = try await wide.reserve(
            accountID: account, operationID: Self.operation, limit: limit, claiming: first)
        guard case .reserved(let replacement, _) = second else {
            Issue.record("a missed slot was not replaced by a new one: \(second)")
            return
        }
        // A slot at the end of the schedule again (the missed one freed its place), stored under the claim.
        #expect(replacement.slotMilliseconds >= first.slotMilliseconds)
        #expect(try await redis.send(["ZCARD", key]).int == 6)
        #expect(try await redis.send(["ZSCORE", key, replacement.member]).int == replacement.slotMilliseconds)
    }

    /// Several gates (as separate processes) working through a backlog, each waiting inline for its slot: all
    /// 30 calls are admitted, the schedule they used keeps the (widened) 1 s window and is packed. (When the
    /// calls then leave is up to the process's scheduler: on a starved machine a test's own timestamps bunch.)
    @Test func gatesWorkingThroughABacklogKeepTheWindowAndUseTheQuota() async throws {
        let clients = try (0..<3).map { _ in try Self.client() }
        defer { Task { for client in clients { await client.shutdown() } } }
        let account = Self.account()
        let starts = Seen()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                let gate = Self.limiter(client, maxWait: .seconds(10), table: Self.burstTable)
                    .gate(accountID: account, logger: Self.logger)
                for _ in 0..<5 {
                    group.addTask {
                        for _ in 0..<2 {
                            try await gate.admit(operationID: Self.operation, credential: .apiKey("pk_test"))
                            let now = Int64(Date().timeIntervalSince1970 * 1000)
                            starts.admitted.withLock { $0.append(now) }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(starts.admitted.withLock { $0 }.count == 30)
        let key = RedisKeys.rateLimit(account, bucket: Self.operation)
        let stored = try await clients[0].send(["ZRANGE", key, "0", "-1", "WITHSCORES"])
        let slots = (stored.array ?? []).enumerated().filter { $0.offset % 2 == 1 }
            .compactMap { $0.element.string.flatMap { Int64($0) } }.sorted()
        #expect(slots.count == 30)
        for index in slots.indices where index + 5 < slots.count {
            #expect(slots[index + 5] - slots[index] >= 1250, "6 slots within a widened window: \(slots)")
        }
        // 30 calls at 5 per widened window: the 26th slot 5 windows after the first, not a tier's worth of
        // idle time later (one window of leeway for a call a loaded machine woke too late, which re-queues).
        let window =
            1000
            + Int64(
                RateLimiter.Settings().slack.components.seconds * 1000 + RateLimiter.Settings().slack.components
                    .attoseconds / 1_000_000_000_000_000)
        if slots.count == 30 {
            #expect(slots[25] - slots[0] >= 5 * window, "\(slots)")
        }
    }

    @Test func gateLetsUnlimitedOperationsThroughWithoutRedis() async throws {
        let redis = try Self.client()
        defer { Task { await redis.shutdown() } }
        let limiter = Self.limiter(redis, maxWait: .zero)
        let account = Self.account()
        let gate = limiter.gate(accountID: account, logger: Self.logger)
        for _ in 0..<20 {
            try await gate.admit(operationID: "not_in_the_table", credential: .apiKey("pk_test"))
        }
        #expect(try await redis.exists(RedisKeys.rateLimit(account, bucket: "not_in_the_table")) == false)
    }

    @Test func shareScalesTheLimits() async throws {
        let redis = try Self.client()
        defer { Task { await redis.shutdown() } }
        #expect(Self.limiter(redis, share: 0.5).limit(for: Self.operation) == KlaviyoRateLimit(burst: 2, steady: 6))
        let limiter = Self.limiter(redis, share: 0.5, table: Self.steadyTable)
        let limit = try #require(limiter.limit(for: Self.operation))
        #expect(limit == KlaviyoRateLimit(burst: 50, steady: 2))
        let account = Self.account()
        let started = ContinuousClock.now
        _ = try await Self.admit(2, limiter, account: account)
        let third = try await limiter.acquire(accountID: account, operationID: Self.operation, limit: limit)
        guard case .refused(let wait) = third else {
            Issue.record("a third call within a minute was admitted with share 0.5 (steady 2)")
            return
        }
        // A steady-window refusal (about a minute), not a burst one (at most a second).
        #expect(wait >= .seconds(60) - (ContinuousClock.now - started) - .milliseconds(100))
        let spec = RateLimiter(redis: redis, settings: .init(share: 0.01))
        #expect(spec.limit(for: "create_event") == KlaviyoRateLimit(burst: 3, steady: 35))
        #expect(spec.limit(for: "get_accounts") == KlaviyoRateLimit(burst: 1, steady: 1))
    }

    @Test func unreachableRedisMakesTheGateUnavailable() async throws {
        let redis = RedisClient(
            configuration: try RedisConfiguration(url: "redis://127.0.0.1:1/0"), logger: Self.logger)
        defer { Task { await redis.shutdown() } }
        let gate = Self.limiter(redis).gate(accountID: Self.account(), logger: Self.logger)
        // Cancel the task: the gate's backoff loop must end with gateUnavailable, never admit.
        let task = Task {
            try await gate.admit(operationID: Self.operation, credential: .apiKey("pk_test"))
        }
        task.cancel()
        switch await task.result {
        case .success: Issue.record("admitted without Redis")
        case .failure(let error): #expect((error as? KlaviyoError)?.code == .gateUnavailable, "\(error)")
        }
    }
}

/// What concurrent callers saw.
final class Seen: Sendable {
    let admitted = Mutex<[Int64]>([])
    let refusals = Mutex(0)
}

@Suite("Held-back retries")
struct HeldBackScheduleTests {
    let topology = RelayTopology(prefix: "test")

    @Test func heldBackIsScheduledEvenWhenTheAttemptBudgetIsSpent() {
        let policy = RetryPolicy(maxAttempts: 1)
        // A 429 after the last attempt gives up ...
        let throttled = KlaviyoError(code: .throttled, status: 429, operationID: "op", message: "m")
        #expect(
            policy.schedule(
                after: throttled, attempt: 1, isIdempotent: true, firstFailedAtMilliseconds: 0, nowMilliseconds: 0,
                topology: topology) == .giveUpExhausted(reason: "gave up after 1 attempts"))
        // ... a hold-back by the relay's limiter counts no attempt: it is always parked.
        let schedule = policy.scheduleHeldBack(
            wait: .milliseconds(1500), firstFailedAtMilliseconds: 0, nowMilliseconds: 0, topology: topology,
            random: { 0.5 })
        guard case .delay(let tier, let wanted) = schedule else {
            Issue.record("not scheduled: \(schedule)")
            return
        }
        #expect(wanted == .milliseconds(1500))
        #expect(tier.delay <= wanted)
    }

    /// A command that holds a slot must be back before it: the longest tier that returns it at least the margin
    /// (500 ms) before the slot (never the next longer one, which left the quota idle for most of two minutes;
    /// nor one ending just before the slot, whose trip back through the commands queue could land after it),
    /// the shortest below every tier.
    @Test func heldBackWithASlotTakesTheLongestTierThatReturnsInTime() throws {
        let policy = RetryPolicy()
        for (wait, expected) in [
            (Duration.milliseconds(51_000), "30s"), (.seconds(119), "30s"), (.milliseconds(120_500), "2m"),
            (.seconds(120), "30s"), (.milliseconds(4_900), "1s"), (.milliseconds(5_200), "1s"),
            (.milliseconds(5_500), "5s"), (.milliseconds(300), "1s"), (.seconds(7_200), "1h"),
        ] {
            let schedule = policy.scheduleHeldBack(
                wait: wait, firstFailedAtMilliseconds: 0, nowMilliseconds: 0, topology: topology)
            guard case .delay(let tier, let wanted) = schedule else {
                Issue.record("not scheduled: \(schedule)")
                continue
            }
            #expect(tier.name == expected, "wait \(wait)")
            #expect(wanted == Clamp.retryAfter(wait))
        }
        // Without a slot (refused beyond the horizon) the wait is shortened by up to 20 %, never lengthened.
        let refused = policy.scheduleHeldBack(
            wait: .seconds(130), reserved: false, firstFailedAtMilliseconds: 0, nowMilliseconds: 0,
            topology: topology, random: { 0.99 })
        guard case .delay(let tier, let wanted) = refused else {
            Issue.record("not scheduled: \(refused)")
            return
        }
        #expect(wanted < .seconds(130) && wanted > .seconds(100))
        #expect(tier.name == "30s")
    }

    /// Every wait the limiter parks (beyond the default inline wait, 1.5 s) lands in a tier that brings the
    /// command back at least the margin before its slot, so a return trip of up to the margin plus the limiter's
    /// slack still claims the slot. (Before: a 1.2 s wait took the 1 s tier and had 200 ms for the trip back.)
    @Test func everyParkedWaitReturnsAtLeastTheMarginEarly() throws {
        let policy = RetryPolicy()
        let inline = RateLimiter.Settings().maxWait
        // Just past each tier (where the longest tier that fits leaves the least time), and across the range.
        var waits = topology.retryTiers.flatMap { tier in
            [1, 100, 250, 499, 500, 900].map { tier.delay + .milliseconds($0) }
        }
        waits += (0..<60).map { _ in inline + .milliseconds(1) + .milliseconds(Int64.random(in: 0...4_000_000)) }
        for wait in waits where wait > inline {
            let schedule = policy.scheduleHeldBack(
                wait: wait, firstFailedAtMilliseconds: 0, nowMilliseconds: 0, topology: topology)
            guard case .delay(let tier, _) = schedule else {
                Issue.record("not scheduled: \(schedule)")
                return
            }
            #expect(wait - tier.delay >= policy.heldBackReturnMargin, "wait \(wait) → tier \(tier.name)")
        }
    }

    @Test func heldBackIsStillBoundedByTheMaximumAge() {
        let policy = RetryPolicy(maxRetryAge: .seconds(60))
        let schedule = policy.scheduleHeldBack(
            wait: .seconds(2), firstFailedAtMilliseconds: 0, nowMilliseconds: 60_000, topology: topology)
        guard case .giveUpExhausted(let reason) = schedule else {
            Issue.record("scheduled past the maximum age: \(schedule)")
            return
        }
        #expect(reason.contains("rate limiter"))
    }

    /// A daily cap exhausted for the next day: the command cannot be sent within its maximum age, so it is
    /// dead-lettered at once with the wait named, not parked for a day and dead-lettered when the cap resets.
    @Test func aWaitBeyondTheMaximumAgeGivesUpAtOnce() {
        let policy = RetryPolicy(maxRetryAge: .seconds(86_400))
        let schedule = policy.scheduleHeldBack(
            wait: .milliseconds(86_400_250), reserved: false, firstFailedAtMilliseconds: 0, nowMilliseconds: 0,
            topology: topology)
        guard case .giveUpExhausted(let reason) = schedule else {
            Issue.record("parked beyond the maximum age: \(schedule)")
            return
        }
        #expect(reason.contains("24h") && reason.contains("daily cap"), "\(reason)")
        // A wait that ends within the age is parked as before.
        guard
            case .delay = policy.scheduleHeldBack(
                wait: .seconds(3_600), reserved: false, firstFailedAtMilliseconds: 0, nowMilliseconds: 0,
                topology: topology)
        else {
            Issue.record("an hour's wait was not parked")
            return
        }
    }
}
