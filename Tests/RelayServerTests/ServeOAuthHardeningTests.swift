import Foundation
import Hummingbird
import Klaviyo
import Relay
import Testing

/// The OAuth start under abuse: starts limited per account, its redirect never cached (nor JSON answers).
@Suite("serve in-process: OAuth start limit and reconnects", .timeLimit(.minutes(2)))
struct ServeOAuthHardeningTests {
    /// Every open of a valid start link stores a state (~500 B for 10 minutes): at most 20 per account in 10
    /// minutes, then a 429 page with Retry-After that stores nothing and sets no cookie. Another account is not
    /// affected.
    @Test func oauthStartsAreLimitedPerAccount() async throws {
        try await ServeHarness.run { serve in
            let account = "org-starts-\(serve.prefix)"
            let link = serve.link("/oauth/klaviyo/start", account: account)
            for start in 1...20 {
                let response = try await serve.get(link)
                #expect(response.status == 302, "start \(start): \(response.status)")
            }
            #expect(try await serve.storedStates(for: account) == 20)
            for _ in 1...3 {
                let refused = try await serve.get(link)
                #expect(refused.status == 429, "\(refused.status) \(refused.bodyString.prefix(300))")
                let retryAfter = Int(refused.headers["Retry-After"] ?? "") ?? 0
                #expect((1...600).contains(retryAfter), "Retry-After \(refused.headers["Retry-After"] ?? "none")")
                #expect(refused.headers["Location"] == nil && refused.headers["Set-Cookie"] == nil)
                #expect(refused.bodyString.contains("<html") && refused.bodyString.contains("too many times"))
                #expect(refused.headers["Content-Security-Policy"] != nil)
            }
            #expect(try await serve.storedStates(for: account) == 20, "no state stored beyond the limit")
            #expect(OAuthConnector.startsKey(account) == "kr:{\(account)}:oauth_starts")
            let left = try await serve.redis.send(["PTTL", OAuthConnector.startsKey(account)]).int ?? -1
            #expect(left > 0 && left <= 600_000, "the counter expires with its window (\(left) ms)")

            let other = try await serve.get(serve.link("/oauth/klaviyo/start", account: "\(account)-other"))
            #expect(other.status == 302, "another account starts")
        }
    }

    /// The start's redirect (it carries the state and sets the browser cookie) and every JSON answer say
    /// `Cache-Control: no-store`.
    @Test func theStartRedirectAndJSONAnswersAreNotCached() async throws {
        try await ServeHarness.run { serve in
            let account = "org-cache-\(serve.prefix)"
            let path = "/v1/accounts/\(account)/connection"
            let answers: [(String, ServeResponse)] = [
                ("start redirect", try await serve.get(serve.link("/oauth/klaviyo/start", account: account))),
                ("JSON 200", try await serve.api(.get, path, token: serve.apiToken)),
                ("JSON 401", try await serve.api(.get, path, token: nil)),
                (
                    "JSON 422",
                    try await serve.api(.post, path + "/api-key", token: serve.apiToken, body: ["api_key": "x"])
                ),
                ("JSON 400", try await serve.api(.post, path + "/api-key", token: serve.apiToken, body: ["no": "key"])),
            ]
            #expect(answers.map(\.1.status) == [302, 200, 401, 422, 400])
            for (name, response) in answers {
                #expect(response.headers["Cache-Control"] == "no-store", "\(name)")
            }
        }
    }
}
