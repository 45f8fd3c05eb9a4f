public import AMQP
public import Logging

extension CommandProcessor {
    /// Everything a processor works with: the clients and stores it calls and the policies it applies.
    /// Optional parts default to off, so wiring code and tests name only what they use.
    public struct Dependencies: Sendable {
        /// Publishes results, dead letters and retries (with confirms) and acks deliveries.
        public var amqp: AMQPClient
        /// Exchange, queue and retry-tier names.
        public var topology: RelayTopology
        /// Turns message bodies into validated commands.
        public var decoder: CommandDecoder
        /// Done markers and running jobs.
        public var idempotency: IdempotencyStore
        /// The accounts' connections, cached.
        public var credentials: CredentialCache
        /// The stored connections (an account whose API key Klaviyo refuses is marked `reauth_required`); its
        /// key ring seals the relay's retry headers.
        public var credentialStore: CredentialStore
        /// Calls Klaviyo.
        public var executor: CommandExecutor
        /// Bounds the retries of Klaviyo calls.
        public var retryPolicy: RetryPolicy
        /// Which queues `reply_to` may name (`RELAY_REPLY_TO_PATTERN`).
        public var replyTo: ReplyToPolicy
        /// Test-only crash point (`RELAY_ENABLE_FAULT_INJECTION=1`).
        public var crashPoint: CrashPoint?
        /// Valid OAuth access tokens (nil: OAuth not configured; stored tokens are used as they are).
        public var tokenManager: TokenManager?
        /// The accounts' sync status, written in batches (nil: not recorded).
        public var syncStatus: SyncStatusBuffer?
        /// Runs `connection.disconnect` (nil: such commands are dead-lettered `unsupported_type`).
        public var lifecycle: ConnectionLifecycle?
        /// Klaviyo's rate limits shared through Redis (nil: `RELAY_RATE_LIMIT=off`).
        public var rateLimiter: RateLimiter?
        /// The processor's logger.
        public var logger: Logger

        /// Creates the dependencies.
        public init(
            amqp: AMQPClient, topology: RelayTopology, decoder: CommandDecoder, idempotency: IdempotencyStore,
            credentials: CredentialCache, credentialStore: CredentialStore, executor: CommandExecutor,
            retryPolicy: RetryPolicy, logger: Logger, replyTo: ReplyToPolicy = .default, crashPoint: CrashPoint? = nil,
            tokenManager: TokenManager? = nil, syncStatus: SyncStatusBuffer? = nil,
            lifecycle: ConnectionLifecycle? = nil,
            rateLimiter: RateLimiter? = nil
        ) {
            self.amqp = amqp
            self.topology = topology
            self.decoder = decoder
            self.idempotency = idempotency
            self.credentials = credentials
            self.credentialStore = credentialStore
            self.executor = executor
            self.retryPolicy = retryPolicy
            self.logger = logger
            self.replyTo = replyTo
            self.crashPoint = crashPoint
            self.tokenManager = tokenManager
            self.syncStatus = syncStatus
            self.lifecycle = lifecycle
            self.rateLimiter = rateLimiter
        }
    }
}
