import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Redis
import Relay
import RelayTestSupport
import Synchronization
import Testing

/// A running `klaviyo-relay serve` for one stack, with an OAuth app registered in klaviyo-sim whose redirect
/// URI is this server's callback, and a queue collecting `klaviyo.connections` events.
struct ServeFixture {
    let stack: RelayStack
    let process: ConsumerProcess
    let port: Int
    let metricsPort: Int
    let apiToken: String
    let linkSecret: String
    let clientID: String
    let events: Inbox
    let eventTask: Task<Void, any Error>

    var base: String { "http://127.0.0.1:\(port)" }
    /// An allowlisted return URL (served by `serve` itself, so a browser can land on it).
    var returnTo: String { base + "/healthz" }

    static func start(_ stack: RelayStack) async throws -> ServeFixture {
        let port = try freePort()
        let metricsPort = try freePort()
        let clientID = "serve-\(stack.prefix)"
        let secret = "secret-\(UUID().uuidString.lowercased())"
        try await stack.simAdmin(
            .POST, "/_sim/oauth/apps",
            [
                "client_id": .string(clientID), "client_secret": .string(secret),
                "redirect_uris": [.string("http://127.0.0.1:\(port)/oauth/klaviyo/callback")],
                "scopes": .array(OAuthConnector.defaultScopes.split(separator: " ").map { .string(String($0)) }),
            ])
        let eventQueue = "\(stack.prefix).serve-events"
        var declaration = AMQPTopology()
        declaration.queues = [.init(name: eventQueue, durable: false, exclusive: true, autoDelete: true)]
        declaration.bindings = [.init(queue: eventQueue, exchange: stack.topology.connectionsExchange, routingKey: "#")]
        try await stack.amqp.declare(declaration)
        let stream = stack.amqp.consume(queue: eventQueue, prefetch: 10)
        let amqp = stack.amqp
        let events = Inbox()
        let eventTask = Task {
            for try await delivery in stream {
                try await amqp.ack(delivery)
                events.items.withLock { $0.append(delivery) }
            }
        }
        let apiToken = "api-token-\(UUID().uuidString.lowercased())"
        let linkSecret = "link-secret-\(UUID().uuidString.lowercased())"
        let process = try ConsumerProcess.start(
            variables: [
                "RELAY_QUEUE_PREFIX": stack.prefix, "RELAY_KLAVIYO_API_BASE_URL": IntegrationEnvironment.simURL,
                "RELAY_KLAVIYO_AUTHORIZE_URL": IntegrationEnvironment.simURL + "/oauth/authorize",
                "RELAY_KLAVIYO_CLIENT_ID": clientID, "RELAY_KLAVIYO_CLIENT_SECRET": secret,
                "RELAY_OAUTH_REDIRECT_URL": "http://127.0.0.1:\(port)/oauth/klaviyo/callback",
                "RELAY_AMQP_URL": IntegrationEnvironment.amqpURL, "RELAY_REDIS_URL": IntegrationEnvironment.redisURL,
                "RELAY_HTTP_PORT": String(port), "RELAY_METRICS_PORT": String(metricsPort),
                "RELAY_API_TOKEN": apiToken, "RELAY_LINK_SECRET": linkSecret,
                "RELAY_RETURN_TO_ALLOWLIST": "http://127.0.0.1:\(port)/healthz,https://app.heropixel.test/",
                "RELAY_LOG_FORMAT": "json", "RELAY_LOG_LEVEL": "debug",
            ], arguments: ["serve", "--dev"])
        let fixture = ServeFixture(
            stack: stack, process: process, port: port, metricsPort: metricsPort, apiToken: apiToken,
            linkSecret: linkSecret, clientID: clientID,
            events: events, eventTask: eventTask)
        let http = stack.http
        let url = fixture.base + "/readyz"
        try await eventually("serve to be ready", timeout: .seconds(20)) {
            guard process.isRunning else { throw TimedOut(what: "serve exited: \(process.log)") }
            return (try? await http.execute(HTTPRequest(method: .GET, url: url)))?.status == 200
        }
        return fixture
    }

    func stop() async {
        eventTask.cancel()
        await process.stop()
    }

    /// A signed link (as the dashboard backend makes it), for the action of `path` unless `signedFor` says
    /// otherwise.
    func link(
        _ path: String, account: String, returnTo: String? = nil, expiresIn: Int64 = 600, secret: String? = nil,
        signedFor: SignedLink.Action? = nil
    )
        -> String
    {
        base + path + "?"
            + signed(
                path, account: account, expiresIn: expiresIn, secret: secret, returnTo: returnTo,
                signedFor: signedFor
            ).query
    }

    func signed(
        _ path: String, account: String, expiresIn: Int64 = 600, secret: String? = nil, returnTo: String? = nil,
        signedFor: SignedLink.Action? = nil
    ) -> SignedLink {
        SignedLink.sign(
            action: signedFor ?? SignedLink.Action(rawValue: path) ?? .settings, accountID: account,
            returnTo: returnTo ?? self.returnTo, expires: Timestamp.nowSeconds() + expiresIn,
            secret: secret ?? linkSecret)
    }

    func get(_ url: String, token: String? = nil, cookie: String? = nil) async throws -> HTTPResponse {
        var headers = HTTPHeaders()
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let cookie { headers.add(name: "Cookie", value: cookie) }
        return try await stack.http.execute(HTTPRequest(method: .GET, url: url, headers: headers))
    }

    /// POSTs a form (the settings page's forms).
    func post(_ path: String, form fields: [(String, String)]) async throws -> HTTPResponse {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let body = fields.map {
            "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)"
        }.joined(separator: "&")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        return try await stack.http.execute(
            HTTPRequest(method: .POST, url: base + path, headers: headers, body: Array(body.utf8)))
    }

    /// The form fields of a signed link.
    static func formFields(_ link: SignedLink) -> [(String, String)] {
        [
            ("account_id", link.accountID), ("return_to", link.returnTo), ("expires", String(link.expires)),
            ("sig", link.signature),
        ]
    }

    /// Opens a start link: returns Klaviyo's authorize URL, the `kr_oauth=<nonce>` cookie to send back, the raw
    /// Set-Cookie header and the state.
    func startFlow(_ url: String) async throws -> (authorize: String, cookie: String, setCookie: String, state: String)
    {
        let start = try await get(url)
        #expect(start.status == 302, "start: \(start.status) \(start.bodyString.prefix(300))")
        let authorize = try #require(start.headers["Location"])
        let setCookie = try #require(start.headers["Set-Cookie"], "start sets the browser cookie")
        let cookie = String(try #require(setCookie.split(separator: ";").first))
        let state = try #require(
            URLComponents(string: authorize)?.queryItems?.first { $0.name == "state" }?.value, "state in \(authorize)")
        return (authorize, cookie, setCookie, state)
    }

    func api(_ method: HTTPMethod, _ path: String, token: String?, body: JSONValue? = nil) async throws -> HTTPResponse
    {
        var headers = HTTPHeaders()
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        headers.add(name: "Content-Type", value: "application/json")
        return try await stack.http.execute(
            HTTPRequest(method: method, url: base + path, headers: headers, body: body?.jsonBytes()))
    }

    /// Routing keys of the connection events received for one account.
    func eventKeys(for account: String) -> [String] {
        events.items.withLock { items in
            items.filter { (try? JSONValue.parse($0.body))?["account_id"]?.stringValue == account }.map(\.routingKey)
        }
    }

    /// Goes through start → sim authorize (decision) → callback with plain HTTP; returns the callback response.
    /// The browser's `kr_oauth` cookie from start is sent back to the callback, as a browser does.
    func oauthFlow(account: String, klaviyoAccount: String, decision: String) async throws -> HTTPResponse {
        let callback = try await consent(
            link("/oauth/klaviyo/start", account: account), klaviyoAccount: klaviyoAccount, decision: decision)
        return try await get(callback.url, cookie: callback.cookie)
    }

    /// Start → sim authorize (decision); returns the callback URL (not opened) and the browser cookie.
    func consent(
        _ startURL: String, klaviyoAccount: String, decision: String
    ) async throws -> (url: String, cookie: String) {
        let flow = try await startFlow(startURL)
        let consent = try await get(flow.authorize + "&login_account=\(klaviyoAccount)&decision=\(decision)")
        #expect(consent.status == 302)
        let callback = try #require(consent.headers["Location"])
        #expect(callback.hasPrefix(base + "/oauth/klaviyo/callback"))
        return (callback, flow.cookie)
    }

    /// Number of `kr:oauth:state:*` keys that mention an account.
    func storedStates(for account: String) async throws -> Int {
        var count = 0
        for key in try await stack.redis.scan(match: "kr:oauth:state:*") {
            if let value = try await stack.redis.get(key), value.contains("\"\(account)\"") { count += 1 }
        }
        return count
    }
}

func withServe(_ body: (ServeFixture) async throws -> Void) async throws {
    try await withRelayStack { stack in
        let fixture = try await ServeFixture.start(stack)
        do {
            try await body(fixture)
        } catch {
            print("serve log:\n\(fixture.process.log.suffix(4000))")
            await fixture.stop()
            throw error
        }
        await fixture.stop()
    }
}

extension HTTPResponse {
    var json: JSONValue? { try? JSONValue.parse(body) }
}

@Suite("serve: HTTP API, signed links, OAuth and the settings page", .serialized)
struct ServeTests {
    /// The JSON API refuses calls without or with a wrong bearer token; signed links with a bad or expired
    /// signature, or an unlisted return_to, get a clear page and store nothing; forged and replayed OAuth
    /// states are refused.
    @Test func securityRefusals() async throws {
        try await withServe { serve in
            let account = "org-sec-\(serve.stack.prefix)"
            for token in [nil, "wrong-token", serve.apiToken + "x"] {
                for (method, path) in [
                    (HTTPMethod.GET, "/v1/accounts/\(account)/connection"),
                    (.DELETE, "/v1/accounts/\(account)/connection"),
                    (.POST, "/v1/accounts/\(account)/connection/api-key"),
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
                serve.base + "/oauth/klaviyo/start?account_id=\(account)",
            ]
            for url in refused {
                let response = try await serve.get(url)
                #expect([400, 403].contains(response.status), "\(url) → \(response.status)")
                #expect(response.bodyString.contains("<html"), "a page for people")
                #expect(response.headers["Location"] == nil)
            }
            #expect(try await serve.storedStates(for: account) == 0, "no OAuth state stored for refused links")
            #expect(try await serve.stack.redis.exists(RedisKeys.connection(account)) == false)

            // Forged state.
            let forged = try await serve.get(serve.base + "/oauth/klaviyo/callback?code=abc&state=forged-state")
            #expect(forged.status == 400)
            #expect(forged.bodyString.contains("already used"))

            // Replayed state: first callback connects, the replay is refused.
            let klaviyoAccount = "acct-sec-\(UUID().uuidString.lowercased().prefix(8))"
            try await serve.stack.simAdmin(
                .POST, "/_sim/accounts",
                ["account_id": .string(klaviyoAccount), "api_key": "pk_sec_unused_key", "name": "Sec Store"])
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
        try await withServe { serve in
            let account = "org-life-\(serve.stack.prefix)"
            let klaviyoAccount = "acct-life-\(UUID().uuidString.lowercased().prefix(8))"
            let key = "pk_life_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            try await serve.stack.simAdmin(
                .POST, "/_sim/accounts",
                ["account_id": .string(klaviyoAccount), "api_key": .string(key), "name": "Lifecycle Store"])
            let path = "/v1/accounts/\(account)/connection"

            let notConnected = try await serve.api(.GET, path, token: serve.apiToken)
            #expect(notConnected.status == 200 && notConnected.json?["state"]?.stringValue == "not_connected")
            let bad = try await serve.api(.POST, path + "/api-key", token: serve.apiToken, body: ["api_key": "abc123"])
            #expect(bad.status == 422 && bad.json?["error"]?["code"]?.stringValue == "not_a_private_key")
            let connected = try await serve.api(
                .POST, path + "/api-key", token: serve.apiToken, body: ["api_key": .string(key)])
            #expect(connected.status == 200)
            #expect(connected.json?["state"]?.stringValue == "connected")
            #expect(connected.json?["method"]?.stringValue == "api_key")
            #expect(connected.json?["klaviyo_account_name"]?.stringValue == "Lifecycle Store")
            #expect(!connected.bodyString.contains(key), "status never shows the key")
            try await serve.stack.redis.hashSet(
                RedisKeys.sync(account), ["last_success_at": "2026-11-29T12:00:00Z", "history": "[1,2,3]"])
            let status = try await serve.api(.GET, path, token: serve.apiToken)
            #expect(status.json?["last_sync_success_at"]?.stringValue == "2026-11-29T12:00:00Z")
            let removed = try await serve.api(.DELETE, path, token: serve.apiToken)
            #expect(removed.status == 200 && removed.json?["state"]?.stringValue == "disconnected")
            #expect(try await serve.stack.credentialStore.load(accountID: account)?.apiKey == nil)

            // OAuth connect, then replaced by an API key: the OAuth grant is revoked.
            let revokesBefore = try await serve.stack.tokenCalls()["revoke"] ?? 0
            let callback = try await serve.oauthFlow(
                account: account, klaviyoAccount: klaviyoAccount, decision: "allow")
            #expect(callback.status == 302 && callback.headers["Location"] == serve.returnTo)
            let oauth = try await serve.api(.GET, path, token: serve.apiToken)
            #expect(oauth.json?["method"]?.stringValue == "oauth" && oauth.json?["state"]?.stringValue == "connected")
            #expect(oauth.json?["scopes"]?.arrayValue?.isEmpty == false)
            _ = try await serve.api(.POST, path + "/api-key", token: serve.apiToken, body: ["api_key": .string(key)])
            #expect((try await serve.stack.tokenCalls()["revoke"] ?? 0) == revokesBefore + 1)

            // OAuth again, then disconnect: one revoke, secrets gone, state disconnected.
            _ = try await serve.oauthFlow(account: account, klaviyoAccount: klaviyoAccount, decision: "allow")
            let disconnected = try await serve.api(.DELETE, path, token: serve.apiToken)
            #expect(disconnected.json?["state"]?.stringValue == "disconnected")
            #expect((try await serve.stack.tokenCalls()["revoke"] ?? 0) == revokesBefore + 2)
            let stored = try await serve.stack.credentialStore.load(accountID: account)
            #expect(stored?.refreshToken == nil && stored?.accessToken == nil)

            // Deny: nothing stored, a clear message.
            let denied = try await serve.oauthFlow(account: account, klaviyoAccount: klaviyoAccount, decision: "deny")
            #expect(denied.bodyString.contains("You cancelled connecting Klaviyo"))
            #expect(try await serve.stack.credentialStore.load(accountID: account)?.state == .disconnected)

            try await eventually("connection events", timeout: .seconds(10)) {
                serve.eventKeys(for: account).count >= 6
            }
            #expect(
                serve.eventKeys(for: account) == [
                    "connection.connected", "connection.disconnected", "connection.connected", "connection.connected",
                    "connection.connected", "connection.disconnected",
                ])
        }
    }

    /// The settings page in headless Chromium (Tests/browser/settings_flow.py, selenium): Deny → clear message,
    /// nothing stored; Allow → return_to, Connected; Disconnect → Not connected with a revoke at the sim; API key,
    /// switch to OAuth and back.
    @Test func browserSettingsFlow() async throws {
        let chromium = "/usr/bin/chromium"
        let driver = "/usr/bin/chromedriver"
        try #require(
            FileManager.default.isExecutableFile(atPath: chromium)
                && FileManager.default.isExecutableFile(atPath: driver),
            "headless Chromium is required: apt-get install -y chromium chromium-driver (scripts/install-deps.sh)")
        try await withServe { serve in
            let account = "org-web-\(serve.stack.prefix)"
            let klaviyoAccount = "acct-web-\(UUID().uuidString.lowercased().prefix(8))"
            let key = "pk_web_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            try await serve.stack.simAdmin(
                .POST, "/_sim/accounts",
                ["account_id": .string(klaviyoAccount), "api_key": .string(key), "name": "Browser Store"])
            try await serve.stack.simAdmin(.POST, "/_sim/oauth/login", ["account_id": .string(klaviyoAccount)])
            let revokesBefore = try await serve.stack.tokenCalls()["revoke"] ?? 0

            let output = try await runBrowserScript([
                "--settings-url", serve.link("/settings/klaviyo", account: account, expiresIn: 900),
                "--return-to", serve.returnTo, "--api-key", key,
            ])
            let result = try #require(try? JSONValue.parse(Array(output.stdout.utf8)), "script output: \(output)")
            #expect(
                output.status == 0 && result["ok"] == .bool(true),
                "browser flow failed: \(output.stdout) \(output.stderr)")
            #expect(result["steps"]?.arrayValue?.count == 13, "every step of the browser flow ran")
            // Disconnect of OAuth once, and the OAuth connection replaced by the API key once.
            #expect((try await serve.stack.tokenCalls()["revoke"] ?? 0) >= revokesBefore + 2)
            #expect(try await serve.stack.credentialStore.load(accountID: account)?.state == .disconnected)
        }
    }
}

/// Runs Tests/browser/settings_flow.py (output to temporary files) and waits for it, bounded.
func runBrowserScript(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("browser/settings_flow.py").path
    let directory = FileManager.default.temporaryDirectory
    let outPath = directory.appendingPathComponent("browser-\(UUID().uuidString).out").path
    let errPath = directory.appendingPathComponent("browser-\(UUID().uuidString).err").path
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script] + arguments
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    try process.run()
    do {
        try await eventually("the browser script to finish", timeout: .seconds(180)) { !process.isRunning }
    } catch {
        process.terminate()
        throw error
    }
    let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    return (process.terminationStatus, stdout, stderr)
}

/// Issue #9, browser flows and `serve` hardening: each probe as a hostile page, a victim's browser or an
/// operator would trigger it.
@Suite("serve: hardening of the browser flows and the HTTP surface")
struct ServeHardeningTests {
    /// A victim who approves an attacker's authorize URL connects nothing: the callback needs the cookie of the
    /// browser that started the flow. Without it, or with another one, the page refuses, nothing is stored and
    /// the state is spent; with it, the flow connects.
    @Test func oauthStateIsBoundToTheBrowserThatStartedIt() async throws {
        try await withServe { serve in
            let victim = "org-victim-\(serve.stack.prefix)"
            let attacker = "org-attacker-\(serve.stack.prefix)"
            let klaviyoAccount = "acct-bind-\(UUID().uuidString.lowercased().prefix(8))"
            try await serve.stack.simAdmin(
                .POST, "/_sim/accounts",
                ["account_id": .string(klaviyoAccount), "api_key": "pk_bind_unused_key", "name": "Victim Store"])

            // The cookie: HttpOnly, Secure, SameSite=Lax, scoped to /oauth/klaviyo, as long as the state lives;
            // Redis keeps only its digest.
            let flow = try await serve.startFlow(serve.link("/oauth/klaviyo/start", account: attacker))
            let attributes = flow.setCookie.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(flow.cookie.hasPrefix("kr_oauth=") && flow.cookie.count > "kr_oauth=".count + 20)
            for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/oauth/klaviyo", "Max-Age=600"] {
                #expect(attributes.contains(attribute), "\(attribute) in \(flow.setCookie)")
            }
            let stored = try #require(try await serve.stack.redis.get(RedisKeys.oauthState(flow.state)))
            let nonce = String(flow.cookie.dropFirst("kr_oauth=".count))
            #expect(!stored.contains(nonce), "the state keeps a digest, never the cookie's nonce")
            #expect(try JSONValue.parse(Array(stored.utf8))["browser_binding"]?.stringValue?.count == 64)

            // The attacker's authorize URL, approved in the victim's browser (no cookie, or its own).
            let approved = try await serve.get(flow.authorize + "&login_account=\(klaviyoAccount)&decision=allow")
            let callback = try #require(approved.headers["Location"])
            let first = try await serve.get(callback)
            #expect(first.status == 403, "no cookie → \(first.status)")
            #expect(first.bodyString.contains("not started in this browser"), "\(first.bodyString)")
            #expect(first.headers["Location"] == nil)
            #expect(!first.bodyString.contains("start-again"), "no link to continue someone else's flow")
            #expect(first.headers["Set-Cookie"]?.contains("Max-Age=0") == true, "the cookie is cleared")
            #expect(try await serve.stack.redis.exists(RedisKeys.connection(attacker)) == false, "nothing stored")
            #expect(try await serve.stack.redis.exists(RedisKeys.oauthState(flow.state)) == false, "state spent")
            // Even the right cookie cannot use the spent state afterwards.
            let late = try await serve.get(callback, cookie: flow.cookie)
            #expect(late.status == 400 && late.bodyString.contains("already used"))
            #expect(try await serve.stack.redis.exists(RedisKeys.connection(attacker)) == false)

            // A wrong cookie on a fresh flow: refused too.
            let other = try await serve.consent(
                serve.link("/oauth/klaviyo/start", account: victim), klaviyoAccount: klaviyoAccount, decision: "allow")
            let wrong = try await serve.get(other.url, cookie: flow.cookie)
            #expect(wrong.status == 403 && wrong.bodyString.contains("not started in this browser"))
            #expect(try await serve.stack.redis.exists(RedisKeys.connection(victim)) == false)

            // The browser that started the flow connects.
            let mine = try await serve.consent(
                serve.link("/oauth/klaviyo/start", account: victim), klaviyoAccount: klaviyoAccount, decision: "allow")
            let connected = try await serve.get(mine.url, cookie: mine.cookie)
            #expect(connected.status == 302 && connected.headers["Location"] == serve.returnTo)
            #expect(connected.headers["Set-Cookie"]?.contains("Max-Age=0") == true)
            #expect(try await serve.stack.credentialStore.load(accountID: victim)?.state == .connected)
        }
    }

    /// Klaviyo's `error` and `error_description` are never echoed: known codes get a fixed message, anything
    /// else one generic message. The "connect again" link keeps the expiry of the link that started the flow.
    @Test func callbackShowsFixedMessagesAndKeepsTheOriginalExpiry() async throws {
        try await withServe { serve in
            let account = "org-err-\(serve.stack.prefix)"
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
                let flow = try await serve.startFlow(serve.base + original.pathAndQuery)
                var items = URLComponents()
                items.queryItems = [
                    .init(name: "state", value: flow.state), .init(name: "error", value: probe.error),
                    .init(name: "error_description", value: "<b>kr-description-marker</b> call +1-555-evil"),
                ]
                let url = serve.base + "/oauth/klaviyo/callback?" + (items.percentEncodedQuery ?? "")
                let page = try await serve.get(url, cookie: flow.cookie)
                #expect(page.status == 200)
                #expect(page.bodyString.contains(probe.expected), "\(probe.error): \(page.bodyString)")
                #expect(page.bodyString.contains("Nothing was stored"))
                for leaked in ["kr-xss", "script", "kr_custom_unknown_code", "kr-description-marker", "555-evil"] {
                    #expect(!page.bodyString.contains(leaked), "\(leaked) echoed for \(probe.error)")
                }
                #expect(try await serve.stack.redis.exists(RedisKeys.connection(account)) == false)

                // "Connect again": signed for the start, with the original expiry, and it works.
                let again = try #require(Self.href(id: "start-again", in: page.bodyString), "\(page.bodyString)")
                let query = URLComponents(string: serve.base + again)?.queryItems ?? []
                #expect(again.hasPrefix("/oauth/klaviyo/start?"))
                #expect(query.first { $0.name == "expires" }?.value == String(original.expires), "\(again)")
                if index == 0 {
                    let restarted = try await serve.get(serve.base + again)
                    #expect(restarted.status == 302, "the connect-again link opens the start")
                }
            }
        }
    }

    /// Links open only the action they were signed for, v1 links (no action in the MAC) are refused, and a link
    /// may not live longer than RELAY_LINK_MAX_TTL (1h by default); the settings page's own links and forms keep
    /// the expiry of the page's link.
    @Test func signedLinksCoverTheActionAndHaveAMaximumLifetime() async throws {
        try await withServe { serve in
            let account = "org-act-\(serve.stack.prefix)"
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
                "/settings/klaviyo/api-key", form: ServeFixture.formFields(start) + [("api_key", "pk_whatever")])
            #expect(posted.status == 403)

            // Within the limit: the page works, and its "Connect with Klaviyo" link is a start link with the
            // page's own expiry.
            let page = serve.signed("/settings/klaviyo", account: account, expiresIn: 3500)
            let settings = try await serve.get(serve.base + page.pathAndQuery)
            #expect(settings.status == 200)
            let connect = try #require(Self.href(id: "connect", in: settings.bodyString))
            #expect(connect.hasPrefix("/oauth/klaviyo/start?") && connect.contains("expires=\(page.expires)&"))
            #expect((try await serve.get(serve.base + connect)).status == 302)
        }
    }

    /// Every answer of the public port carries CSP, Referrer-Policy and nosniff; `/metrics` is only on the
    /// internal metrics port, `/healthz` stays public.
    @Test func securityHeadersAndMetricsOffThePublicPort() async throws {
        try await withServe { serve in
            let account = "org-hdr-\(serve.stack.prefix)"
            let answers: [(String, HTTPResponse)] = [
                ("settings page", try await serve.get(serve.link("/settings/klaviyo", account: account))),
                ("refusal page", try await serve.get(serve.link("/settings/klaviyo", account: account, secret: "x"))),
                ("start redirect", try await serve.get(serve.link("/oauth/klaviyo/start", account: account))),
                ("callback page", try await serve.get(serve.base + "/oauth/klaviyo/callback?state=nope")),
                ("JSON 401", try await serve.api(.GET, "/v1/accounts/\(account)/connection", token: nil)),
                ("JSON 200", try await serve.api(.GET, "/v1/accounts/\(account)/connection", token: serve.apiToken)),
                ("healthz", try await serve.get(serve.base + "/healthz")),
                ("metrics 404", try await serve.get(serve.base + "/metrics")),
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
            let metrics = try await serve.get("http://127.0.0.1:\(serve.metricsPort)/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.headers["Content-Type"]?.hasPrefix("text/plain") == true)
            let ready = try await serve.get("http://127.0.0.1:\(serve.metricsPort)/readyz")
            #expect(ready.status == 200 && ready.bodyString.contains("rabbitmq=up redis=up"))
        }
    }

    /// At most 5 API-key validations per account per 10 minutes: the 6th answers 429 with Retry-After (JSON) or
    /// a clear message (settings page), and Klaviyo is not called.
    @Test func apiKeyValidationsAreLimitedPerAccount() async throws {
        try await withServe { serve in
            let account = "org-keys-\(serve.stack.prefix)"
            let klaviyoAccount = "acct-keys-\(UUID().uuidString.lowercased().prefix(8))"
            let key = "pk_keys_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            try await serve.stack.simAdmin(
                .POST, "/_sim/accounts",
                ["account_id": .string(klaviyoAccount), "api_key": .string(key), "name": "Keys Store"])
            let path = "/v1/accounts/\(account)/connection/api-key"
            for attempt in 1...5 {
                let response = try await serve.api(.POST, path, token: serve.apiToken, body: ["api_key": .string(key)])
                #expect(response.status == 200, "attempt \(attempt): \(response.bodyString)")
            }
            let callsBefore = try await serve.stack.klaviyoRequests(account: klaviyoAccount).count
            #expect(callsBefore >= 5, "each accepted attempt asked Klaviyo")

            let sixth = try await serve.api(.POST, path, token: serve.apiToken, body: ["api_key": .string(key)])
            #expect(sixth.status == 429)
            #expect(sixth.json?["error"]?["code"]?.stringValue == "too_many_attempts")
            let retryAfter = Int(sixth.headers["Retry-After"] ?? "") ?? 0
            #expect((1...600).contains(retryAfter), "Retry-After \(sixth.headers["Retry-After"] ?? "none")")

            let settings = serve.signed("/settings/klaviyo", account: account)
            let page = try await serve.post(
                "/settings/klaviyo/api-key", form: ServeFixture.formFields(settings) + [("api_key", key)])
            #expect(page.status == 429)
            #expect(page.bodyString.contains("Too many API keys were tried"), "\(page.bodyString)")
            #expect(page.headers["Retry-After"] != nil)

            let callsAfter = try await serve.stack.klaviyoRequests(account: klaviyoAccount).count
            #expect(callsAfter == callsBefore, "Klaviyo was not called beyond the limit")
            let left = try await serve.stack.redis.send(["PTTL", APIKeyConnector.attemptsKey(account)]).int ?? -1
            #expect(left > 0 && left <= 600_000, "the counter expires with its window (\(left) ms)")
            // Another account is not affected.
            let other = try await serve.api(
                .POST, "/v1/accounts/\(account)-other/connection/api-key", token: serve.apiToken,
                body: ["api_key": .string(key)])
            #expect(other.status == 200)
        }
    }

    /// A connection sealed with a key id `serve` does not hold: the settings page says "Reconnect needed" with
    /// both connect options (not a 503), the JSON status answers 200 `reconnect_needed`, and connecting again
    /// overwrites the unreadable record.
    @Test func unreadableCredentialOffersToReconnect() async throws {
        try await withServe { serve in
            let account = "org-unread-\(serve.stack.prefix)"
            let klaviyoAccount = "acct-unread-\(UUID().uuidString.lowercased().prefix(8))"
            let key = "pk_unread_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            try await serve.stack.simAdmin(
                .POST, "/_sim/accounts",
                ["account_id": .string(klaviyoAccount), "api_key": .string(key), "name": "Unread Store"])
            let retired = try EncryptionKeyRing(
                specification: EncryptionKeyRing.generateSpecification(keyID: "retired\(UUID().uuidString.prefix(4))"))
            try await CredentialStore(redis: serve.stack.redis, keys: retired).saveAPIKey(
                accountID: account, apiKey: key, klaviyoAccountID: klaviyoAccount, klaviyoAccountName: "Unread Store")

            let link = serve.signed("/settings/klaviyo", account: account)
            let page = try await serve.get(serve.base + link.pathAndQuery)
            #expect(page.status == 200, "\(page.status) \(page.bodyString.prefix(400))")
            #expect(page.bodyString.contains("<h2 id=\"status\">Reconnect needed</h2>"), "\(page.bodyString)")
            #expect(Self.href(id: "connect", in: page.bodyString)?.hasPrefix("/oauth/klaviyo/start?") == true)
            #expect(page.bodyString.contains("id=\"api_key\"") && page.bodyString.contains("id=\"save-key\""))
            #expect(!page.bodyString.contains(key))

            let status = try await serve.api(.GET, "/v1/accounts/\(account)/connection", token: serve.apiToken)
            #expect(status.status == 200, "\(status.bodyString)")
            #expect(status.json?["state"]?.stringValue == "reconnect_needed")
            #expect(status.json?["connected"] == .bool(false))

            let saved = try await serve.post(
                "/settings/klaviyo/api-key", form: ServeFixture.formFields(link) + [("api_key", key)])
            #expect(saved.status == 303, "\(saved.bodyString)")
            let after = try await serve.get(serve.base + link.pathAndQuery)
            #expect(after.bodyString.contains("<h2 id=\"status\">Connected</h2>"))
            let record = try await serve.stack.credentialStore.load(accountID: account)
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

    /// A link signed the old way (v1: no action in the MAC), computed by python3's hmac.
    static func versionOneLink(_ serve: ServeFixture, path: String, account: String) throws -> String {
        let expires = Timestamp.nowSeconds() + 600
        let message = "v1\n\(account)\n\(serve.returnTo)\n\(expires)"
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            "import hmac,sys;print(hmac.new(sys.argv[1].encode(),sys.argv[2].encode(),'sha256').hexdigest())",
            serve.linkSecret, message,
        ]
        process.standardOutput = output
        try process.run()
        process.waitUntilExit()
        let signature = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(signature.count == 64)
        // The same query as a v2 link, with the v1 signature.
        let query = serve.signed(path, account: account, expiresIn: expires - Timestamp.nowSeconds()).query
        return serve.base + path + "?"
            + query.replacingOccurrences(
                of: #"(expires=)\d+&sig=[0-9a-f]+"#, with: "$1\(expires)&sig=\(signature)", options: .regularExpression)
    }
}

/// A port already in use ends `serve` and `consume` with one line naming the setting to change.
@Suite("Ports in use")
struct PortInUseTests {
    @Test func portInUseIsOneClearLine() async throws {
        let held = try HeldPort()
        defer { held.release() }
        let other = try freePort()
        let probes: [(arguments: [String], variables: [String: String], expected: String)] = [
            (
                ["serve", "--dev"], ["RELAY_HTTP_PORT": String(held.port), "RELAY_METRICS_PORT": "0"],
                "port \(held.port) is in use: set RELAY_HTTP_PORT to a free port"
            ),
            (
                ["serve", "--dev", "--port", String(held.port)], ["RELAY_METRICS_PORT": "0"],
                "port \(held.port) is in use: set --port to a free port"
            ),
            (
                ["serve", "--dev"], ["RELAY_HTTP_PORT": String(other), "RELAY_METRICS_PORT": String(held.port)],
                "port \(held.port) is in use: set RELAY_METRICS_PORT (0 disables metrics) to a free port"
            ),
            (
                ["serve", "--dev", "--metrics-port", String(held.port)], ["RELAY_HTTP_PORT": String(other)],
                "port \(held.port) is in use: set --metrics-port (0 disables metrics) to a free port"
            ),
            (
                ["consume", "--dev"], ["RELAY_METRICS_PORT": String(held.port)],
                "port \(held.port) is in use: set RELAY_METRICS_PORT (0 disables metrics) to a free port"
            ),
        ]
        for probe in probes {
            var variables = probe.variables
            variables["RELAY_AMQP_URL"] = IntegrationEnvironment.amqpURL
            variables["RELAY_REDIS_URL"] = IntegrationEnvironment.redisURL
            variables["RELAY_QUEUE_PREFIX"] = "it-port-\(UUID().uuidString.lowercased().prefix(8))"
            let process = try ConsumerProcess.start(variables: variables, arguments: probe.arguments)
            let exit: (reason: Process.TerminationReason, status: Int32)
            do {
                exit = try await process.waitForExit(timeout: .seconds(20))
            } catch {
                await process.stop()
                throw error
            }
            let lines = process.log.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            #expect(exit.status != 0, "\(probe.arguments) exited \(exit.status)")
            #expect(lines.count == 1, "\(probe.arguments): \(process.log)")
            #expect(lines.first?.contains(probe.expected) == true, "\(probe.arguments): \(process.log)")
            #expect(!process.log.contains("bind("))
        }
    }
}

/// A TCP port held open (listening on all interfaces) until released.
struct HeldPort {
    let descriptor: Int32
    let port: Int

    init() throws {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = INADDR_ANY
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, length) }
        }
        guard bound == 0, listen(socketFD, 1) == 0 else {
            close(socketFD)
            throw TimedOut(what: "a port to hold")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) }
        }
        descriptor = socketFD
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func release() { close(descriptor) }
}
