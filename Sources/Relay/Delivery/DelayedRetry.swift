public import AMQP

/// Delayed retries through the TTL tiers of docs/contracts.md ("Delayed retries"): the original body, byte for byte,
/// with the original properties, goes to `<prefix>.retry` with routing key = tier and `CC: [original routing key]`;
/// when the tier's TTL expires the broker dead-letters it to `<prefix>.commands`, where only the CC key matches a work
/// queue. The retry bookkeeping travels in headers, so any consumer process can pick the command up again.
public enum DelayedRetry {
    /// Header names (a contract: docs/contracts.md, "Delayed retries").
    public enum Header {
        /// The routing keys a message is also routed with (RabbitMQ sender-selected distribution).
        public static let cc = "CC"
        /// Short description of the last failure (no secrets).
        public static let lastError = "x-relay-last-error"
        /// Polls of the command's Klaviyo job so far (informational).
        public static let jobPolls = "x-relay-job-polls"
        /// The rate-limiter slot a held-back command reserved (`<operation> <member> <slot ms>`), claimed when
        /// it comes back (``RateLimiter/Reservation``).
        public static let slot = "x-relay-slot"
    }

    /// Longest `x-relay-last-error` kept.
    public static let maxLastErrorLength = 300

    /// The bookkeeping a delivery carries from earlier attempts (none for a fresh command).
    public struct State: Sendable, Hashable {
        /// Klaviyo attempts made before this delivery (`x-relay-attempts`, 0 when absent).
        public var attempts: Int
        /// First failure, RFC 3339 (`x-relay-first-failed-at`).
        public var firstFailedAt: String?

        /// Creates a state.
        public init(attempts: Int = 0, firstFailedAt: String? = nil) {
            self.attempts = attempts
            self.firstFailedAt = firstFailedAt
        }

        /// Reads the bookkeeping of a delivery: only what the relay sealed itself (``HeaderSeal``); a fresh
        /// command's `x-relay-*` headers are ignored, whatever a publisher put there.
        public init(delivery: AMQPDelivery, seal: HeaderSeal) {
            self.init(headers: seal.trustedHeaders(of: delivery))
        }

        /// Reads already-trusted headers; malformed values count as absent (a publisher cannot break the processor).
        public init(headers: AMQPTable) {
            let attempts = headers[DeadLetter.Header.attempts]?.intValue ?? 0
            self.attempts = Int(min(max(attempts, 0), 1_000_000))
            firstFailedAt = headers[DeadLetter.Header.firstFailedAt]?.stringValue.flatMap {
                Timestamp.parseMilliseconds($0) == nil ? nil : $0
            }
        }
    }

    /// The routing key the command was originally published with: `x-original-routing-key` when an earlier
    /// retry recorded it (a message dead-lettered out of a tier arrives with the tier's name as routing key),
    /// else the delivery's.
    public static func originalRoutingKey(of delivery: AMQPDelivery, seal: HeaderSeal) -> String {
        seal.trustedHeaders(of: delivery)[DeadLetter.Header.originalRoutingKey]?.stringValue ?? delivery.routingKey
    }

    /// Headers the broker adds (dead-lettering, quorum-queue redeliveries); not carried into a new publish.
    static let brokerHeaders: Set<String> = [
        "x-death", "x-first-death-queue", "x-first-death-reason", "x-first-death-exchange", "x-last-death-queue",
        "x-last-death-reason", "x-last-death-exchange", "x-delivery-count",
    ]

    /// The message that parks `delivery` in `tier`.
    ///
    /// `routingKey` is the command's own route (its type, for a decoded command); the relay's headers are
    /// rewritten from the arguments and sealed with `seal`, and any unsealed relay header is dropped.
    /// `slot` is the rate-limiter slot a held-back call reserved (nil: none; an earlier one is dropped).
    public static func message(
        for delivery: AMQPDelivery, topology: RelayTopology, tier: RelayTopology.RetryTier, routingKey: String,
        attempts: Int, firstFailedAt: String, lastError: String, slot: String? = nil, seal: HeaderSeal
    ) -> AMQPMessage {
        parked(delivery, topology: topology, tier: tier, routingKey: routingKey, seal: seal) { headers in
            headers[Header.slot] = slot.map { .string($0) }
            headers[DeadLetter.Header.attempts] = .int(Int64(attempts))
            headers[DeadLetter.Header.firstFailedAt] = .string(firstFailedAt)
            headers[Header.lastError] = .string(String(lastError.prefix(maxLastErrorLength)))
        }
    }

    /// The message that parks `delivery` in `tier` until its Klaviyo job is polled again: like a retry, but
    /// the failure bookkeeping (`x-relay-attempts`, `x-relay-first-failed-at`) stays as it was (a poll is not
    /// a failure); `x-relay-job-polls` counts the polls for ops.
    public static func pollMessage(
        for delivery: AMQPDelivery, topology: RelayTopology, tier: RelayTopology.RetryTier, routingKey: String,
        polls: Int, seal: HeaderSeal
    ) -> AMQPMessage {
        parked(delivery, topology: topology, tier: tier, routingKey: routingKey, seal: seal) { headers in
            headers[Header.slot] = nil
            headers[Header.jobPolls] = .int(Int64(polls))
        }
    }

    /// The original body and properties with the trusted relay headers, the route back (`CC` and
    /// `x-original-*`), what `bookkeeping` sets, and a fresh seal, for `tier`.
    static func parked(
        _ delivery: AMQPDelivery, topology: RelayTopology, tier: RelayTopology.RetryTier, routingKey: String,
        seal: HeaderSeal, bookkeeping: (inout AMQPTable) -> Void
    ) -> AMQPMessage {
        var properties = delivery.properties.republished
        var headers = seal.trustedHeaders(of: delivery)
        for name in brokerHeaders { headers[name] = nil }
        headers["BCC"] = nil
        headers[Header.cc] = .array([.string(routingKey)])
        headers[DeadLetter.Header.originalRoutingKey] = .string(routingKey)
        headers[DeadLetter.Header.originalExchange] = .string(
            headers[DeadLetter.Header.originalExchange]?.stringValue ?? delivery.exchange)
        bookkeeping(&headers)
        seal.seal(&headers, body: delivery.body)
        properties.headers = headers
        properties.persistent = true
        // Mandatory: with the tier's queue gone (an upgrade deleting the tiers while consumers run) the broker would
        // confirm an unroutable copy and the original would be acked; returned, it is handed back instead.
        return AMQPMessage(
            exchange: topology.retryExchange, routingKey: tier.name, body: delivery.body, properties: properties,
            mandatory: true)
    }
}
