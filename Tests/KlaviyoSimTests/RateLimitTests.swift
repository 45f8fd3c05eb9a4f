import HTTPTypes
import Testing

@testable import KlaviyoSimCore

@Suite("Rate limits")
struct RateLimitTests {
    static let accounts = KlaviyoOperation.all.first { $0.operationId == "get_accounts" }!
    static let createList = KlaviyoOperation.all.first { $0.operationId == "create_list" }!

    @Test func generatedTableHasSpecLimits() {
        #expect(Self.accounts.burst == 1)
        #expect(Self.accounts.steady == 15)
        #expect(Self.accounts.scopes == ["accounts:read"])
        #expect(Self.createList.daily == 150)
        let upsert = KlaviyoOperation.all.first { $0.operationId == "create_or_update_profile" }!
        #expect(upsert.burst == 75 && upsert.steady == 700)
        #expect(KlaviyoOperation.all.count > 250)
    }

    @Test func burstAndSteadyWindows() {
        let epoch = ContinuousClock.now
        let limiter = RateLimiter(epoch: epoch)
        // Burst 1/s: the second call in the same second is refused for 1 s.
        #expect(
            limiter.acquire(Self.accounts, accountId: "a", kind: .apiKey, now: epoch)
                == .allowed(limit: 15, remaining: 14, reset: 60))
        #expect(
            limiter.acquire(Self.accounts, accountId: "a", kind: .apiKey, now: epoch + .milliseconds(500))
                == .throttled(retryAfter: 1))
        // Other account and other credential kind have their own quota.
        #expect(limiter.acquire(Self.accounts, accountId: "b", kind: .apiKey, now: epoch) != .throttled(retryAfter: 1))
        #expect(
            limiter.acquire(Self.accounts, accountId: "a", kind: .oauth(installId: "i1"), now: epoch)
                != .throttled(retryAfter: 1))
        // Steady 15/min: one per second for 14 more seconds, then refused until the minute ends.
        for s in 1...14 {
            let d = limiter.acquire(Self.accounts, accountId: "a", kind: .apiKey, now: epoch + .seconds(s))
            #expect(d == .allowed(limit: 15, remaining: 14 - s, reset: 60 - s))
        }
        #expect(
            limiter.acquire(Self.accounts, accountId: "a", kind: .apiKey, now: epoch + .seconds(20))
                == .throttled(retryAfter: 40))
        #expect(
            limiter.acquire(Self.accounts, accountId: "a", kind: .apiKey, now: epoch + .seconds(60))
                == .allowed(limit: 15, remaining: 14, reset: 60))
    }

    @Test func dailyCap() {
        let epoch = ContinuousClock.now
        let limiter = RateLimiter(epoch: epoch)
        var allowed = 0
        for i in 0..<200 {
            // One call every 10 s stays under burst and steady; only the 150/day cap can refuse.
            if case .allowed = limiter.acquire(
                Self.createList, accountId: "a", kind: .apiKey, now: epoch + .seconds(i * 10))
            {
                allowed += 1
            }
        }
        #expect(allowed == 150)
    }

    @Test func enforcedOverHTTPAndSwitchable() async throws {
        try await SimHarness(rateLimits: true).run { c in
            let first = try await c.call(.get, "/api/accounts")
            #expect(first.status == 200)
            #expect(first.headers[HTTPField.Name("RateLimit-Limit")!] == "15")
            #expect(first.headers[HTTPField.Name("RateLimit-Remaining")!] == "14")
            #expect(first.headers[HTTPField.Name("RateLimit-Reset")!] != nil)
            // Burst windows are fixed 1 s windows: if the pair straddled a window boundary, the next call
            // lands in the same window as the previous one. Call until throttled (at most 5 calls).
            var second = try await c.call(.get, "/api/accounts")
            for _ in 0..<4 where second.status != 429 { second = try await c.call(.get, "/api/accounts") }
            #expect(second.status == 429)
            #expect(second.headers[HTTPField.Name("Retry-After")!] == "1")
            #expect(second.headers[HTTPField.Name("RateLimit-Limit")!] == nil)
            #expect(second.firstError?["code"] == "throttled")
            #expect(second.firstError?["title"] == "Request was throttled.")
            let off = try await c.admin(.put, "/_sim/settings", body: #"{"rate_limits":false}"#)
            #expect(off.json?["rate_limits"] == false)
            let third = try await c.call(.get, "/api/accounts")
            #expect(third.status == 200)
            #expect(third.headers[HTTPField.Name("RateLimit-Limit")!] == nil)
        }
    }
}
