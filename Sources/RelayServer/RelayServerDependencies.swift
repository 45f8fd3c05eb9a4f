public import AMQP
public import Logging
public import Redis
public import Relay

/// What `serve`'s HTTP application works with, built by the executable (or a test) and handed to
/// ``buildApplication(configuration:dependencies:)``. The application only uses these clients; it starts none of
/// them: whoever builds the dependencies runs the AMQP client and shuts the clients down.
public struct RelayServerDependencies: Sendable {
    /// Where connections are stored (encrypted, in Redis).
    public var credentialStore: CredentialStore
    /// Connect / replace / disconnect, publishing connection events.
    public var lifecycle: ConnectionLifecycle
    /// Validates and stores private API keys (attempts limited per account).
    public var apiKeyConnector: APIKeyConnector
    /// The OAuth flow; nil when OAuth is not configured (the pages then offer the API key only).
    public var oauthConnector: OAuthConnector?
    /// The broker connection `/readyz` reports on.
    public var amqp: AMQPClient
    /// The Redis client `/readyz` pings.
    public var redis: RedisClient
    /// The application's logger (connections made, refused callbacks); the HTTP server itself logs warnings only.
    public var logger: Logger

    /// Dependencies from their parts.
    public init(
        credentialStore: CredentialStore, lifecycle: ConnectionLifecycle, apiKeyConnector: APIKeyConnector,
        oauthConnector: OAuthConnector?, amqp: AMQPClient, redis: RedisClient, logger: Logger
    ) {
        self.credentialStore = credentialStore
        self.lifecycle = lifecycle
        self.apiKeyConnector = apiKeyConnector
        self.oauthConnector = oauthConnector
        self.amqp = amqp
        self.redis = redis
        self.logger = logger
    }
}
