public import AMQP
import Tracing

/// Spans of the relay (swift-distributed-tracing): one trace per command, continued from the W3C `traceparent`
/// (and `tracestate`) the command carried. Without a tracer bootstrapped (no `OTEL_EXPORTER_OTLP_ENDPOINT`)
/// every call here is a no-op.
///
/// The span tree of one delivery: `relay.command` (kind consumer) → `relay.rate_limit.wait`, `relay.token.refresh`,
/// `klaviyo.<operation>` (kind client; the request carries `traceparent`), `relay.publish`. A retry parks the
/// command with its original headers (``DelayedRetry``), so the next attempt's `relay.command` joins the same
/// trace, a sibling of the first under the publisher's span.
public enum CommandTracing {
    /// Span attribute names.
    public enum Attribute {
        /// The command id (AMQP `message_id`).
        public static let commandID = "relay.command.id"
        /// The command type (the original routing key).
        public static let commandType = "relay.command.type"
        /// Klaviyo attempts made by earlier deliveries (`x-relay-attempts`).
        public static let attempts = "relay.command.attempts"
        /// The queue the delivery came from.
        public static let queue = "messaging.destination.name"
        /// The outcome (`succeeded`, `retry_scheduled`, `dead_lettered`, …).
        public static let outcome = "relay.command.outcome"
        /// Whether the broker redelivered it.
        public static let redelivered = "messaging.rabbitmq.redelivered"
    }

    /// Runs `body` in a `relay.command` span continued from the delivery's trace context; `body` returns the
    /// outcome's metric label, set as an attribute.
    public static func withCommandSpan(
        _ delivery: AMQPDelivery, queue: String, _ body: () async -> String
    ) async -> String {
        var context = ServiceContext.current ?? .topLevel
        InstrumentationSystem.instrument.extract(
            delivery.properties.headers, into: &context, using: AMQPHeaderExtractor())
        let routingKey =
            delivery.properties.headers[DeadLetter.Header.originalRoutingKey]?.stringValue ?? delivery.routingKey
        let span = startSpan("relay.command \(routingKey)", context: context, ofKind: .consumer)
        defer { span.end() }
        span.attributes[Attribute.commandType] = routingKey
        span.attributes[Attribute.queue] = queue
        span.attributes[Attribute.redelivered] = delivery.redelivered
        if let id = delivery.properties.messageID { span.attributes[Attribute.commandID] = id }
        if let attempts = delivery.properties.headers[DeadLetter.Header.attempts]?.intValue {
            span.attributes[Attribute.attempts] = Int(attempts)
        }
        let outcome = await ServiceContext.withValue(span.context) { await body() }
        span.attributes[Attribute.outcome] = outcome
        if outcome == "dead_lettered" || outcome == "handed_back" { span.setStatus(SpanStatus(code: .error)) }
        return outcome
    }

    /// Runs `body` in a child span of the current one.
    public static func withSpan<T>(_ name: String, _ body: () async throws -> T) async rethrows -> T {
        try await Tracing.withSpan(name) { _ in try await body() }
    }
}

/// Reads trace context headers (`traceparent`, `tracestate`) from AMQP headers.
struct AMQPHeaderExtractor: Extractor {
    func extract(key: String, from carrier: AMQPTable) -> String? {
        carrier[key]?.stringValue
    }
}
