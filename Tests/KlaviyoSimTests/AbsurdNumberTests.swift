import Foundation
import HTTPTypes
import KlaviyoSimCore
import Testing

/// The simulator can answer with the absurd numbers the hostile-publisher suite feeds the relay: a huge
/// `Retry-After` (fault `retry_after_seconds`) and a huge token `expires_in` (`advertised_expires_in`, which
/// changes only what the answer states).
@Suite("Absurd numbers")
struct AbsurdNumberTests {
    @Test func hugeRetryAfterIsSentVerbatim() async throws {
        try await SimHarness().run { c in
            let set = try await c.admin(
                .put, "/_sim/faults", body: #"{"throttle_rate":1,"retry_after_seconds":100000000000000000}"#)
            #expect(set.status == 200)
            let answer = try await c.call(
                .get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: "Klaviyo-API-Key \(SimHarness.apiKey)"))
            #expect(answer.status == 429)
            #expect(answer.headers[HTTPField.Name("Retry-After")!] == "100000000000000000")
        }
    }

    @Test func advertisedExpiresInIsStatedInTokenAnswers() async throws {
        try await SimHarness().run { c in
            try await OAuthTests.setUp(c)
            let set = try await c.admin(.put, "/_sim/oauth/settings", body: #"{"advertised_expires_in":1e20}"#)
            #expect(set.status == 200)
            #expect(set.json?["advertised_expires_in"] == .double(1e20))
            let tokens = try await OAuthTests.exchange(c, code: try await OAuthTests.authorize(c))
            #expect(tokens.status == 200)
            #expect(tokens.json?["expires_in"] == .double(1e20))
            let refreshed = try await OAuthTests.refresh(c, try #require(tokens.json?["refresh_token"]?.stringValue))
            #expect(refreshed.json?["expires_in"] == .double(1e20))
            let access = try #require(refreshed.json?["access_token"]?.stringValue)
            let me = try await c.call(
                .get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: "Bearer \(access)"))
            #expect(me.status == 200)

            let wrong = try await c.admin(.put, "/_sim/oauth/settings", body: #"{"advertised_expires_in":"soon"}"#)
            #expect(wrong.status == 400)
            let cleared = try await c.admin(.put, "/_sim/oauth/settings", body: #"{"advertised_expires_in":null}"#)
            #expect(cleared.json?["advertised_expires_in"] == .null)
            let honest = try await OAuthTests.exchange(c, code: try await OAuthTests.authorize(c))
            #expect(honest.json?["expires_in"] == 3600)
        }
    }
}
