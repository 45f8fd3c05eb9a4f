import Foundation
import HTTPTypes
import KlaviyoSimCore
import NIOCore
import Testing

@Suite("OAuth")
struct OAuthTests {
    static let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk0123"
    static let challenge = "1XoUH9kgJy3BPkxjwahg6ZAZA2Lu3268xfwhMRfyQBY"
    static let basic = "Basic cmVsYXktYXBwOnMzY3JldA=="  // relay-app:s3cret
    static let redirect = "http://localhost:9999/callback"

    static var authorizeQuery: String {
        "response_type=code&client_id=relay-app&redirect_uri=\(redirect.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
            + "&scope=accounts:read%20profiles:write&state=st-123&code_challenge=\(challenge)&code_challenge_method=S256"
    }

    static func form(_ body: String, auth: String? = basic) -> HTTPFields {
        var h = HTTPFields()
        if let auth { h[.authorization] = auth }
        h[.contentType] = "application/x-www-form-urlencoded"
        return h
    }

    static func setUp(_ c: SimClient) async throws {
        let app = try await c.admin(
            .post, "/_sim/oauth/apps",
            body:
                #"{"client_id":"relay-app","client_secret":"s3cret","redirect_uris":["\#(redirect)"],"scopes":["accounts:read","profiles:read","profiles:write"]}"#
        )
        #expect(app.status == 201)
        let login = try await c.admin(.post, "/_sim/oauth/login", body: #"{"account_id":"acct_1"}"#)
        #expect(login.status == 200)
    }

    /// Runs authorize with `decision=allow` and returns the code from the redirect.
    static func authorize(_ c: SimClient) async throws -> String {
        let page = try await c.client.execute(uri: "/oauth/authorize?\(authorizeQuery)", method: .get)
        #expect(page.status == .ok)
        let html = String(buffer: page.body)
        #expect(html.contains("value=\"allow\"") && html.contains("value=\"deny\""))
        let allowed = try await c.client.execute(
            uri: "/oauth/authorize", method: .post, headers: form(""),
            body: .init(string: authorizeQuery + "&decision=allow"))
        #expect(allowed.status == .found)
        let location = try #require(allowed.headers[.location])
        #expect(location.hasPrefix(redirect + "?code="))
        #expect(location.hasSuffix("&state=st-123"))
        let comps = try #require(URLComponents(string: location))
        return try #require(comps.queryItems?.first { $0.name == "code" }?.value)
    }

    static func exchange(_ c: SimClient, code: String, verifier: String = verifier) async throws -> SimResponse {
        let body =
            "grant_type=authorization_code&code=\(code)&code_verifier=\(verifier)&redirect_uri=\(redirect.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
        return try await c.call(.post, "/oauth/token", body: body, headers: form(body))
    }

    static func refresh(_ c: SimClient, _ token: String) async throws -> SimResponse {
        let body = "grant_type=refresh_token&refresh_token=\(token)"
        return try await c.call(.post, "/oauth/token", body: body, headers: form(body))
    }

    @Test func authorizationCodeFlowAndBearerCalls() async throws {
        try await SimHarness().run { c in
            try await Self.setUp(c)
            let code = try await Self.authorize(c)
            let tokens = try await Self.exchange(c, code: code)
            #expect(tokens.status == 200)
            #expect(tokens.json?["token_type"] == "Bearer")
            #expect(tokens.json?["expires_in"] == 3600)
            #expect(tokens.json?["scope"] == "accounts:read profiles:write")
            let access = try #require(tokens.json?["access_token"]?.stringValue)
            let refreshToken = try #require(tokens.json?["refresh_token"]?.stringValue)
            let me = try await c.call(
                .get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: "Bearer \(access)"))
            #expect(me.status == 200)
            // Scope not granted to the install: 403.
            let read = try await c.call(
                .get, "/api/profiles", headers: SimClient.klaviyoHeaders(auth: "Bearer \(access)"))
            #expect(read.status == 403)
            // Codes are single use.
            let reuse = try await Self.exchange(c, code: code)
            #expect(reuse.status == 400)
            #expect(reuse.json?["error"] == "invalid_grant")
            // Refresh keeps the refresh token (no rotation by default).
            let refreshed = try await Self.refresh(c, refreshToken)
            #expect(refreshed.status == 200)
            #expect(refreshed.json?["refresh_token"]?.stringValue == refreshToken)
            #expect(refreshed.json?["access_token"]?.stringValue != access)
            let stats = try await c.admin(.get, "/_sim/stats")
            #expect(stats.json?["token_calls"]?["authorization_code"] == 1)
            #expect(stats.json?["token_calls"]?["refresh_token"] == 1)
            #expect(stats.json?["token_calls"]?["invalid_grant"] == 1)
        }
    }

    @Test func pkceAndClientFailures() async throws {
        try await SimHarness().run { c in
            try await Self.setUp(c)
            let code = try await Self.authorize(c)
            let badVerifier = try await Self.exchange(c, code: code, verifier: "short")
            #expect(badVerifier.status == 400)
            #expect(badVerifier.json?["error_description"] == "Invalid \"code_verifier\"")
            let mismatch = try await Self.exchange(c, code: code, verifier: String(repeating: "a", count: 50))
            #expect(mismatch.json?["error"] == "invalid_grant")
            #expect(mismatch.json?["error_description"] == "Code challenge failed.")
            let body = "grant_type=refresh_token&refresh_token=x"
            let badClient = try await c.call(
                .post, "/oauth/token", body: body, headers: Self.form(body, auth: "Basic d3Jvbmc6d3Jvbmc="))
            #expect(badClient.status == 401)
            #expect(badClient.json?["error"] == "invalid_client")
            let grant = "grant_type=client_credentials"
            let badGrant = try await c.call(.post, "/oauth/token", body: grant, headers: Self.form(grant))
            #expect(badGrant.json?["error"] == "invalid_grant_type")
            var jsonHeaders = Self.form("")
            jsonHeaders[.contentType] = "application/json"
            let notForm = try await c.call(
                .post, "/oauth/token", body: #"{"grant_type":"refresh_token"}"#, headers: jsonHeaders)
            #expect(notForm.json?["error"] == "invalid_grant_type")
        }
    }

    @Test func denyAndBadRedirect() async throws {
        try await SimHarness().run { c in
            try await Self.setUp(c)
            let denied = try await c.client.execute(
                uri: "/oauth/authorize?\(Self.authorizeQuery)&decision=deny", method: .get)
            #expect(denied.status == .found)
            let location = try #require(denied.headers[.location])
            #expect(location.contains("error=access_denied"))
            #expect(location.contains("state=st-123"))
            let badRedirect = try await c.client.execute(
                uri:
                    "/oauth/authorize?response_type=code&client_id=relay-app&redirect_uri=http%3A%2F%2Fevil&code_challenge=x&code_challenge_method=S256&scope=accounts:read",
                method: .get)
            #expect(badRedirect.status == .badRequest)
            let plain = try await c.client.execute(
                uri: "/oauth/authorize?\(Self.authorizeQuery.replacingOccurrences(of: "S256", with: "plain"))",
                method: .get)
            #expect(plain.headers[.location]?.contains("error=invalid_request") == true)
        }
    }

    /// Settings given with a `client_id` apply to that app only: tests sharing one simulator do not change each
    /// other's behaviour, and read their own app's token counts.
    @Test func rotationScopedToOneAppAndCountsPerApp() async throws {
        try await SimHarness().run { c in
            try await Self.setUp(c)
            // Another app turns rotation on for itself only.
            let scoped = try await c.admin(
                .put, "/_sim/oauth/settings", body: #"{"client_id":"other-app","rotate_refresh_tokens":true}"#)
            #expect(scoped.status == 200)
            #expect(scoped.json?["rotate_refresh_tokens"] == .bool(false), "the global setting is unchanged")
            let tokens = try await Self.exchange(c, code: try await Self.authorize(c))
            let refresh1 = try #require(tokens.json?["refresh_token"]?.stringValue)
            let same = try await Self.refresh(c, refresh1)
            #expect(same.json?["refresh_token"]?.stringValue == refresh1, "relay-app does not rotate")
            // Now for relay-app itself.
            _ = try await c.admin(
                .put, "/_sim/oauth/settings", body: #"{"client_id":"relay-app","rotate_refresh_tokens":true}"#)
            let rotated = try await Self.refresh(c, refresh1)
            let refresh2 = try #require(rotated.json?["refresh_token"]?.stringValue)
            #expect(refresh2 != refresh1)
            #expect(try await Self.refresh(c, refresh1).json?["error"] == "invalid_grant")
            let stats = try await c.admin(.get, "/_sim/stats")
            let mine = stats.json?["token_calls_by_client"]?["relay-app"]
            #expect(mine?["authorization_code"] == .int(1))
            #expect(mine?["refresh_token"] == .int(2))
            #expect(mine?["invalid_grant"] == .int(1))
            #expect(stats.json?["token_calls_by_client"]?["other-app"] == nil)
        }
    }

    @Test func revokeAppAndRotationAndExpiry() async throws {
        try await SimHarness().run { c in
            try await Self.setUp(c)
            _ = try await c.admin(.put, "/_sim/oauth/settings", body: #"{"rotate_refresh_tokens":true}"#)
            let tokens = try await Self.exchange(c, code: try await Self.authorize(c))
            let refresh1 = try #require(tokens.json?["refresh_token"]?.stringValue)
            let rotated = try await Self.refresh(c, refresh1)
            let refresh2 = try #require(rotated.json?["refresh_token"]?.stringValue)
            #expect(refresh2 != refresh1)
            let old = try await Self.refresh(c, refresh1)
            #expect(old.json?["error"] == "invalid_grant")
            let access = try #require(rotated.json?["access_token"]?.stringValue)
            let expired = try await c.admin(
                .post, "/_sim/oauth/expire-access-tokens", body: #"{"account_id":"acct_1"}"#)
            #expect(expired.status == 200)
            let afterExpiry = try await c.call(
                .get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: "Bearer \(access)"))
            #expect(afterExpiry.status == 401)
            let fresh = try await Self.refresh(c, refresh2)
            let access2 = try #require(fresh.json?["access_token"]?.stringValue)
            let refresh3 = try #require(fresh.json?["refresh_token"]?.stringValue)
            let revoked = try await c.admin(.post, "/_sim/accounts/acct_1/revoke-app")
            #expect(revoked.json?["revoked_installs"] == 1)
            let call = try await c.call(
                .get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: "Bearer \(access2)"))
            #expect(call.status == 401)
            let again = try await Self.refresh(c, refresh3)
            #expect(again.status == 400)
            #expect(again.json?["error"] == "invalid_grant")
        }
    }

    @Test func revokeEndpointAndSeparateQuota() async throws {
        try await SimHarness(rateLimits: true).run { c in
            try await Self.setUp(c)
            let tokens = try await Self.exchange(c, code: try await Self.authorize(c))
            let access = try #require(tokens.json?["access_token"]?.stringValue)
            let refresh = try #require(tokens.json?["refresh_token"]?.stringValue)
            // XS tier (1/s): the key's quota and the install's quota are separate.
            #expect(try await c.call(.get, "/api/accounts").status == 200)
            // Fixed 1 s windows: call until the key is throttled (a pair may straddle a window boundary).
            var throttled = try await c.call(.get, "/api/accounts").status
            for _ in 0..<4 where throttled != 429 { throttled = try await c.call(.get, "/api/accounts").status }
            #expect(throttled == 429)
            let bearer = try await c.call(
                .get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: "Bearer \(access)"))
            #expect(bearer.status == 200)
            let body = "token=\(refresh)&token_type_hint=refresh_token"
            let revoke = try await c.call(.post, "/oauth/revoke", body: body, headers: Self.form(body))
            #expect(revoke.status == 200)
            let after = try await Self.refresh(c, refresh)
            #expect(after.json?["error"] == "invalid_grant")
            let stats = try await c.admin(.get, "/_sim/stats")
            #expect(stats.json?["token_calls"]?["revoke"] == 1)
        }
    }
}
