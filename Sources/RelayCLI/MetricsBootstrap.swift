import Klaviyo
import Metrics
import Prometheus
import Relay

/// Installs the Prometheus metrics backend once, with the histogram buckets of the relay's series and
/// `relay_build_info`.
enum MetricsBootstrap {
    nonisolated(unsafe) static var registry: PrometheusCollectorRegistry?

    static func bootstrap() -> PrometheusCollectorRegistry {
        if let registry { return registry }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets["relay_event_batch_size"] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000]
        factory.valueHistogramBuckets[KlaviyoCallMetrics.retryAfter] = KlaviyoCallMetrics.retryAfterBuckets
        factory.durationHistogramBuckets[KlaviyoCallMetrics.callDuration] = KlaviyoCallMetrics.callDurationBuckets
        factory.durationHistogramBuckets[RelayMetrics.lockWaitDuration] = [
            .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(20), .seconds(30),
        ]
        MetricsSystem.bootstrap(factory)
        Self.registry = registry
        RelayMetrics.recordBuildInfo(version: Runtime.version)
        return registry
    }
}
