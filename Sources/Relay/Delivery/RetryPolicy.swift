public import Klaviyo

/// Bounded retries of Klaviyo calls: exponential backoff with full jitter, `Retry-After` honoured
/// (at least what Klaviyo asked, plus up to 20 % jitter), ambiguous failures retried only for idempotent
/// calls (docs/architecture.md, step 4).
public struct RetryPolicy: Sendable {
    /// Attempts in total, the first included.
    public var maxAttempts: Int
    /// First backoff step.
    public var baseDelay: Duration
    /// Longest single wait.
    public var maxDelay: Duration
    /// How long after its first failure a command may still be retried (`RELAY_MAX_RETRY_AGE`).
    public var maxRetryAge: Duration
    /// How long before its reserved slot a held-back command is due back (``scheduleHeldBack(wait:reserved:firstFailedAtMilliseconds:nowMilliseconds:topology:random:)``):
    /// the trip from the retry tier through the commands queue to a consumer takes time, and a command that
    /// claims its slot more than the limiter's slack (250 ms) late gives it up and queues for a new one.
    public var heldBackReturnMargin: Duration = Self.defaultHeldBackReturnMargin

    /// 500 ms: twice the limiter's slack.
    public static let defaultHeldBackReturnMargin: Duration = .milliseconds(500)

    /// Creates a policy.
    public init(
        maxAttempts: Int = 5, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(10),
        maxRetryAge: Duration = .seconds(24 * 3600)
    ) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAge = maxRetryAge
    }

    /// What to do after attempt number `attempt` (1-based) failed with `error`.
    public enum Decision: Sendable, Hashable {
        /// Wait, then try again.
        case retry(after: Duration)
        /// Give up: the failure is permanent.
        case giveUpPermanent
        /// Give up: the failure is transient but the budget is spent.
        case giveUpExhausted
    }

    /// Decides. `random` returns a value in 0..<1 (injected so tests are deterministic).
    public func decide(
        after error: KlaviyoError, attempt: Int, isIdempotent: Bool, random: () -> Double = { Double.random(in: 0..<1) }
    ) -> Decision {
        let wait: Duration
        switch error.retryDecision {
        case .permanent, .refreshCredential:
            return .giveUpPermanent
        case .backoffIfIdempotent where !isIdempotent:
            return .giveUpPermanent
        case .backoff, .backoffIfIdempotent:
            wait = backoff(attempt: attempt, random: random)
        case .retryAfter(let asked):
            let requested = Clamp.retryAfter(asked)
            wait = max(requested, backoff(attempt: attempt, random: random)) + requested * (0.2 * Self.unit(random()))
        }
        guard attempt < maxAttempts else { return .giveUpExhausted }
        // Floating-point jitter may land a hair above the bound; the bound is the promise.
        return .retry(after: min(wait, longestWait))
    }

    /// Full-jitter exponential backoff: uniform in 0...min(maxDelay, base·2^(attempt-1)). Any `attempt` (also
    /// `Int.min`/`Int.max`) and any `random()` (clamped to 0...1, NaN as 0) are safe.
    public func backoff(attempt: Int, random: () -> Double) -> Duration {
        let exponent = attempt <= 1 ? 0 : min(attempt - 1, 30)
        let ceiling = min(maxDelay, baseDelay * (1 << exponent))
        return ceiling * Self.unit(random())
    }

    /// The longest wait ``decide(after:attempt:isIdempotent:random:)`` can return for a throttled call:
    /// ``Clamp/maxRetryAfter`` plus its 20 % jitter (or ``maxDelay``, if longer).
    public var longestWait: Duration {
        max(Clamp.maxRetryAfter, maxDelay) + Clamp.maxRetryAfter * 0.2
    }

    /// A random draw limited to 0...1 (NaN: 0), so an odd generator cannot overflow `Duration * Double`.
    static func unit(_ value: Double) -> Double {
        value.isNaN ? 0 : min(max(value, 0), 1)
    }

    /// How long ago the first failure was, never negative and never overflowing (a first failure in the
    /// future, from a skewed clock, counts as now).
    static func age(firstFailedAtMilliseconds: Int64, nowMilliseconds: Int64) -> Duration {
        .milliseconds(max(0, Clamp.difference(nowMilliseconds, firstFailedAtMilliseconds)))
    }

    /// Where a failed command goes next when retries are delayed through the TTL tiers.
    public enum Schedule: Sendable, Hashable {
        /// Publish it to this tier (the shortest one at least as long as `wanted`), then ack the original.
        case delay(tier: RelayTopology.RetryTier, wanted: Duration)
        /// Give up: the failure is permanent.
        case giveUpPermanent
        /// Give up: the attempt budget or the maximum age is spent (`retries_exhausted`); `reason` says which.
        case giveUpExhausted(reason: String)
    }

    /// Decides like ``decide(after:attempt:isIdempotent:random:)`` and maps the wait onto a retry tier of
    /// `topology`; also gives up once the command's first failure is more than ``maxRetryAge`` ago.
    /// - Parameters:
    ///   - attempt: Klaviyo attempts made so far, this one included (carried in `x-relay-attempts`).
    ///   - firstFailedAtMilliseconds: epoch milliseconds of the first failure (`x-relay-first-failed-at`).
    public func schedule(
        after error: KlaviyoError, attempt: Int, isIdempotent: Bool, firstFailedAtMilliseconds: Int64,
        nowMilliseconds: Int64, topology: RelayTopology, random: () -> Double = { Double.random(in: 0..<1) }
    ) -> Schedule {
        switch decide(after: error, attempt: attempt, isIdempotent: isIdempotent, random: random) {
        case .giveUpPermanent:
            return .giveUpPermanent
        case .giveUpExhausted:
            return .giveUpExhausted(reason: "gave up after \(attempt) attempts")
        case .retry(let wait):
            let age = Self.age(firstFailedAtMilliseconds: firstFailedAtMilliseconds, nowMilliseconds: nowMilliseconds)
            if age >= maxRetryAge {
                return .giveUpExhausted(
                    reason: "gave up after \(attempt) attempts over \(age.roundedDescription) "
                        + "(maximum age \(maxRetryAge.roundedDescription))")
            }
            guard let tier = topology.retryTier(for: wait) else {
                return .giveUpExhausted(reason: "gave up after \(attempt) attempts (no retry tiers declared)")
            }
            return .delay(tier: tier, wanted: wait)
        }
    }

    /// Where a command goes after the relay's own rate limiter held a call back (``KlaviyoError/Code/heldBack``):
    /// the longest tier that brings it back at least ``heldBackReturnMargin`` before its slot (it then waits the
    /// rest inline, or takes a shorter tier again), so the quota never lies idle and the command does not come
    /// back after its slot's slack and lose its place; a wait shorter than every tier plus the margin takes the
    /// shortest (the limiter's default inline wait, 1.5 s, covers that band: ``RelayConfiguration/cautions``). Without a reserved slot (beyond the horizon, or a daily cap) the wait is
    /// shortened by up to 20 % so refused commands do not all return at once. No attempt is counted, so the
    /// attempt budget does not apply; ``maxRetryAge`` still bounds it, and a wait that cannot end within it (a
    /// daily cap exhausted for the next day) gives up at once, naming the wait, instead of parking the command
    /// for a day only to dead-letter it when the cap resets.
    public func scheduleHeldBack(
        wait: Duration, reserved: Bool = true, firstFailedAtMilliseconds: Int64, nowMilliseconds: Int64,
        topology: RelayTopology, random: () -> Double = { Double.random(in: 0..<1) }
    ) -> Schedule {
        let age = Self.age(firstFailedAtMilliseconds: firstFailedAtMilliseconds, nowMilliseconds: nowMilliseconds)
        if age >= maxRetryAge {
            return .giveUpExhausted(
                reason: "held back by the rate limiter for \(age.roundedDescription) "
                    + "(maximum age \(maxRetryAge.roundedDescription))")
        }
        let held = Clamp.retryAfter(wait)
        // The slot is not free before `held`, whatever the jitter below makes of the return.
        if age + held >= maxRetryAge {
            return .giveUpExhausted(
                reason: "held back by the rate limiter: its next slot is in \(held.roundedDescription), beyond the "
                    + "maximum age \(maxRetryAge.roundedDescription) (waited \(age.roundedDescription) so far; a daily "
                    + "cap is exhausted until then)")
        }
        let wanted = reserved ? held : held - held * (0.2 * Self.unit(random()))
        guard let tier = topology.retryTier(atMost: wanted - heldBackReturnMargin) else {
            return .giveUpExhausted(reason: "held back by the rate limiter (no retry tiers declared)")
        }
        return .delay(tier: tier, wanted: wanted)
    }
}

extension Duration {
    /// `1500ms`, `42s`, `3m`, `5h`: short and whole, for messages (any duration, also negative or huge).
    var roundedDescription: String {
        let seconds = components.seconds
        if seconds < 0 { return "\(seconds)s" }
        if seconds < 10 { return "\(seconds * 1000 + components.attoseconds / 1_000_000_000_000_000)ms" }
        if seconds < 600 { return "\(seconds)s" }
        if seconds < 36_000 { return "\(seconds / 60)m" }
        return "\(seconds / 3600)h"
    }
}
