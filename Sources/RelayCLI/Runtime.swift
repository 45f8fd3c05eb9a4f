import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Logging
import Redis
import Relay
import RelayServer

/// The clients a subcommand works with, built from the environment in one place.
struct Runtime {
    let configuration: RelayConfiguration
    let logger: Logger
    let topology: RelayTopology
    let amqp: AMQPClient
    let redis: RedisClient
    let http: HTTPClient
    let klaviyo: KlaviyoClient
    let credentialStore: CredentialStore

    static let version = "0.1.0"

    /// Reads the configuration, bootstraps logging once, and creates (but does not start) the clients.
    static func make(
        _ options: GlobalOptions, label: String, connectionName: String, amqpWriteBatchingDelay: Duration = .zero
    ) throws -> Runtime {
        var configuration: RelayConfiguration
        do {
            configuration = try RelayConfiguration(
                environment: ProcessInfo.processInfo.environment, development: options.dev)
        } catch {
            throw CLIError("configuration: \(error)")
        }
        if let level = options.logLevel { configuration.logLevel = level }
        LoggingOnce.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
        let logger = Logger(label: label)
        let topology = RelayTopology(
            prefix: configuration.queuePrefix, deliveryLimit: configuration.deliveryLimit,
            mode: configuration.topologyMode)
        let amqpConfiguration: AMQPConfiguration
        let redisConfiguration: RedisConfiguration
        do {
            var amqp = try configuration.amqpConfiguration(connectionName: connectionName)
            amqp.writeBatchingDelay = amqpWriteBatchingDelay
            amqpConfiguration = amqp
            redisConfiguration = try configuration.redisConfiguration()
        } catch {
            throw CLIError("\(error)")
        }
        let amqp = AMQPClient(configuration: amqpConfiguration, topology: topology.amqpTopology, logger: logger)
        let redis = RedisClient(configuration: redisConfiguration, logger: logger)
        let http = HTTPClient(
            configuration: configuration.httpConfiguration(userAgent: "klaviyo-relay/\(version)"), logger: logger)
        let klaviyo = KlaviyoClient(
            baseURL: configuration.klaviyoBaseURL, transport: http, userAgent: "klaviyo-relay/\(version)",
            logger: logger)
        return Runtime(
            configuration: configuration, logger: logger, topology: topology, amqp: amqp, redis: redis, http: http,
            klaviyo: klaviyo,
            credentialStore: CredentialStore(redis: redis, keys: configuration.encryptionKeys))
    }

    /// Runs `body` with the AMQP connection up (for one-shot commands), then closes everything.
    func withAMQP<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await withConnectedClients(amqp: amqp, redis: redis, http: http, body)
    }
}

/// Bootstraps logging at most once per process.
enum LoggingOnce {
    nonisolated(unsafe) static var done = false
    static let lock = NSLock()

    static func bootstrap(format: String, level: String) {
        lock.lock()
        defer { lock.unlock() }
        guard !done else { return }
        done = true
        RelayLogging.bootstrap(format: format, level: level)
    }
}

/// A failure to report to the operator in one line, with exit code 1 (or `exitCode`).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Runtime {
    /// The OAuth token client, when `RELAY_KLAVIYO_CLIENT_ID` and `RELAY_KLAVIYO_CLIENT_SECRET` are set.
    var oauthClient: KlaviyoOAuthClient? {
        guard let clientID = configuration.klaviyoClientID, let secret = configuration.klaviyoClientSecret else {
            return nil
        }
        return KlaviyoOAuthClient(
            baseURL: configuration.klaviyoBaseURL, clientID: clientID, clientSecret: secret, transport: http,
            userAgent: "klaviyo-relay/\(Runtime.version)")
    }

    /// Connect / replace / disconnect (with revoke), publishing connection events on the connections exchange.
    func connectionLifecycle() -> ConnectionLifecycle {
        let amqp = self.amqp
        let exchange = topology.connectionsExchange
        return ConnectionLifecycle(
            store: credentialStore, oauth: oauthClient, lockTTL: configuration.tokenLockTTL, logger: logger
        ) { event in
            var properties = AMQPProperties()
            properties.contentType = "application/json"
            properties.persistent = true
            properties.timestamp = UInt64(Timestamp.nowSeconds())
            properties.appID = ProcessIdentity.appID
            try await amqp.publish(
                AMQPMessage(
                    exchange: exchange, routingKey: event.routingKey, body: event.encoded(), properties: properties))
        }
    }

    /// What `serve`'s HTTP application works with: the store, the lifecycle (events on `klaviyo.connections`), the
    /// API-key connector (attempts limited per account), the OAuth connector when configured (starts limited per
    /// account), and the clients `/readyz` checks.
    func serverDependencies() -> RelayServerDependencies {
        RelayServerDependencies(
            credentialStore: credentialStore, lifecycle: connectionLifecycle(),
            apiKeyConnector: APIKeyConnector(klaviyo: klaviyo, store: credentialStore, attemptLimit: .standard),
            oauthConnector: try? oauthConnector(startLimit: configuration.oauthStartLimit), amqp: amqp, redis: redis,
            logger: logger)
    }

    /// The token manager of `consume` (nil without OAuth client credentials); connection events go to
    /// `klaviyo.connections`.
    func tokenManager(cache: CredentialCache) -> TokenManager? {
        guard let oauth = oauthClient else { return nil }
        var settings = TokenManager.Settings()
        settings.refreshMargin = configuration.tokenRefreshMargin
        settings.lockTTL = configuration.tokenLockTTL
        settings.waitTimeout = configuration.tokenWaitTimeout
        let amqp = self.amqp
        let exchange = topology.connectionsExchange
        return TokenManager(
            store: credentialStore, oauth: oauth, settings: settings, cache: cache, logger: logger
        ) { event in
            var properties = AMQPProperties()
            properties.contentType = "application/json"
            properties.persistent = true
            properties.timestamp = UInt64(Timestamp.nowSeconds())
            properties.appID = ProcessIdentity.appID
            try await amqp.publish(
                AMQPMessage(
                    exchange: exchange, routingKey: event.routingKey, body: event.encoded(), properties: properties))
        }
    }
}

extension Runtime {
    /// Klaviyo's rate limits shared by all consumers through Redis (nil with `RELAY_RATE_LIMIT=off`).
    /// The process's `event.track` batcher (nil when `RELAY_BATCH_WINDOW=0`).
    var eventBatcher: EventBatcher? {
        guard configuration.batchWindow > .zero else { return nil }
        return EventBatcher(
            window: configuration.batchWindow,
            pace: EventBatcher.defaultPace(share: configuration.rateLimitEnabled ? configuration.rateLimitShare : 1),
            logger: logger)
    }

    /// The process's `profile.upsert` coalescer (nil with `RELAY_COALESCE=off`); the rate limiter measures the
    /// single-call backlog.
    var profileCoalescer: ProfileCoalescer? {
        guard let settings = configuration.coalescing else { return nil }
        let limiter = rateLimiter
        return ProfileCoalescer(
            redis: redis, settings: settings, crashPoint: configuration.crashPoint, logger: logger
        ) { account, operation in
            try await limiter?.backlog(accountID: account, operationID: operation) ?? .zero
        }
    }

    var rateLimiter: RateLimiter? {
        guard configuration.rateLimitEnabled else { return nil }
        return RateLimiter(
            redis: redis,
            settings: .init(share: configuration.rateLimitShare, maxWait: configuration.rateLimitMaxWait))
    }

    /// The OAuth connector (`connections oauth-url` / `oauth-callback`, and `serve` with its start limit); needs
    /// the OAuth client credentials.
    func oauthConnector(startLimit: OAuthConnector.StartLimit? = nil) throws -> OAuthConnector {
        guard let oauth = oauthClient else {
            throw CLIError("OAuth is disabled: set RELAY_KLAVIYO_CLIENT_ID and RELAY_KLAVIYO_CLIENT_SECRET")
        }
        return OAuthConnector(
            oauth: oauth, klaviyo: klaviyo, store: credentialStore, authorizeURL: configuration.klaviyoAuthorizeURL,
            redirectURI: configuration.oauthRedirectURL, startLimit: startLimit)
    }
}
