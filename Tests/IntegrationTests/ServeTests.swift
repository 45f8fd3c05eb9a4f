import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Redis
import Relay
import Synchronization
import Testing

/// A running `klaviyo-relay serve` for one stack, with an OAuth app registered in klaviyo-sim whose redirect
/// URI is this server's callback, and a queue collecting `klaviyo.connections` events.
struct ServeFixture {
    let stack: RelayStack
    let process: ConsumerProcess
    let port: Int
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
                "RELAY_HTTP_PORT": String(port), "RELAY_API_TOKEN": apiToken, "RELAY_LINK_SECRET": linkSecret,
                "RELAY_RETURN_TO_ALLOWLIST": "http://127.0.0.1:\(port)/healthz,https://app.heropixel.test/",
                "RELAY_LOG_FORMAT": "json", "RELAY_LOG_LEVEL": "debug",
            ], arguments: ["serve", "--dev"])
        let fixture = ServeFixture(
            stack: stack, process: process, port: port, apiToken: apiToken, linkSecret: linkSecret, clientID: clientID,
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

    /// A signed link (as the dashboard backend makes it).
    func link(
        _ path: String, account: String, returnTo: String? = nil, expiresIn: Int64 = 600, secret: String? = nil
    )
        -> String
    {
        let signed = SignedLink.sign(
            accountID: account, returnTo: returnTo ?? self.returnTo, expires: Timestamp.nowSeconds() + expiresIn,
            secret: secret ?? linkSecret)
        return base + path + "?" + signed.query
    }

    func get(_ url: String, token: String? = nil) async throws -> HTTPResponse {
        var headers = HTTPHeaders()
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        return try await stack.http.execute(HTTPRequest(method: .GET, url: url, headers: headers))
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
    func oauthFlow(account: String, klaviyoAccount: String, decision: String) async throws -> HTTPResponse {
        let start = try await get(link("/oauth/klaviyo/start", account: account))
        #expect(start.status == 302)
        let authorize = try #require(start.headers["Location"])
        let consent = try await get(authorize + "&login_account=\(klaviyoAccount)&decision=\(decision)")
        #expect(consent.status == 302)
        let callback = try #require(consent.headers["Location"])
        #expect(callback.hasPrefix(base + "/oauth/klaviyo/callback"))
        return try await get(callback)
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
            let start = try await serve.get(serve.link("/oauth/klaviyo/start", account: account))
            let consent = try await serve.get(
                try #require(start.headers["Location"]) + "&login_account=\(klaviyoAccount)&decision=allow")
            let callback = try #require(consent.headers["Location"])
            let first = try await serve.get(callback)
            #expect(first.status == 302 && first.headers["Location"] == serve.returnTo)
            let replay = try await serve.get(callback)
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
