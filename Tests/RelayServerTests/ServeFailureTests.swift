import AMQP
import Foundation
import HTTPClient
import Hummingbird
import HummingbirdTesting
import Klaviyo
import NIOCore
import NIOPosix
import Redis
import Relay
import RelayServer
import Synchronization
import Testing

/// `serve`'s application when its clients or its dependencies misbehave: idle connections, a Redis or a Klaviyo
/// that cannot be reached. Built here without the sim's OAuth app (``ServeHarness`` needs a working stack).
@Suite("serve in-process: idle connections and failing dependencies", .timeLimit(.minutes(2)))
struct ServeFailureTests {
    /// Where nothing listens: connections are refused at once.
    static let nowhere = "127.0.0.1:1"

    /// The application over `redisURL` and a Klaviyo at `klaviyoURL`, with an API token; `body` gets the test
    /// client and the credential store.
    static func run(
        _ setup: TestingSetup, redisURL: String = ServerEnvironment.redisURL,
        klaviyoURL: String = "http://\(nowhere)",
        configure: (inout RelayServerConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (any TestClientProtocol, CredentialStore) async throws -> Void
    ) async throws {
        let http = HTTPClient(logger: ServerEnvironment.logger)
        let redis = RedisClient(
            configuration: try RedisConfiguration(url: redisURL), logger: ServerEnvironment.logger)
        // Never run: only `/readyz` would look at it.
        let amqp = AMQPClient(
            configuration: try AMQPConfiguration(url: ServerEnvironment.amqpURL), logger: ServerEnvironment.logger)
        let store = CredentialStore(redis: redis, keys: .development)
        let klaviyo = KlaviyoClient(
            baseURL: klaviyoURL, transport: http, userAgent: "relay-server-tests", logger: ServerEnvironment.logger)
        let oauth = KlaviyoOAuthClient(
            baseURL: klaviyoURL, clientID: "failure-tests", clientSecret: "not-a-secret", transport: http,
            userAgent: "relay-server-tests")
        let lifecycle = ConnectionLifecycle(store: store, oauth: oauth, logger: ServerEnvironment.logger) { _ in }
        var configuration = RelayServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.apiToken = apiToken
        configure(&configuration)
        let dependencies = RelayServerDependencies(
            credentialStore: store, lifecycle: lifecycle,
            apiKeyConnector: APIKeyConnector(klaviyo: klaviyo, store: store, attemptLimit: .standard),
            oauthConnector: nil, amqp: amqp, redis: redis, logger: ServerEnvironment.logger)
        let app = buildApplication(configuration: configuration, dependencies: dependencies)
        do {
            try await app.test(setup) { client in try await body(client, store) }
        } catch {
            await redis.shutdown()
            await http.shutdown()
            throw error
        }
        await redis.shutdown()
        await http.shutdown()
    }

    static let apiToken = "failure-tests-token-\(UUID().uuidString.lowercased())"

    static func get(_ client: any TestClientProtocol, _ path: String) async throws -> ServeResponse {
        ServeResponse(
            try await client.execute(
                uri: path, method: .get, headers: [.authorization: "Bearer \(apiToken)"]))
    }

    /// A connection that never sends a request is closed by the server once the idle timeout has passed (here a
    /// short one; `serve` uses ``RelayServerConfiguration/defaultIdleTimeout``). A request still works.
    @Test func anIdleConnectionIsClosedByTheServer() async throws {
        let idle = Duration.milliseconds(500)
        let shortIdle: @Sendable (inout RelayServerConfiguration) -> Void = { $0.idleTimeout = idle }
        try await Self.run(.live, configure: shortIdle) { client, _ in
            let health = try await client.execute(uri: "/healthz", method: .get)
            #expect(health.status == .ok)

            let port = try #require(client.port)
            // Taken before connecting: the server's idle timer starts when it accepts, which a loaded machine may
            // report to this side well after (a time taken after `connect` made the lower bound below flaky).
            let opened = ContinuousClock.now
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            let gaveUp = Mutex(false)
            // Bounded: if the server keeps the connection, the test closes it itself after 10 s and fails.
            let bound = Task {
                try await Task.sleep(for: .seconds(10))
                gaveUp.withLock { $0 = true }
                try await channel.close()
            }
            try await channel.closeFuture.get()
            bound.cancel()
            let open = ContinuousClock.now - opened
            #expect(!gaveUp.withLock { $0 }, "the server kept a silent connection open for 10 s")
            #expect(open >= idle - .milliseconds(100), "closed after the idle timeout, not at once (\(open))")
        }
    }

    /// A request whose body trickles in (a byte every 200 ms, each of which restarted the idle timer, so the
    /// connection stayed as long as the client liked) is cut off once the request deadline has passed (here a
    /// short one; `serve` uses ``RelayServerConfiguration/defaultRequestTimeout``), while the idle timeout is far.
    @Test func aTricklingRequestIsCutOffAtTheRequestDeadline() async throws {
        let deadline = Duration.seconds(1)
        let configure: @Sendable (inout RelayServerConfiguration) -> Void = {
            $0.requestTimeout = deadline
            $0.idleTimeout = .seconds(60)
        }
        try await Self.run(.live, configure: configure) { client, _ in
            let port = try #require(client.port)
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            let opened = ContinuousClock.now
            try await channel.writeAndFlush(
                ByteBuffer(string: "POST /healthz HTTP/1.1\r\nHost: relay\r\nContent-Length: 1000\r\n\r\n"))
            let gaveUp = Mutex(false)
            // The client's side: a byte every 200 ms until the server closes, or the test gives up after 10 s.
            let trickle = Task {
                while ContinuousClock.now - opened < .seconds(10) {
                    try await Task.sleep(for: .milliseconds(200))
                    try await channel.writeAndFlush(ByteBuffer(string: "x"))
                }
                gaveUp.withLock { $0 = true }
                try await channel.close()
            }
            try await channel.closeFuture.get()
            trickle.cancel()
            let open = ContinuousClock.now - opened
            #expect(!gaveUp.withLock { $0 }, "the server kept a trickling request for 10 s")
            #expect(open >= deadline - .milliseconds(100), "cut off at the deadline, not at once (\(open))")
            // A request that arrives whole is answered as before.
            let health = try await client.execute(uri: "/healthz", method: .get)
            #expect(health.status == .ok)
        }
    }

    /// A route whose dependency throws something other than an HTTP error (here Redis cannot be reached) answers
    /// a 500 with a fixed body, never the error, and with the security headers.
    @Test func aFailingDependencyAnswers500WithTheSecurityHeaders() async throws {
        try await Self.run(.router, redisURL: "redis://\(Self.nowhere)/0") { client, _ in
            let account = "org-fail-\(UUID().uuidString.lowercased().prefix(8))"
            let status = try await Self.get(client, "/v1/accounts/\(account)/connection")
            #expect(status.status == 500, "\(status.status) \(status.bodyString)")
            #expect(status.json?["error"]?["code"]?.stringValue == "internal_error", "\(status.bodyString)")
            for detail in ["Redis", "127.0.0.1", "connection"] {
                #expect(!status.bodyString.contains(detail), "\(detail) in \(status.bodyString)")
            }
            #expect(status.headers["Content-Security-Policy"]?.contains("default-src 'none'") == true)
            #expect(status.headers["X-Content-Type-Options"] == "nosniff")
            #expect(status.headers["Referrer-Policy"] == "no-referrer")
            #expect(status.headers["Cache-Control"] == "no-store")
        }
    }

    /// Klaviyo unreachable: checking a key and uninstalling the app on disconnect fail with fixed messages that
    /// never carry the transport error (it is logged); the connection is kept.
    @Test func klaviyoFailuresAnswerFixedMessages() async throws {
        try await Self.run(.router) { client, store in
            let account = "org-down-\(UUID().uuidString.lowercased().prefix(8))"
            let path = "/v1/accounts/\(account)/connection"
            var headers = HTTPFields()
            headers[.authorization] = "Bearer \(Self.apiToken)"
            headers[.contentType] = "application/json"
            let checked = ServeResponse(
                try await client.execute(
                    uri: path + "/api-key", method: .post, headers: headers,
                    body: ByteBuffer(string: #"{"api_key": "pk_down_0123456789abcdef"}"#)))
            #expect(checked.status == 503)
            #expect(checked.json?["error"]?["code"]?.stringValue == "klaviyo_unavailable")
            for detail in ["127.0.0.1", "get_accounts", "transport", "("] {
                #expect(!checked.bodyString.contains(detail), "\(detail) in \(checked.bodyString)")
            }

            let now = Timestamp.now()
            _ = try await store.replace(
                ConnectionRecord(
                    accountID: account, method: .oauth, state: .connected, klaviyoAccountID: "acct-down",
                    connectedAt: now, updatedAt: now, accessToken: "access-down", refreshToken: "refresh-down"))
            let removed = ServeResponse(try await client.execute(uri: path, method: .delete, headers: headers))
            #expect(removed.status == 503)
            #expect(removed.json?["error"]?["code"]?.stringValue == "klaviyo_unavailable")
            for detail in ["127.0.0.1", "oauth transport", "refresh-down", "("] {
                #expect(!removed.bodyString.contains(detail), "\(detail) in \(removed.bodyString)")
            }
            #expect(try await store.load(accountID: account)?.state == .connected, "still connected")
            _ = try await store.redis.delete([RedisKeys.connection(account)])
        }
    }

    /// A key Klaviyo accepted that cannot be stored (Redis unreachable): `storage_failed` with a fixed message;
    /// the Redis error is kept as the underlying error for the log, never shown.
    @Test func aKeyThatCannotBeStoredFailsWithAFixedMessage() async throws {
        let sim = SimAdmin(http: SimAdmin.makeClient())
        let broken = RedisClient(
            configuration: try RedisConfiguration(url: "redis://\(Self.nowhere)/0"), logger: ServerEnvironment.logger)
        let klaviyoAccount = "acct-store-\(UUID().uuidString.lowercased().prefix(8))"
        let key = "pk_store_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        do {
            try await sim.admin(
                .POST, "/_sim/accounts",
                ["account_id": .string(klaviyoAccount), "api_key": .string(key), "name": "Store Fail"])
            let connector = APIKeyConnector(
                klaviyo: KlaviyoClient(
                    baseURL: ServerEnvironment.simURL, transport: sim.http, userAgent: "relay-server-tests",
                    logger: ServerEnvironment.logger),
                store: CredentialStore(redis: broken, keys: .development))
            await #expect {
                _ = try await connector.connect(accountID: "org-\(klaviyoAccount)", apiKey: key)
            } throws: { error in
                guard let failure = error as? APIKeyConnector.Failure else { return false }
                return failure.code == "storage_failed" && !failure.description.contains("Redis")
                    && !failure.description.contains("127.0.0.1")
            }
        } catch {
            await broken.shutdown()
            await sim.shutdown()
            throw error
        }
        await broken.shutdown()
        await sim.shutdown()
    }
}
