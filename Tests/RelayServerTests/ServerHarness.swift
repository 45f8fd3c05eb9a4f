import AMQP
import Foundation
import Hummingbird
import HummingbirdTesting
import Klaviyo
import Logging
import Redis
import Relay
import RelayServer
import Synchronization
import Testing

/// Where the real servers are (the test command starts RabbitMQ, Redis and klaviyo-sim and exports these); a
/// missing server fails the tests loudly.
enum ServerEnvironment {
    static let environment = ProcessInfo.processInfo.environment
    static let amqpURL = environment["RELAY_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"
    static let redisURL = environment["RELAY_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
    static let simURL = environment["KLAVIYO_SIM_URL"] ?? "http://127.0.0.1:8089"
    static let logger: Logger = {
        var logger = Logger(label: "relay-server-tests")
        logger.logLevel = .warning
        return logger
    }()
}

/// Connection events the application's lifecycle published (in memory: publishing them on
/// `klaviyo.connections` is the executable's wiring, covered by the spawned smoke test).
final class EventLog: Sendable {
    let events = Mutex<[ConnectionEvent]>([])
    /// Accounts whose connection change found the account's refresh lock held and waited for it.
    let lockWaits = Mutex<[String]>([])
}

/// `serve`'s application run in-process (HummingbirdTesting's router client) against real Redis, RabbitMQ (for
/// `/readyz`) and klaviyo-sim, with an OAuth app registered in the sim whose redirect URI is
/// ``ServeHarness/callbackURL`` (its path and query are opened in-process, as a browser would open the URL).
struct ServeHarness: Sendable {
    /// The host of the registered redirect URI (never contacted).
    static let origin = "https://relay.heropixel.test"
    static var callbackURL: String { origin + "/oauth/klaviyo/callback" }

    let client: any TestClientProtocol
    let prefix: String
    let amqp: AMQPClient
    let redis: RedisClient
    let sim: SimAdmin
    let credentialStore: CredentialStore
    /// The application's Klaviyo clients (API and OAuth, the registered app's credentials).
    let klaviyo: KlaviyoClient
    let oauth: KlaviyoOAuthClient
    let apiToken: String
    let linkSecret: String
    let events: EventLog
    /// The sim's last recorded request before the test (earlier requests belong to other tests).
    let recordedSince: Int

    /// An allowlisted return URL.
    var returnTo: String { "https://app.heropixel.test/settings" }

    /// Builds the clients and the application, runs `body` with a router client, then closes everything.
    static func run(_ body: @escaping @Sendable (ServeHarness) async throws -> Void) async throws {
        let prefix = "rs-\(UUID().uuidString.lowercased().prefix(12))"
        var amqpConfiguration = try AMQPConfiguration(url: ServerEnvironment.amqpURL)
        amqpConfiguration.connectionName = "relay-server-tests \(prefix)"
        let amqp = AMQPClient(configuration: amqpConfiguration, logger: ServerEnvironment.logger)
        let redis = RedisClient(
            configuration: try RedisConfiguration(url: ServerEnvironment.redisURL), logger: ServerEnvironment.logger)
        let sim = SimAdmin(http: SimAdmin.makeClient())
        let connection = Task { try await amqp.run() }
        defer { connection.cancel() }
        do {
            do {
                try await amqp.waitUntilConnected(timeout: .seconds(20))
            } catch {
                Issue.record("RabbitMQ is not reachable at \(ServerEnvironment.amqpURL): \(error)")
                throw error
            }
            try await redis.ping()
            try await runApplication(prefix: prefix, amqp: amqp, redis: redis, sim: sim, body)
        } catch {
            await close(amqp: amqp, connection: connection, redis: redis, sim: sim)
            throw error
        }
        await close(amqp: amqp, connection: connection, redis: redis, sim: sim)
    }

    static func close(amqp: AMQPClient, connection: Task<Void, any Error>, redis: RedisClient, sim: SimAdmin) async {
        await amqp.shutdown()
        _ = await connection.result
        await redis.shutdown()
        await sim.shutdown()
    }

    static func runApplication(
        prefix: String, amqp: AMQPClient, redis: RedisClient, sim: SimAdmin,
        _ body: @escaping @Sendable (ServeHarness) async throws -> Void
    ) async throws {
        let clientID = "serve-\(prefix)"
        let clientSecret = "secret-\(UUID().uuidString.lowercased())"
        let page = try await sim.admin(.GET, "/_sim/requests?since=0&limit=1")
        let recordedSince = page["last_seq"]?.integer ?? 0
        try await sim.admin(
            .POST, "/_sim/oauth/apps",
            [
                "client_id": .string(clientID), "client_secret": .string(clientSecret),
                "redirect_uris": [.string(callbackURL)],
                "scopes": .array(OAuthConnector.defaultScopes.split(separator: " ").map { .string(String($0)) }),
            ])
        let store = CredentialStore(redis: redis, keys: .development)
        let klaviyo = KlaviyoClient(
            baseURL: ServerEnvironment.simURL, transport: sim.http, userAgent: "relay-server-tests",
            logger: ServerEnvironment.logger)
        let oauth = KlaviyoOAuthClient(
            baseURL: ServerEnvironment.simURL, clientID: clientID, clientSecret: clientSecret, transport: sim.http,
            userAgent: "relay-server-tests")
        let events = EventLog()
        let lifecycle = ConnectionLifecycle(
            store: store, oauth: oauth,
            hooks: .init(waitingForLock: { account in events.lockWaits.withLock { $0.append(account) } }),
            logger: ServerEnvironment.logger
        ) { event in
            events.events.withLock { $0.append(event) }
        }
        let apiToken = "api-token-\(UUID().uuidString.lowercased())"
        let linkSecret = "link-secret-\(UUID().uuidString.lowercased())"
        var configuration = RelayServerConfiguration()
        configuration.port = 0
        configuration.apiToken = apiToken
        configuration.linkSecret = linkSecret
        configuration.returnToAllowlist = ["https://app.heropixel.test/"]
        let dependencies = RelayServerDependencies(
            credentialStore: store, lifecycle: lifecycle,
            apiKeyConnector: APIKeyConnector(klaviyo: klaviyo, store: store, attemptLimit: .standard),
            oauthConnector: OAuthConnector(
                oauth: oauth, klaviyo: klaviyo, store: store,
                authorizeURL: ServerEnvironment.simURL + "/oauth/authorize", redirectURI: callbackURL,
                startLimit: .standard),
            amqp: amqp, redis: redis, logger: ServerEnvironment.logger)
        let app = buildApplication(configuration: configuration, dependencies: dependencies)
        try await app.test(.router) { client in
            try await body(
                ServeHarness(
                    client: client, prefix: prefix, amqp: amqp, redis: redis, sim: sim, credentialStore: store,
                    klaviyo: klaviyo, oauth: oauth, apiToken: apiToken, linkSecret: linkSecret, events: events,
                    recordedSince: recordedSince))
        }
    }

    // MARK: Links and requests

    /// A signed link's path and query (as the dashboard backend makes it), for the action of `path` unless
    /// `signedFor` says otherwise.
    func link(
        _ path: String, account: String, returnTo: String? = nil, expiresIn: Int64 = 600, secret: String? = nil,
        signedFor: SignedLink.Action? = nil
    ) -> String {
        path + "?"
            + signed(
                path, account: account, expiresIn: expiresIn, secret: secret, returnTo: returnTo, signedFor: signedFor
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

    /// GET of a path (or of a URL under ``origin``, as the sim redirects to) in-process.
    func get(_ path: String, token: String? = nil, cookie: String? = nil) async throws -> ServeResponse {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        if let cookie { headers[.cookie] = cookie }
        let uri = path.hasPrefix(Self.origin) ? String(path.dropFirst(Self.origin.count)) : path
        return ServeResponse(try await client.execute(uri: uri, method: .get, headers: headers))
    }

    /// POSTs a form (the settings page's forms).
    func post(_ path: String, form fields: [(String, String)]) async throws -> ServeResponse {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let body = fields.map {
            "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)"
        }.joined(separator: "&")
        var headers = HTTPFields()
        headers[.contentType] = "application/x-www-form-urlencoded"
        return ServeResponse(
            try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body)))
    }

    /// A JSON API call.
    func api(
        _ method: HTTPRequest.Method, _ path: String, token: String?, body: JSONValue? = nil
    ) async throws -> ServeResponse {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        headers[.contentType] = "application/json"
        return ServeResponse(
            try await client.execute(
                uri: path, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0.jsonBytes()) }))
    }

    /// The form fields of a signed link.
    static func formFields(_ link: SignedLink) -> [(String, String)] {
        [
            ("account_id", link.accountID), ("return_to", link.returnTo), ("expires", String(link.expires)),
            ("sig", link.signature),
        ]
    }

    // MARK: OAuth flows

    /// Opens a start link: returns Klaviyo's authorize URL, the `kr_oauth=<nonce>` cookie to send back, the raw
    /// Set-Cookie header and the state.
    func startFlow(_ path: String) async throws -> (authorize: String, cookie: String, setCookie: String, state: String)
    {
        let start = try await get(path)
        #expect(start.status == 302, "start: \(start.status) \(start.bodyString.prefix(300))")
        let authorize = try #require(start.headers["Location"])
        let setCookie = try #require(start.headers["Set-Cookie"], "start sets the browser cookie")
        let cookie = String(try #require(setCookie.split(separator: ";").first))
        let state = try #require(
            URLComponents(string: authorize)?.queryItems?.first { $0.name == "state" }?.value, "state in \(authorize)")
        return (authorize, cookie, setCookie, state)
    }

    /// The sim's answer to its authorize URL with a login and a decision (a 302 to the callback).
    func authorize(_ url: String, klaviyoAccount: String, decision: String) async throws -> SimAdmin.Redirect {
        try await sim.open(url + "&login_account=\(klaviyoAccount)&decision=\(decision)")
    }

    /// Start → sim authorize (decision); returns the callback URL (not opened) and the browser cookie.
    func consent(
        _ startPath: String, klaviyoAccount: String, decision: String
    ) async throws -> (
        url: String, cookie: String
    ) {
        let flow = try await startFlow(startPath)
        let consent = try await authorize(flow.authorize, klaviyoAccount: klaviyoAccount, decision: decision)
        #expect(consent.status == 302)
        let callback = try #require(consent.location)
        #expect(callback.hasPrefix(Self.callbackURL))
        return (callback, flow.cookie)
    }

    /// Goes through start → sim authorize (decision) → callback; returns the callback response. The browser's
    /// `kr_oauth` cookie from start is sent back to the callback, as a browser does.
    func oauthFlow(account: String, klaviyoAccount: String, decision: String) async throws -> ServeResponse {
        let callback = try await consent(
            link("/oauth/klaviyo/start", account: account), klaviyoAccount: klaviyoAccount, decision: decision)
        return try await get(callback.url, cookie: callback.cookie)
    }

    // MARK: Observations

    /// Routing keys of the connection events published for one account.
    func eventKeys(for account: String) -> [String] {
        events.events.withLock { $0.filter { $0.accountID == account }.map(\.routingKey) }
    }

    /// How many times a connection change of one account found the account's refresh lock held and waited.
    func lockWaits(for account: String) -> Int {
        events.lockWaits.withLock { $0.filter { $0 == account }.count }
    }

    /// Number of `kr:oauth:state:*` keys that mention an account.
    func storedStates(for account: String) async throws -> Int {
        var count = 0
        for key in try await redis.scan(match: "kr:oauth:state:*") {
            if let value = try await redis.get(key), value.contains("\"\(account)\"") { count += 1 }
        }
        return count
    }

    /// Creates an account in klaviyo-sim.
    func createSimAccount(_ accountID: String, apiKey: String, name: String) async throws {
        try await sim.admin(
            .POST, "/_sim/accounts",
            ["account_id": .string(accountID), "api_key": .string(apiKey), "name": .string(name)])
    }

    /// Requests klaviyo-sim recorded for one of its accounts since the harness started.
    func klaviyoRequests(account: String) async throws -> [JSONValue] {
        var since = recordedSince
        var found: [JSONValue] = []
        while true {
            let page = try await sim.admin(.GET, "/_sim/requests?since=\(since)&limit=2000")
            let entries = page["requests"]?.arrayValue ?? []
            found += entries.filter { $0["account_id"]?.stringValue == account }
            guard let next = page["next_seq"]?.integer, !entries.isEmpty, next > since else { break }
            since = next
        }
        return found
    }

    /// Grants of one sim account revoked at `/oauth/revoke` since the harness started.
    func revokes(of klaviyoAccount: String) async throws -> Int {
        try await klaviyoRequests(account: klaviyoAccount).filter {
            $0["path"]?.stringValue == "/oauth/revoke" && $0["status"]?.integer == 200
        }.count
    }
}

/// An answer of the application: status, headers by name, body.
struct ServeResponse: Sendable {
    /// Header values by name (case-insensitive).
    struct Headers: Sendable {
        let fields: HTTPFields
        subscript(name: String) -> String? {
            let values = fields.filter { $0.name.canonicalName == name.lowercased() }.map(\.value)
            return values.isEmpty ? nil : values.joined(separator: ", ")
        }
    }

    let status: Int
    let headers: Headers
    let bodyString: String

    init(_ response: TestResponse) {
        status = Int(response.status.code)
        headers = Headers(fields: response.headers)
        bodyString = String(buffer: response.body)
    }

    var json: JSONValue? { try? JSONValue.parse(Array(bodyString.utf8)) }
}

extension JSONValue {
    /// The value of an integer.
    var integer: Int? {
        if case .int(let value) = self { return Int(value) }
        return nil
    }
}
