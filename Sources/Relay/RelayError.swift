/// The error type of the `Relay` module's own failures, shaped like the transports' (`AMQPError`,
/// `RedisError`): an extensible ``Code``, a message for people, the underlying error and ``isRetriable``.
/// Decisions read ``code``, never the message.
///
/// Its ``description`` is the message alone, exactly what the CLI prints and logs record. Two kinds of failure
/// keep their own types because callers read their fields: ``CredentialUnreadable`` (account, field, key id,
/// reason) and the refusals whose snake_case codes are part of an HTTP answer (`OAuthConnector.Failure`,
/// `APIKeyConnector.Failure`, `ConnectionLifecycle.Failure`, `SignedLink.Refusal`, `TokenManager.Failure`).
public struct RelayError: Error, Sendable, CustomStringConvertible {
    /// An extensible error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's stable name, e.g. `"invalidConfiguration"`.
        public let name: String

        private init(_ name: String) { self.name = name }

        /// A setting could not be read (``RelayConfiguration/init(environment:development:)``).
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// An encryption key specification was refused, or a secret could not be sealed or opened with the
        /// configured keys (``EncryptionKeyRing``).
        public static let encryptionKey = Code("encryptionKey")
        /// A `reply_to` pattern was refused (``ReplyToPolicy/init(specification:)``).
        public static let invalidReplyToPattern = Code("invalidReplyToPattern")
        /// Redis answered a relay script with something it cannot answer (``RateLimiter``).
        public static let unexpectedReply = Code("unexpectedReply")
        /// A document broke the result or dead-letter-header contract (``ContractValidator``).
        public static let contractViolation = Code("contractViolation")
        /// The RabbitMQ management API could not be reached or refused a call (``RabbitMQManagement``).
        public static let managementAPI = Code("managementAPI")
        /// `RELAY_TOPOLOGY=policies`, but a key the topology needs is not in force on a queue or exchange
        /// (``RabbitMQManagement/waitUntilInForce(_:wait:interval:logger:)``).
        public static let policiesNotInForce = Code("policiesNotInForce")

        /// The code's name.
        public var description: String { name }
    }

    /// What went wrong.
    public var code: Code
    /// A human readable description (never a secret or key material).
    public var message: String
    /// The underlying error, if any.
    public var underlying: (any Error & Sendable)?
    /// Whether the same call may succeed if it is tried again later.
    public var isRetriable: Bool

    /// Creates an error.
    public init(code: Code, message: String, underlying: (any Error & Sendable)? = nil, isRetriable: Bool = false) {
        self.code = code
        self.message = message
        self.underlying = underlying
        self.isRetriable = isRetriable
    }

    /// The message.
    public var description: String { message }
}
