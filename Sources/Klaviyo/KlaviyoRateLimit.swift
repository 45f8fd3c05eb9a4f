/// Klaviyo's rate limit of one operation (`x-klaviyo-ratelimit` in the OpenAPI spec): burst per 1 s, steady
/// per 60 s and, for a few operations (reports, list creation), a daily cap. ``KlaviyoRateLimits/table`` is
/// generated from the spec.
public struct KlaviyoRateLimit: Sendable, Hashable {
    /// Calls allowed per 1 s window.
    public var burst: Int
    /// Calls allowed per 60 s window.
    public var steady: Int
    /// Calls allowed per day, where the spec sets a daily cap.
    public var daily: Int?

    /// Creates a limit.
    public init(burst: Int, steady: Int, daily: Int? = nil) {
        self.burst = burst
        self.steady = steady
        self.daily = daily
    }

    /// Every limit multiplied by `share` (0 < share ≤ 1), rounded down, each at least 1: the part of the
    /// account's quota this integration may use.
    public func scaled(by share: Double) -> KlaviyoRateLimit {
        func scale(_ value: Int) -> Int { max(1, Int((Double(value) * share).rounded(.down))) }
        return KlaviyoRateLimit(burst: scale(burst), steady: scale(steady), daily: daily.map(scale))
    }
}

/// Admits Klaviyo calls before they are sent (for example a rate limiter shared by all consumers).
///
/// ``KlaviyoClient/send(_:credential:)`` awaits ``admit(operationID:credential:)`` before the transport; a
/// gate that refuses throws, typically ``KlaviyoError/Code/heldBack`` with `retryAfter` set.
public protocol KlaviyoCallGate: Sendable {
    /// Returns when the call may be sent; throws when it must not be sent now.
    func admit(operationID: String, credential: KlaviyoCredential) async throws(KlaviyoError)

    /// Klaviyo answered a call of `operationID` with 429 and `Retry-After`: the account's allowance for it is
    /// spent (perhaps by traffic the gate does not see, e.g. another integration on the same Klaviyo account),
    /// so the gate should hold the operation's calls back that long. Best effort; never throws.
    func throttled(operationID: String, retryAfter: Duration) async
}

extension KlaviyoCallGate {
    /// Ignores the answer (a gate with no shared schedule).
    public func throttled(operationID: String, retryAfter: Duration) async {}
}
