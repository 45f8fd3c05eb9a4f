import Foundation
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// Installs the OpenTelemetry tracer (swift-otel, OTLP/HTTP) when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; otherwise nothing, and every span is a no-op. The standard
/// `OTEL_*` variables apply (`OTEL_SERVICE_NAME`, default `klaviyo-relay`; `OTEL_EXPORTER_OTLP_PROTOCOL`
/// `http/protobuf` or `http/json`; `OTEL_TRACES_SAMPLER`, …). Propagation is W3C Trace Context (`traceparent`,
/// `tracestate`).
enum TracingBootstrap {
    nonisolated(unsafe) static var done = false

    /// The exporter's service (run it in the process's ServiceGroup so spans are flushed on shutdown), or nil.
    static func bootstrap(
        environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger
    ) throws -> (any Service)? {
        let endpoint = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
        guard !done, let endpoint, !endpoint.isEmpty else { return nil }
        done = true
        var configuration = OTel.Configuration.default
        configuration.serviceName = "klaviyo-relay"
        configuration.resourceAttributes["service.version"] = Runtime.version
        configuration.diagnosticLogger = .custom(logger)
        configuration.propagators = [.traceContext]
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        logger.info("exporting traces over OTLP/HTTP", metadata: ["otel.endpoint": "\(endpoint)"])
        return backend.service
    }
}
