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

@Suite("serve: the process and its browser flow", .serialized, .timeLimit(.minutes(5)))
struct ServeTests {
    /// `klaviyo-relay serve` as a process (its routes are tested in-process in RelayServerTests): the public port
    /// answers /healthz, /readyz, a signed settings page (with the hardening headers) and the JSON API with the
    /// token from the environment; connecting publishes `connection.connected` on `klaviyo.connections`; /metrics
    /// is served on the metrics port only.
    @Test func servesThePublicAndTheMetricsPort() async throws {
        try await withServe { serve in
            let account = "org-smoke-\(serve.stack.prefix)"
            let health = try await serve.get(serve.base + "/healthz")
            #expect(health.status == 200 && health.bodyString == "ok\n")
            let ready = try await serve.get(serve.base + "/readyz")
            #expect(ready.status == 200 && ready.bodyString.contains("rabbitmq=up redis=up"), "\(ready.bodyString)")

            let page = try await serve.get(serve.link("/settings/klaviyo", account: account))
            #expect(page.status == 200, "\(page.status) \(page.bodyString.prefix(400))")
            #expect(page.bodyString.contains("<h2 id=\"status\">Not connected</h2>"), "\(page.bodyString)")
            #expect(page.headers["Content-Security-Policy"]?.contains("default-src 'none'") == true)
            let refused = try await serve.get(serve.link("/settings/klaviyo", account: account, secret: "not-it"))
            #expect(refused.status == 403)

            let path = "/v1/accounts/\(account)/connection"
            #expect(try await serve.api(.GET, path, token: nil).status == 401)
            let klaviyoAccount = "acct-smoke-\(UUID().uuidString.lowercased().prefix(8))"
            let key = "pk_smoke_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            try await serve.stack.simAdmin(
                .POST, "/_sim/accounts",
                ["account_id": .string(klaviyoAccount), "api_key": .string(key), "name": "Smoke Store"])
            let connected = try await serve.api(
                .POST, path + "/api-key", token: serve.apiToken, body: ["api_key": .string(key)])
            #expect(connected.status == 200 && connected.json?["state"]?.stringValue == "connected")
            try await eventually("connection.connected on the connections exchange", timeout: .seconds(10)) {
                serve.eventKeys(for: account) == ["connection.connected"]
            }
            // The event as published (bytes from the broker) is what schemas/connection-event.schema.json says.
            for body in serve.events.items.withLock({ $0.map(\.body) }) {
                #expect(throws: Never.self) { try ContractValidator.validateConnectionEvent(try JSONValue.parse(body)) }
            }

            #expect(try await serve.get(serve.base + "/metrics").status == 404, "no /metrics on the public port")
            let metrics = try await serve.get("http://127.0.0.1:\(serve.metricsPort)/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.headers["Content-Type"]?.hasPrefix("text/plain") == true)
            let internalReady = try await serve.get("http://127.0.0.1:\(serve.metricsPort)/readyz")
            #expect(internalReady.status == 200 && internalReady.bodyString.contains("rabbitmq=up redis=up"))
        }
    }

    /// The settings page in headless Chromium (Tests/browser/settings_flow.py, selenium): Deny → clear message,
    /// nothing stored; Allow → return_to, Connected, with the sync status recorded for the account (relative time,
    /// events of the last 24 hours, the last problem in plain words with Klaviyo's title escaped); Disconnect → Not
    /// connected with a revoke at the sim; API key, switch to OAuth and back.
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
            let revokesBefore = try await serve.stack.tokenCalls(client: serve.clientID)["revoke"] ?? 0
            // Sync status the page must show once connected: 5 events 3 minutes ago, a refusal an hour ago.
            let sync = SyncStatus(redis: serve.stack.redis)
            let now = Timestamp.nowMilliseconds()
            try await sync.record(
                accountID: account, succeeded: false, type: "event.track", commandID: "e0",
                detail: "klaviyo_rejected: event.track e0", klaviyoTitle: "<i>Forbidden</i>",
                nowMilliseconds: now - 3_600_000)
            try await sync.record(
                accountID: account, succeeded: true, type: "event.bulk_track", commandID: "e1", detail: "", items: 5,
                nowMilliseconds: now - 180_000)

            let output = try await runBrowserScript([
                "--settings-url", serve.link("/settings/klaviyo", account: account, expiresIn: 900),
                "--return-to", serve.returnTo, "--api-key", key, "--expect-synced-events", "5",
            ])
            let result = try #require(try? JSONValue.parse(Array(output.stdout.utf8)), "script output: \(output)")
            #expect(
                output.status == 0 && result["ok"] == .bool(true),
                "browser flow failed: \(output.stdout) \(output.stderr)")
            #expect(result["steps"]?.arrayValue?.count == 15, "every step of the browser flow ran")
            // Disconnect of OAuth once, and the OAuth connection replaced by the API key once.
            #expect((try await serve.stack.tokenCalls(client: serve.clientID)["revoke"] ?? 0) >= revokesBefore + 2)
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

/// A port already in use ends `serve` and `consume` with one line naming the setting to change.
@Suite("Ports in use", .timeLimit(.minutes(2)))
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
