import Tracing

/// Puts trace context headers (W3C `traceparent`/`tracestate` with the OpenTelemetry tracer) on a Klaviyo request.
struct KlaviyoHeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout KlaviyoHTTPRequest) {
        carrier.headers.removeAll { $0.name.lowercased() == key.lowercased() }
        carrier.headers.append((name: key, value: value))
    }
}

extension KlaviyoHTTPRequest {
    /// Adds the trace context of `span` to the headers (nothing with the default no-op tracer).
    mutating func injectTraceContext(of span: any Span) {
        InstrumentationSystem.instrument.inject(span.context, into: &self, using: KlaviyoHeaderInjector())
    }
}
