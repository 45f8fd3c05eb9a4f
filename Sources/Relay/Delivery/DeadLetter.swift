public import AMQP

/// Builds dead letters exactly as docs/contracts.md ("Dead letters") fixes them: the original body byte for byte, the
/// original AMQP properties, and the `x-relay-*` / `x-original-*` reason headers, sealed (`x-relay-seal`,
/// ``HeaderSeal/sealDeadLetter(_:body:)``) so `dlq` trusts them only on dead letters the relay made.
public enum DeadLetter {
    /// Header names (a contract).
    public enum Header {
        /// Error code.
        public static let errorCode = "x-relay-error-code"
        /// Human-readable detail, no secrets.
        public static let errorDetail = "x-relay-error-detail"
        /// Attempts made.
        public static let attempts = "x-relay-attempts"
        /// First failure (RFC 3339).
        public static let firstFailedAt = "x-relay-first-failed-at"
        /// Last failure (RFC 3339).
        public static let lastFailedAt = "x-relay-last-failed-at"
        /// Routing key the command was published with.
        public static let originalRoutingKey = "x-original-routing-key"
        /// Exchange the command was published to.
        public static let originalExchange = "x-original-exchange"
        /// Command id, when the body had one (for filtering).
        public static let commandID = "x-relay-command-id"
        /// Account id, when the body had one (for filtering).
        public static let accountID = "x-relay-account-id"
        /// Command type, when the body had one (for filtering).
        public static let type = "x-relay-type"
    }

    /// Longest detail header kept.
    public static let maxDetailLength = 1000

    /// The dead-letter message for a delivery, its relay headers sealed with `seal`.
    public static func message(
        for delivery: AMQPDelivery, topology: RelayTopology, code: DeadLetterCode, detail: String, attempts: Int,
        firstFailedAt: String?, commandID: String?, accountID: String?, type: String?, seal: HeaderSeal
    ) -> AMQPMessage {
        let now = Timestamp.now()
        var properties = delivery.properties.republished
        // Relay headers a publisher put on a fresh command are dropped, not carried into the dead letter.
        var headers = seal.trustedHeaders(of: delivery)
        headers[Header.errorCode] = .string(code.rawValue)
        headers[Header.errorDetail] = .string(String(detail.prefix(maxDetailLength)))
        headers[Header.attempts] = .int(Int64(attempts))
        headers[Header.firstFailedAt] = .string(
            headers[Header.firstFailedAt].flatMap(\.stringValue) ?? firstFailedAt ?? now)
        headers[Header.lastFailedAt] = .string(now)
        headers[Header.originalRoutingKey] = .string(
            headers[Header.originalRoutingKey].flatMap(\.stringValue) ?? delivery.routingKey)
        headers[Header.originalExchange] = .string(
            headers[Header.originalExchange].flatMap(\.stringValue) ?? delivery.exchange)
        if let commandID { headers[Header.commandID] = .string(commandID) }
        if let accountID { headers[Header.accountID] = .string(accountID) }
        if let type { headers[Header.type] = .string(type) }
        seal.sealDeadLetter(&headers, body: delivery.body)
        properties.headers = headers
        properties.persistent = true
        let routingKey = headers[Header.originalRoutingKey].flatMap(\.stringValue) ?? delivery.routingKey
        return AMQPMessage(
            exchange: topology.deadExchange, routingKey: routingKey.isEmpty ? "unrouted" : routingKey,
            body: delivery.body, properties: properties, mandatory: true)  // unroutable: handed back, never acked
    }
}

extension AMQPProperties {
    /// The publisher's properties as a copy the relay publishes carries them (dead letter, retry, replay):
    /// without `expiration`, which would let the copy expire where nothing dead-letters it (the dead queue) or
    /// before its tier's delay, and without `user_id`, which the broker checks against the publishing
    /// connection's user (the relay's or ops', not the publisher's) and answers a mismatch by closing the channel.
    public var republished: AMQPProperties {
        var properties = self
        properties.expiration = nil
        properties.userID = nil
        return properties
    }
}

extension AMQPFieldValue {
    /// The string, if this is a string (or UTF-8 bytes).
    public var stringValue: String? {
        switch self {
        case .string(let text): return text
        case .bytes(let bytes): return String(validating: bytes, as: UTF8.self)
        default: return nil
        }
    }

    /// The integer, if this is an integer.
    public var intValue: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }
}
