import Metrics
import Prometheus

/// Installs the Prometheus metrics backend once.
enum MetricsBootstrap {
    nonisolated(unsafe) static var registry: PrometheusCollectorRegistry?

    static func bootstrap() -> PrometheusCollectorRegistry {
        if let registry { return registry }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets["relay_event_batch_size"] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000]
        MetricsSystem.bootstrap(factory)
        Self.registry = registry
        return registry
    }
}
