import Klaviyo
import Relay
import Testing

@Suite("Retry policy")
struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(100), maxDelay: .seconds(2))

    func error(_ code: KlaviyoError.Code, status: Int?, retryAfter: Duration? = nil, sent: Bool = true) -> KlaviyoError
    {
        KlaviyoError(
            code: code, status: status, operationID: "op", message: "m", retryAfter: retryAfter,
            requestMayHaveBeenSent: sent)
    }

    @Test func honoursRetryAfterAtLeast() {
        let throttled = error(.throttled, status: 429, retryAfter: .seconds(3))
        for random in [0.0, 0.5, 0.999] {
            guard
                case .retry(let wait) = policy.decide(
                    after: throttled, attempt: 1, isIdempotent: true, random: { random })
            else {
                Issue.record("expected retry")
                return
            }
            #expect(wait >= .seconds(3))
            #expect(wait <= .seconds(3) * 1.2)
        }
    }

    @Test func backsOffExponentiallyWithinTheCap() {
        let unavailable = error(.serverError, status: 503)
        let waits = (1...3).map { attempt -> Duration in
            if case .retry(let wait) = policy.decide(
                after: unavailable, attempt: attempt, isIdempotent: true, random: { 0.999 })
            {
                return wait
            }
            return .zero
        }
        #expect(waits[0] < waits[1] && waits[1] < waits[2])
        #expect(waits[2] <= .seconds(2))
        #expect(policy.decide(after: unavailable, attempt: 4, isIdempotent: true) == .giveUpExhausted)
    }

    @Test func permanentAndAmbiguousFailures() {
        #expect(policy.decide(after: error(.rejected, status: 400), attempt: 1, isIdempotent: true) == .giveUpPermanent)
        #expect(
            policy.decide(after: error(.forbidden, status: 403), attempt: 1, isIdempotent: true) == .giveUpPermanent)
        let ambiguous = error(.serverError, status: 500)
        #expect(policy.decide(after: ambiguous, attempt: 1, isIdempotent: false) == .giveUpPermanent)
        if case .retry = policy.decide(after: ambiguous, attempt: 1, isIdempotent: true) {
        } else {
            Issue.record("idempotent 500 must retry")
        }
        let refused = error(.transport, status: nil, sent: false)
        if case .retry = policy.decide(after: refused, attempt: 1, isIdempotent: false) {
        } else {
            Issue.record("a connect failure is safe to retry even for non-idempotent calls")
        }
    }
}
