public import AMQP
public import Hummingbird
public import Logging
public import Prometheus
public import Redis

/// `/metrics` (Prometheus), `/healthz` (process up) and `/readyz` (RabbitMQ and Redis reachable) on the internal
/// metrics port of `consume` and `serve` (`RELAY_METRICS_PORT`). `serve`'s public port gets `/healthz` and
/// `/readyz` only: metrics stay off the internet-facing port.
public enum HealthServer {
    /// The internal metrics port's application: `/metrics` from `registry`, `/healthz` and `/readyz`.
    public static func make(
        port: Int, registry: PrometheusCollectorRegistry, amqp: AMQPClient, redis: RedisClient, logger: Logger
    )
        -> some ApplicationProtocol
    {
        let router = Router()
        addRoutes(to: router, registry: registry, amqp: amqp, redis: redis)
        var appLogger = logger
        appLogger.logLevel = .warning
        return Application(
            router: router,
            configuration: .init(address: .hostname("0.0.0.0", port: port), serverName: "klaviyo-relay"),
            logger: appLogger)
    }

    /// `/healthz`, `/readyz` and, when `registry` is given, `/metrics` on a router.
    static func addRoutes(
        to router: Router<BasicRequestContext>, registry: PrometheusCollectorRegistry?, amqp: AMQPClient,
        redis: RedisClient
    ) {
        router.get("healthz") { _, _ in "ok\n" }
        router.get("readyz") { _, _ -> Response in
            let amqpUp = amqp.isConnected
            var redisUp = true
            do { try await redis.ping() } catch { redisUp = false }
            let body = "rabbitmq=\(amqpUp ? "up" : "down") redis=\(redisUp ? "up" : "down")\n"
            return Response(
                status: amqpUp && redisUp ? .ok : .serviceUnavailable,
                headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        guard let registry else { return }
        router.get("metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
    }
}
