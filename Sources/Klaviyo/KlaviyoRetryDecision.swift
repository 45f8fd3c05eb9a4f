/// What to do after a failed Klaviyo call (the retry classification of docs/architecture.md, step 4).
public enum KlaviyoRetryDecision: Sendable, Hashable {
    /// Throttled (a 429, or held back by the relay's own limiter): wait at least this long (Klaviyo's
    /// `Retry-After`, or the limiter's wait), then retry.
    case retryAfter(Duration)
    /// Transient (503, 504, 524, network): back off with jitter and retry.
    case backoff
    /// Possibly transient (500, 502, a timeout after sending): retry only calls that are idempotent.
    case backoffIfIdempotent
    /// 401 with an OAuth token: refresh the token once and retry once.
    case refreshCredential
    /// Permanent (4xx): never retry; dead-letter with Klaviyo's reasons.
    case permanent
}
