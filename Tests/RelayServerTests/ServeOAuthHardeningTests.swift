import Foundation
import Hummingbird
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// The OAuth start and callback under abuse and races: starts limited per account (the start's redirect, like JSON
/// answers, never cached), a reconnect that revokes the grant it replaces (only when it is another install) and
/// replaces the connection under the account's lock.
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

    /// Reconnecting an OAuth connection to the same Klaviyo account keeps the install (Klaviyo keeps one install
    /// of an app per Klaviyo account, and revoking any of its refresh tokens uninstalls it, new tokens included):
    /// nothing is revoked and the new tokens work. Reconnecting it to another Klaviyo account revokes the old
    /// install (its refresh token gets invalid_grant); the new connection works.
    @Test func reconnectingToAnotherKlaviyoAccountRevokesTheReplacedInstall() async throws {
        try await ServeHarness.run { serve in
            let account = "org-switch-\(serve.prefix)"
            let first = "acct-sw-a-\(UUID().uuidString.lowercased().prefix(8))"
            let second = "acct-sw-b-\(UUID().uuidString.lowercased().prefix(8))"
            try await serve.createSimAccount(first, apiKey: "pk_switch_a_unused", name: "First Store")
            try await serve.createSimAccount(second, apiKey: "pk_switch_b_unused", name: "Second Store")

            let connected = try await serve.oauthFlow(account: account, klaviyoAccount: first, decision: "allow")
            #expect(connected.status == 302, "\(connected.bodyString.prefix(300))")
            let original = try #require(try await serve.credentialStore.load(accountID: account))

            // The same Klaviyo account again: the same install, nothing revoked, the new tokens work.
            let again = try await serve.oauthFlow(account: account, klaviyoAccount: first, decision: "allow")
            #expect(again.status == 302, "\(again.bodyString.prefix(300))")
            let renewed = try #require(try await serve.credentialStore.load(accountID: account))
            #expect(renewed.refreshToken != original.refreshToken, "a new grant")
            #expect(renewed.klaviyoAccountID == original.klaviyoAccountID)
            #expect(try await serve.revokes(of: first) == 0, "the install the new tokens belong to is kept")
            let seen = try await serve.klaviyo.getAccount(credential: .bearer(try #require(renewed.accessToken)))
            #expect(seen.id == renewed.klaviyoAccountID)

            // Another Klaviyo account: the first install is revoked, the second works.
            let switched = try await serve.oauthFlow(account: account, klaviyoAccount: second, decision: "allow")
            #expect(switched.status == 302, "\(switched.bodyString.prefix(300))")
            let replacement = try #require(try await serve.credentialStore.load(accountID: account))
            #expect(replacement.method == .oauth && replacement.state == .connected)
            #expect(replacement.klaviyoAccountName == "Second Store")
            #expect(try await serve.revokes(of: first) == 1, "the replaced install was revoked")
            #expect(try await serve.revokes(of: second) == 0)
            let replaced = try #require(renewed.refreshToken)
            await #expect("the replaced refresh token is dead") {
                _ = try await serve.oauth.refresh(refreshToken: replaced)
            } throws: { error in
                (error as? KlaviyoOAuthError)?.isInvalidGrant == true
            }
            let now = try await serve.klaviyo.getAccount(credential: .bearer(try #require(replacement.accessToken)))
            #expect(now.id == replacement.klaviyoAccountID)
            #expect(serve.eventKeys(for: account) == Array(repeating: "connection.connected", count: 3))
        }
    }

    /// The callback replaces the connection under the account's refresh lock (like an API-key replace): while a
    /// token refresh holds it, the callback waits and stores nothing; once it is released, the callback connects.
    @Test func theCallbackReplacesTheConnectionUnderTheAccountLock() async throws {
        try await ServeHarness.run { serve in
            let account = "org-lock-\(serve.prefix)"
            let klaviyoAccount = "acct-lock-\(UUID().uuidString.lowercased().prefix(8))"
            try await serve.createSimAccount(klaviyoAccount, apiKey: "pk_lock_unused_key", name: "Lock Store")
            let callback = try await serve.consent(
                serve.link("/oauth/klaviyo/start", account: account), klaviyoAccount: klaviyoAccount, decision: "allow")

            let lock = RedisKeys.lock(account)
            try await serve.redis.set(lock, "a-token-refresh", expiry: .seconds(30))
            let finishing = Task { try await serve.get(callback.url, cookie: callback.cookie) }
            try await eventually("the callback waits for the account's lock", timeout: .seconds(10)) {
                serve.lockWaits(for: account) > 0
            }
            #expect(try await serve.redis.exists(RedisKeys.connection(account)) == false, "nothing stored yet")
            _ = try await serve.redis.delete([lock])

            let finished = try await finishing.value
            #expect(finished.status == 302 && finished.headers["Location"] == serve.returnTo)
            let stored = try #require(try await serve.credentialStore.load(accountID: account))
            #expect(stored.method == .oauth && stored.state == .connected)
            #expect(try await !serve.redis.exists(lock), "the callback released the lock")
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
