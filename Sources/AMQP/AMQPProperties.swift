/// The `basic` content properties of a message. Every field is optional.
public struct AMQPProperties: Sendable, Hashable {
    /// MIME content type, e.g. `application/json`.
    public var contentType: String?
    /// MIME content encoding, e.g. `gzip`.
    public var contentEncoding: String?
    /// Application headers.
    public var headers: AMQPTable
    /// Whether the message is persistent (`delivery_mode` 2).
    public var persistent: Bool
    /// Message priority 0–9.
    public var priority: UInt8?
    /// Correlation identifier.
    public var correlationID: String?
    /// Reply-to queue name.
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as a string.
    public var expiration: String?
    /// Application message identifier.
    public var messageID: String?
    /// Timestamp in seconds since the Unix epoch.
    public var timestamp: UInt64?
    /// Message type name.
    public var type: String?
    /// Creating user id (validated by the broker).
    public var userID: String?
    /// Creating application id.
    public var appID: String?

    /// Creates properties; everything defaults to absent.
    public init(
        contentType: String? = nil, contentEncoding: String? = nil, headers: AMQPTable = [:],
        persistent: Bool = false, priority: UInt8? = nil, correlationID: String? = nil, replyTo: String? = nil,
        expiration: String? = nil, messageID: String? = nil, timestamp: UInt64? = nil, type: String? = nil,
        userID: String? = nil, appID: String? = nil
    ) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.persistent = persistent
        self.priority = priority
        self.correlationID = correlationID
        self.replyTo = replyTo
        self.expiration = expiration
        self.messageID = messageID
        self.timestamp = timestamp
        self.type = type
        self.userID = userID
        self.appID = appID
    }
}
