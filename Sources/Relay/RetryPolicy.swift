public import Klaviyo

/// Bounded retries of Klaviyo calls: exponential backoff with full jitter, `Retry-After` honoured
/// (at least what Klaviyo asked, plus up to 20 % jitter), ambiguous failures retried only for idempotent
/// calls (FACTS §6).
public struct RetryPolicy: Sendable {
    /// Attempts in total, the first included.
    public var maxAttempts: Int
    /// First backoff step.
    public var baseDelay: Duration
    /// Longest single wait.
    public var maxDelay: Duration

    /// Creates a policy.
    public init(maxAttempts: Int = 5, baseDelay: Duration = .milliseconds(200), maxDelay: Duration = .seconds(10)) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
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
        case .retryAfter(let requested):
            wait = max(requested, backoff(attempt: attempt, random: random)) + requested * (0.2 * random())
        }
        guard attempt < maxAttempts else { return .giveUpExhausted }
        return .retry(after: wait)
    }

    /// Full-jitter exponential backoff: uniform in 0...min(maxDelay, base·2^(attempt-1)).
    public func backoff(attempt: Int, random: () -> Double) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(maxDelay, baseDelay * (1 << exponent))
        return ceiling * random()
    }
}
