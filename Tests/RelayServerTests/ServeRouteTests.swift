import Crypto
import Foundation
import Hummingbird
import Klaviyo
import Relay
import Testing

/// `serve`'s JSON API, signed links and OAuth flow, in-process.
@Suite("serve in-process: JSON API, signed links and OAuth", .timeLimit(.minutes(2)))
struct ServeRouteTests {
    /// The JSON API refuses calls without or with a wrong bearer token; signed links with a bad or expired
    /// signature, or an unlisted return_to, get a clear page and store nothing; forged and replayed OAuth
    /// states are refused.
    @Test func securityRefusals() async throws {
        try await ServeHarness.run { serve in
            let account = "org-sec-\(serve.prefix)"
            for token in [nil, "wrong-token", serve.apiToken + "x"] {
                for (method, path) in [
                    (HTTPRequest.Method.get, "/v1/accounts/\(account)/connection"),
                    (.delete, "/v1/accounts/\(account)/connection"),
                    (.post, "/v1/accounts/\(account)/connection/api-key"),
                ] {
                    let response = try await serve.api(method, path, token: token, body: ["api_key": "pk_whatever"])
                    #expect(response.status == 401, "\(method) \(path) with \(token ?? "no token")")
                }
            }
            let refused = [
                serve.link("/oauth/klaviyo/start", account: account, secret: "not-the-secret"),
                serve.link("/oauth/klaviyo/start", account: account, expiresIn: -5),
                serve.link("/oauth/klaviyo/start", account: account, returnTo: "https://evil.example/steal"),
                serve.link(
                    "/oauth/klaviyo/start", account: account, returnTo: "https://app.heropixel.test.evil.example/"),
                serve.link("/settings/klaviyo", account: account, secret: "not-the-secret"),
                serve.link("/settings/klaviyo", account: account, expiresIn: -5),
                serve.link("/settings/klaviyo", account: account, returnTo: "https://evil.example/"),
                serve.link("/oauth/klaviyo/start", account: account).replacingOccurrences(
                    of: "account_id=\(account)", with: "account_id=org-victim"),
                "/oauth/klaviyo/start?account_id=\(account)",
            ]
            for url in refused {
                let response = try await serve.get(url)
                #expect([400, 403].contains(response.status), "\(url) → \(response.status)")
                #expect(response.bodyString.contains("<html"), "a page for people")
                #expect(response.headers["Location"] == nil)
            }
            #expect(try await serve.storedStates(for: account) == 0, "no OAuth state stored for refused links")
            #expect(try await serve.redis.exists(RedisKeys.connection(account)) == false)

            // Forged state.
            let forged = try await serve.get("/oauth/klaviyo/callback?code=abc&state=forged-state")
            #expect(forged.status == 400)
            #expect(forged.bodyString.contains("already used"))

            // Replayed state: first callback connects, the replay is refused.
            let klaviyoAccount = "acct-sec-\(UUID().uuidString.lowercased().prefix(8))"
            try await serve.createSimAccount(klaviyoAccount, apiKey: "pk_sec_unused_key", name: "Sec Store")
            let callback = try await serve.consent(
                serve.link("/oauth/klaviyo/start", account: account), klaviyoAccount: klaviyoAccount, decision: "allow")
            let first = try await serve.get(callback.url, cookie: callback.cookie)
            #expect(first.status == 302 && first.headers["Location"] == serve.returnTo)
            let replay = try await serve.get(callback.url, cookie: callback.cookie)
            #expect(replay.status == 400)
            #expect(replay.bodyString.contains("expired, was already used"))
        }
    }

    /// API key through the JSON API: connect (with a refused key first), status (no secrets), disconnect;
    /// OAuth connect through start/callback, replaced by an API key (revoked), then OAuth disconnect revokes
    /// at klaviyo-sim; connection events are published.
    @Test func apiKeyAndOAuthLifecycle() async throws {
        try await ServeHarness.run { serve in
            let account = "org-life-\(serve.prefix)"
            let klaviyoAccount = "acct-life-\(UUID().uuidString.lowercased().prefix(8))"
            let key = "pk_life_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            try await serve.createSimAccount(klaviyoAccount, apiKey: key, name: "Lifecycle Store")
            let path = "/v1/accounts/\(account)/connection"

            let notConnected = try await serve.api(.get, path, token: serve.apiToken)
            #expect(notConnected.status == 200 && notConnected.json?["state"]?.stringValue == "not_connected")
            let bad = try await serve.api(.post, path + "/api-key", token: serve.apiToken, body: ["api_key": "abc123"])
            #expect(bad.status == 422 && bad.json?["error"]?["code"]?.stringValue == "not_a_private_key")
            let connected = try await serve.api(
                .post, path + "/api-key", token: serve.apiToken, body: ["api_key": .string(key)])
            #expect(connected.status == 200)
            #expect(connected.json?["state"]?.stringValue == "connected")
            #expect(connected.json?["method"]?.stringValue == "api_key")
            #expect(connected.json?["klaviyo_account_name"]?.stringValue == "Lifecycle Store")
            #expect(!connected.bodyString.contains(key), "status never shows the key")
            try await serve.redis.hashSet(
                RedisKeys.sync(account), ["last_success_at": "2026-11-29T12:00:00Z", "history": "[1,2,3]"])
            let status = try await serve.api(.get, path, token: serve.apiToken)
            #expect(status.json?["last_sync_success_at"]?.stringValue == "2026-11-29T12:00:00Z")
            let removed = try await serve.api(.delete, path, token: serve.apiToken)
            #expect(removed.status == 200 && removed.json?["state"]?.stringValue == "disconnected")
            #expect(try await serve.credentialStore.load(accountID: account)?.apiKey == nil)

            // OAuth connect, then replaced by an API key: the OAuth grant is revoked.
            let callback = try await serve.oauthFlow(
                account: account, klaviyoAccount: klaviyoAccount, decision: "allow")
            #expect(callback.status == 302 && callback.headers["Location"] == serve.returnTo)
            let oauth = try await serve.api(.get, path, token: serve.apiToken)
            #expect(oauth.json?["method"]?.stringValue == "oauth" && oauth.json?["state"]?.stringValue == "connected")
            #expect(oauth.json?["scopes"]?.arrayValue?.isEmpty == false)
            _ = try await serve.api(.post, path + "/api-key", token: serve.apiToken, body: ["api_key": .string(key)])
            #expect(try await serve.revokes(of: klaviyoAccount) == 1)

            // OAuth again, then disconnect: one revoke, secrets gone, state disconnected.
            _ = try await serve.oauthFlow(account: account, klaviyoAccount: klaviyoAccount, decision: "allow")
            let disconnected = try await serve.api(.delete, path, token: serve.apiToken)
            #expect(disconnected.json?["state"]?.stringValue == "disconnected")
            #expect(try await serve.revokes(of: klaviyoAccount) == 2)
            let stored = try await serve.credentialStore.load(accountID: account)
            #expect(stored?.refreshToken == nil && stored?.accessToken == nil)

            // Deny: nothing stored, a clear message.
            let denied = try await serve.oauthFlow(account: account, klaviyoAccount: klaviyoAccount, decision: "deny")
            #expect(denied.bodyString.contains("You cancelled connecting Klaviyo"))
            #expect(try await serve.credentialStore.load(accountID: account)?.state == .disconnected)

            #expect(
                serve.eventKeys(for: account) == [
                    "connection.connected", "connection.disconnected", "connection.connected", "connection.connected",
                    "connection.connected", "connection.disconnected",
                ])
            // Every event body is what schemas/connection-event.schema.json describes.
            for event in serve.events.events.withLock({ $0 }) where event.accountID == account {
                #expect(throws: Never.self, "\(event)") {
                    try ContractValidator.validateConnectionEvent(try JSONValue.parse(event.encoded()))
                }
            }
        }
    }
}

/// Issue #9, browser flows and `serve` hardening: each probe as a hostile page, a victim's browser or an
/// operator would trigger it (in-process; the metrics port is the process's, see the spawned smoke test).
@Suite("serve in-process: hardening of the browser flows and the HTTP surface", .timeLimit(.minutes(2)))
struct ServeHardeningRouteTests {
    /// A victim who approves an attacker's authorize URL connects nothing: the callback needs the cookie of the
    /// browser that started the flow. Without it, or with another one, the page refuses, nothing is stored and
    /// the state is spent; with it, the flow connects.
    @Test func oauthStateIsBoundToTheBrowserThatStartedIt() async throws {
        try await ServeHarness.run { serve in
            let victim = "org-victim-\(serve.prefix)"
            let attacker = "org-attacker-\(serve.prefix)"
            let klaviyoAccount = "acct-bind-\(UUID().uuidString.lowercased().prefix(8))"
            try await serve.createSimAccount(klaviyoAccount, apiKey: "pk_bind_unused_key", name: "Victim Store")

            // The cookie: HttpOnly, Secure, SameSite=Lax, scoped to /oauth/klaviyo, as long as the state lives;
            // Redis keeps only its digest.
            let flow = try await serve.startFlow(serve.link("/oauth/klaviyo/start", account: attacker))
            let attributes = flow.setCookie.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(flow.cookie.hasPrefix("kr_oauth=") && flow.cookie.count > "kr_oauth=".count + 20)
            for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/oauth/klaviyo", "Max-Age=600"] {
                #expect(attributes.contains(attribute), "\(attribute) in \(flow.setCookie)")
            }
            let stored = try #require(try await serve.redis.get(RedisKeys.oauthState(flow.state)))
            let nonce = String(flow.cookie.dropFirst("kr_oauth=".count))
            #expect(!stored.contains(nonce), "the state keeps a digest, never the cookie's nonce")
            #expect(try JSONValue.parse(Array(stored.utf8))["browser_binding"]?.stringValue?.count == 64)

            // The attacker's authorize URL, approved in the victim's browser (no cookie, or its own).
            let approved = try await serve.authorize(flow.authorize, klaviyoAccount: klaviyoAccount, decision: "allow")
            let callback = try #require(approved.location)
            let first = try await serve.get(callback)
            #expect(first.status == 403, "no cookie → \(first.status)")
            #expect(first.bodyString.contains("not started in this browser"), "\(first.bodyString)")
            #expect(first.headers["Location"] == nil)
            #expect(!first.bodyString.contains("start-again"), "no link to continue someone else's flow")
            #expect(first.headers["Set-Cookie"]?.contains("Max-Age=0") == true, "the cookie is cleared")
            #expect(try await serve.redis.exists(RedisKeys.connection(attacker)) == false, "nothing stored")
            #expect(try await serve.redis.exists(RedisKeys.oauthState(flow.state)) == false, "state spent")
            // Even the right cookie cannot use the spent state afterwards.
            let late = try await serve.get(callback, cookie: flow.cookie)
            #expect(late.status == 400 && late.bodyString.contains("already used"))
            #expect(try await serve.redis.exists(RedisKeys.connection(attacker)) == false)

            // A wrong cookie on a fresh flow: refused too.
            let other = try await serve.consent(
                serve.link("/oauth/klaviyo/start", account: victim), klaviyoAccount: klaviyoAccount, decision: "allow")
            let wrong = try await serve.get(other.url, cookie: flow.cookie)
            #expect(wrong.status == 403 && wrong.bodyString.contains("not started in this browser"))
            #expect(try await serve.redis.exists(RedisKeys.connection(victim)) == false)

            // The browser that started the flow connects.
            let mine = try await serve.consent(
                serve.link("/oauth/klaviyo/start", account: victim), klaviyoAccount: klaviyoAccount, decision: "allow")
            let connected = try await serve.get(mine.url, cookie: mine.cookie)
            #expect(connected.status == 302 && connected.headers["Location"] == serve.returnTo)
            #expect(connected.headers["Set-Cookie"]?.contains("Max-Age=0") == true)
            #expect(try await serve.credentialStore.load(accountID: victim)?.state == .connected)
        }
    }

    /// Klaviyo's `error` and `error_description` are never echoed: known codes get a fixed message, anything
    /// else one generic message. The "connect again" link keeps the expiry of the link that started the flow.
    @Test func callbackShowsFixedMessagesAndKeepsTheOriginalExpiry() async throws {
        try await ServeHarness.run { serve in
            let account = "org-err-\(serve.prefix)"
            let cases: [(error: String, expected: String)] = [
                ("<script>alert('kr-xss')</script>", "Klaviyo did not connect HeroPixel"),
                ("kr_custom_unknown_code", "Klaviyo did not connect HeroPixel"),
                ("access_denied", "You cancelled connecting Klaviyo"),
                ("invalid_scope", "did not grant the permissions"),
                ("temporarily_unavailable", "temporarily unavailable"),
                ("server_error", "had a problem"),
            ]
            for (index, probe) in cases.enumerated() {
                let original = serve.signed("/oauth/klaviyo/start", account: account, expiresIn: 900 + Int64(index))
                let flow = try await serve.startFlow(original.pathAndQuery)
                var items = URLComponents()
                items.queryItems = [
                    .init(name: "state", value: flow.state), .init(name: "error", value: probe.error),
                    .init(name: "error_description", value: "<b>kr-description-marker</b> call +1-555-evil"),
                ]
                let url = "/oauth/klaviyo/callback?" + (items.percentEncodedQuery ?? "")
                let page = try await serve.get(url, cookie: flow.cookie)
                #expect(page.status == 200)
                #expect(page.bodyString.contains(probe.expected), "\(probe.error): \(page.bodyString)")
                #expect(page.bodyString.contains("Nothing was stored"))
                for leaked in ["kr-xss", "script", "kr_custom_unknown_code", "kr-description-marker", "555-evil"] {
                    #expect(!page.bodyString.contains(leaked), "\(leaked) echoed for \(probe.error)")
                }
                #expect(try await serve.redis.exists(RedisKeys.connection(account)) == false)

                // "Connect again": signed for the start, with the original expiry, and it works.
                let again = try #require(Self.href(id: "start-again", in: page.bodyString), "\(page.bodyString)")
                let query = URLComponents(string: again)?.queryItems ?? []
                #expect(again.hasPrefix("/oauth/klaviyo/start?"))
                #expect(query.first { $0.name == "expires" }?.value == String(original.expires), "\(again)")
                if index == 0 {
                    let restarted = try await serve.get(again)
                    #expect(restarted.status == 302, "the connect-again link opens the start")
                }
            }
        }
    }

    /// Links open only the action they were signed for, v1 links (no action in the MAC) are refused, and a link
    /// may not live longer than RELAY_LINK_MAX_TTL (1h by default); the settings page's own links and forms keep
    /// the expiry of the page's link.
    @Test func signedLinksCoverTheActionAndHaveAMaximumLifetime() async throws {
        try await ServeHarness.run { serve in
            let account = "org-act-\(serve.prefix)"
            let refused = [
                serve.link("/oauth/klaviyo/start", account: account, signedFor: .settings),
                serve.link("/settings/klaviyo", account: account, signedFor: .oauthStart),
                serve.link("/settings/klaviyo", account: account, expiresIn: 3700),
                serve.link("/oauth/klaviyo/start", account: account, expiresIn: 3700),
                serve.link("/oauth/klaviyo/start", account: account, expiresIn: 10 * 365 * 86400),
                try Self.versionOneLink(serve, path: "/settings/klaviyo", account: account),
                try Self.versionOneLink(serve, path: "/oauth/klaviyo/start", account: account),
            ]
            for url in refused {
                let response = try await serve.get(url)
                #expect(response.status == 403, "\(url) → \(response.status)")
                #expect(response.headers["Location"] == nil)
                #expect(response.headers["Set-Cookie"] == nil)
            }
            #expect(try await serve.storedStates(for: account) == 0)
            let tooLong = try await serve.get(serve.link("/settings/klaviyo", account: account, expiresIn: 3700))
            #expect(tooLong.bodyString.contains("longer than this server allows"))

            // A start link is not accepted by the settings forms either.
            let start = serve.signed("/oauth/klaviyo/start", account: account)
            let posted = try await serve.post(
                "/settings/klaviyo/api-key", form: ServeHarness.formFields(start) + [("api_key", "pk_whatever")])
            #expect(posted.status == 403)

            // Within the limit: the page works, and its "Connect with Klaviyo" link is a start link with the
            // page's own expiry.
            let page = serve.signed("/settings/klaviyo", account: account, expiresIn: 3500)
            let settings = try await serve.get(page.pathAndQuery)
            #expect(settings.status == 200)
            let connect = try #require(Self.href(id: "connect", in: settings.bodyString))
            #expect(connect.hasPrefix("/oauth/klaviyo/start?") && connect.contains("expires=\(page.expires)&"))
            #expect((try await serve.get(connect)).status == 302)
        }
    }

    /// Every answer of the public port carries CSP, Referrer-Policy and nosniff; `/metrics` is not served there,
    /// `/healthz` and `/readyz` are (the internal metrics port is checked by the spawned smoke test).
    @Test func securityHeadersAndNoMetricsOnThePublicPort() async throws {
        try await ServeHarness.run { serve in
            let account = "org-hdr-\(serve.prefix)"
            let answers: [(String, ServeResponse)] = [
                ("settings page", try await serve.get(serve.link("/settings/klaviyo", account: account))),
                ("refusal page", try await serve.get(serve.link("/settings/klaviyo", account: account, secret: "x"))),
                ("start redirect", try await serve.get(serve.link("/oauth/klaviyo/start", account: account))),
                ("callback page", try await serve.get("/oauth/klaviyo/callback?state=nope")),
                ("JSON 401", try await serve.api(.get, "/v1/accounts/\(account)/connection", token: nil)),
                ("JSON 200", try await serve.api(.get, "/v1/accounts/\(account)/connection", token: serve.apiToken)),
                ("healthz", try await serve.get("/healthz")),
                ("metrics 404", try await serve.get("/metrics")),
            ]
            for (name, response) in answers {
                let policy = response.headers["Content-Security-Policy"] ?? ""
                for directive in [
                    "default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'",
                ] {
                    #expect(policy.contains(directive), "\(name): \(directive) in \(policy)")
                }
                #expect(!policy.contains("script-src"), "\(name): no scripts allowed")
                #expect(response.headers["Referrer-Policy"] == "no-referrer", "\(name)")
                #expect(response.headers["X-Content-Type-Options"] == "nosniff", "\(name)")
            }
            #expect(answers[0].1.status == 200 && answers[2].1.status == 302 && answers[5].1.status == 200)
            #expect(answers[6].1.status == 200, "/healthz stays on the public port")
            #expect(answers[7].1.status == 404, "/metrics is not served on the public port")
            let ready = try await serve.get("/readyz")
            #expect(ready.status == 200 && ready.bodyString.contains("rabbitmq=up redis=up"), "\(ready.bodyString)")
        }
    }

    /// At most 5 API-key validations per account per 10 minutes: the 6th answers 429 with Retry-After (JSON) or
    /// a clear message (settings page), and Klaviyo is not called.
    @Test func apiKeyValidationsAreLimitedPerAccount() async throws {
        try await ServeHarness.run { serve in
            let account = "org-keys-\(serve.prefix)"
            let klaviyoAccount = "acct-keys-\(UUID().uuidString.lowercased().prefix(8))"
            let key = "pk_keys_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            try await serve.createSimAccount(klaviyoAccount, apiKey: key, name: "Keys Store")
            let path = "/v1/accounts/\(account)/connection/api-key"
            for attempt in 1...5 {
                let response = try await serve.api(.post, path, token: serve.apiToken, body: ["api_key": .string(key)])
                #expect(response.status == 200, "attempt \(attempt): \(response.bodyString)")
            }
            let callsBefore = try await serve.klaviyoRequests(account: klaviyoAccount).count
            #expect(callsBefore >= 5, "each accepted attempt asked Klaviyo")

            let sixth = try await serve.api(.post, path, token: serve.apiToken, body: ["api_key": .string(key)])
            #expect(sixth.status == 429)
            #expect(sixth.json?["error"]?["code"]?.stringValue == "too_many_attempts")
            let retryAfter = Int(sixth.headers["Retry-After"] ?? "") ?? 0
            #expect((1...600).contains(retryAfter), "Retry-After \(sixth.headers["Retry-After"] ?? "none")")

            let settings = serve.signed("/settings/klaviyo", account: account)
            let page = try await serve.post(
                "/settings/klaviyo/api-key", form: ServeHarness.formFields(settings) + [("api_key", key)])
            #expect(page.status == 429)
            #expect(page.bodyString.contains("Too many API keys were tried"), "\(page.bodyString)")
            #expect(page.headers["Retry-After"] != nil)

            let callsAfter = try await serve.klaviyoRequests(account: klaviyoAccount).count
            #expect(callsAfter == callsBefore, "Klaviyo was not called beyond the limit")
            let left = try await serve.redis.send(["PTTL", APIKeyConnector.attemptsKey(account)]).int ?? -1
            #expect(left > 0 && left <= 600_000, "the counter expires with its window (\(left) ms)")
            // Another account is not affected.
            let other = try await serve.api(
                .post, "/v1/accounts/\(account)-other/connection/api-key", token: serve.apiToken,
                body: ["api_key": .string(key)])
            #expect(other.status == 200)
        }
    }

    /// A connection sealed with a key id `serve` does not hold: the settings page says "Reconnect needed" with
    /// both connect options (not a 503), the JSON status answers 200 `reconnect_needed`, and connecting again
    /// overwrites the unreadable record.
    @Test func unreadableCredentialOffersToReconnect() async throws {
        try await ServeHarness.run { serve in
            let account = "org-unread-\(serve.prefix)"
            let klaviyoAccount = "acct-unread-\(UUID().uuidString.lowercased().prefix(8))"
            let key = "pk_unread_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            try await serve.createSimAccount(klaviyoAccount, apiKey: key, name: "Unread Store")
            let retired = try EncryptionKeyRing(
                specification: EncryptionKeyRing.generateSpecification(keyID: "retired\(UUID().uuidString.prefix(4))"))
            try await CredentialStore(redis: serve.redis, keys: retired).saveAPIKey(
                accountID: account, apiKey: key, klaviyoAccountID: klaviyoAccount, klaviyoAccountName: "Unread Store")

            let link = serve.signed("/settings/klaviyo", account: account)
            let page = try await serve.get(link.pathAndQuery)
            #expect(page.status == 200, "\(page.status) \(page.bodyString.prefix(400))")
            #expect(page.bodyString.contains("<h2 id=\"status\">Reconnect needed</h2>"), "\(page.bodyString)")
            #expect(Self.href(id: "connect", in: page.bodyString)?.hasPrefix("/oauth/klaviyo/start?") == true)
            #expect(page.bodyString.contains("id=\"api_key\"") && page.bodyString.contains("id=\"save-key\""))
            #expect(!page.bodyString.contains(key))

            let status = try await serve.api(.get, "/v1/accounts/\(account)/connection", token: serve.apiToken)
            #expect(status.status == 200, "\(status.bodyString)")
            #expect(status.json?["state"]?.stringValue == "reconnect_needed")
            #expect(status.json?["connected"] == .bool(false))

            let saved = try await serve.post(
                "/settings/klaviyo/api-key", form: ServeHarness.formFields(link) + [("api_key", key)])
            #expect(saved.status == 303, "\(saved.bodyString)")
            let after = try await serve.get(link.pathAndQuery)
            #expect(after.bodyString.contains("<h2 id=\"status\">Connected</h2>"))
            let record = try await serve.credentialStore.load(accountID: account)
            #expect(record?.apiKey == key && record?.state == .connected)
        }
    }

    /// The `href` of the element with an id (pages are server-rendered, attributes in a fixed order).
    static func href(id: String, in page: String) -> String? {
        guard let start = page.range(of: "id=\"\(id)\"") else { return nil }
        let tagStart = page[..<start.lowerBound].lastIndex(of: "<") ?? start.lowerBound
        let tag = page[tagStart...].prefix { $0 != ">" }
        guard let href = tag.range(of: "href=\"") else { return nil }
        let value = tag[href.upperBound...].prefix { $0 != "\"" }
        return String(value).replacingOccurrences(of: "&amp;", with: "&")
    }

    /// A link signed the old way (v1: no action in the MAC), its HMAC computed here (not by ``SignedLink``).
    static func versionOneLink(_ serve: ServeHarness, path: String, account: String) throws -> String {
        let expires = Timestamp.nowSeconds() + 600
        let message = "v1\n\(account)\n\(serve.returnTo)\n\(expires)"
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data(message.utf8), using: SymmetricKey(data: Data(serve.linkSecret.utf8)))
        let signature = mac.map { String(format: "%02x", $0) }.joined()
        #expect(signature.count == 64)
        // The same query as a v2 link, with the v1 signature.
        let query = serve.signed(path, account: account, expiresIn: expires - Timestamp.nowSeconds()).query
        return path + "?"
            + query.replacingOccurrences(
                of: #"(expires=)\d+&sig=[0-9a-f]+"#, with: "$1\(expires)&sig=\(signature)", options: .regularExpression)
    }
}
