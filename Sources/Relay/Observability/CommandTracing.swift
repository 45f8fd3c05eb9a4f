public import AMQP
import Synchronization
import Tracing

/// Spans of the relay (swift-distributed-tracing): one trace per command, continued from the W3C `traceparent`
/// (and `tracestate`) the command carried. Without a tracer bootstrapped (no `OTEL_EXPORTER_OTLP_ENDPOINT`)
/// every call here runs its body directly: no span, no context extraction, no task-local binding.
///
/// The span tree of one delivery: `relay.command` (kind consumer) → `relay.decode`, `relay.credential` (→
/// `relay.token.refresh` when the OAuth token is refreshed first), `relay.rate_limit.wait`, `klaviyo.<operation>`
/// (kind client; the request carries `traceparent`), `relay.token.refresh` after a 401, `relay.publish`. A retry
/// parks the command with its original headers (``DelayedRetry``), so the next attempt's `relay.command` joins the
/// same trace, a sibling of the first under the publisher's span (docs/operations.md, "Traces").
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
        /// `relay.decode`: the dead-letter code of a body that was refused (`not_json`, `schema_invalid`, …).
        public static let decodeRejection = "relay.decode.rejection"
        /// `relay.credential`: how the account is connected (`api_key`, `oauth`).
        public static let credentialMethod = "relay.credential.method"
        /// `relay.credential`: the dead-letter code when no usable credential was found (`not_connected`, …).
        public static let credentialRefusal = "relay.credential.refused"
        /// `relay.publish`: what was published (`result`, `reply`, `retry`, `dead_letter`, `other`), as the
        /// `kind` label of `relay_publishes_total`.
        public static let publishKind = "relay.publish.kind"
        /// `relay.publish`: the routing key (a retry's tier, a result's `<type>.<outcome>`, …).
        public static let routingKey = "messaging.rabbitmq.destination.routing_key"
    }

    /// Runs `body` in a `relay.command` span continued from the delivery's trace context; `body` returns the
    /// outcome's metric label, set as an attribute.
    public static func withCommandSpan(
        _ delivery: AMQPDelivery, queue: String, _ body: () async -> String
    ) async -> String {
        guard isTracing else { return await body() }
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

    /// Whether a tracer is bootstrapped (or bound to the task): without one, ``withSpan(_:_:)`` and
    /// ``withSpan(_:failed:_:)`` run their body directly (no span, no task-local binding).
    ///
    /// Asked several times per command, so the answer is kept: a tracer, once bootstrapped, stays; "none" is
    /// asked again at most once a second (a process bootstraps its tracer at start-up, a test process may do it
    /// later), instead of looking the tracer up under swift-distributed-tracing's lock every time.
    public static var isTracing: Bool {
        let now = ContinuousClock.now
        let checked = tracingCheckedAt.load(ordering: .relaxed)
        if checked == .max { return true }
        if checked != 0, now < tracingEpoch.advanced(by: .nanoseconds(checked + 1_000_000_000)) { return false }
        let tracing = !(InstrumentationSystem.tracer is NoOpTracer)
        let elapsed = (now - tracingEpoch).components
        tracingCheckedAt.store(
            tracing ? .max : max(1, elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000),
            ordering: .relaxed)
        return tracing
    }

    /// When "no tracer" was last confirmed (nanoseconds since ``tracingEpoch``; 0: never, `.max`: a tracer is
    /// bootstrapped).
    private static let tracingCheckedAt = Atomic<Int64>(0)
    private static let tracingEpoch = ContinuousClock.now

    /// Runs `body` in a child span of the current one.
    public static func withSpan<T>(_ name: String, _ body: () async throws -> T) async rethrows -> T {
        guard isTracing else { return try await body() }
        return try await Tracing.withSpan(name) { _ in try await body() }
    }

    /// Runs the synchronous `body` in a child span of the current one; `annotate` then describes its result on
    /// the span (attributes, an error status). Neither runs a span without a tracer.
    static func withSpan<T>(
        _ name: String, annotate: (T, any Span) -> Void, _ body: () throws -> T
    ) rethrows -> T {
        guard isTracing else { return try body() }
        return try Tracing.withSpan(name) { span in
            let result = try body()
            annotate(result, span)
            return result
        }
    }

    /// Runs `body` in a child span of the current one; `annotate` as in the synchronous variant.
    static func withSpan<T>(
        _ name: String, annotate: (T, any Span) -> Void, _ body: () async throws -> T
    ) async rethrows -> T {
        guard isTracing else { return try await body() }
        return try await Tracing.withSpan(name) { span in
            let result = try await body()
            annotate(result, span)
            return result
        }
    }
}

/// Reads trace context headers (`traceparent`, `tracestate`) from AMQP headers.
struct AMQPHeaderExtractor: Extractor {
    func extract(key: String, from carrier: AMQPTable) -> String? {
        carrier[key]?.stringValue
    }
}
