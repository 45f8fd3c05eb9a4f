public import AMQP
public import Hummingbird
public import Logging
public import Prometheus
public import Redis

/// `/metrics` (Prometheus), `/healthz` (process up) and `/readyz` (RabbitMQ and Redis reachable) on the internal
/// metrics port of `consume` and `serve` (`RELAY_METRICS_PORT`). `serve`'s public port gets `/healthz` and
/// `/readyz` only: metrics stay off the internet-facing port. A ``StartupGate`` keeps `/readyz` at 503 until the
/// process can take work (`consume` checking its policies).
public enum HealthServer {
    /// The internal metrics port's application: `/metrics` from `registry`, `/healthz` and `/readyz` (503 while
    /// `gate` is closed).
    public static func make(
        port: Int, registry: PrometheusCollectorRegistry, amqp: AMQPClient, redis: RedisClient,
        gate: StartupGate? = nil, logger: Logger
    )
        -> some ApplicationProtocol
    {
        let router = Router()
        addRoutes(to: router, registry: registry, amqp: amqp, redis: redis, gate: gate)
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
        redis: RedisClient, gate: StartupGate? = nil
    ) {
        router.get("healthz") { _, _ in "ok\n" }
        router.get("readyz") { _, _ -> Response in
            let amqpUp = amqp.isConnected
            var redisUp = true
            do { try await redis.ping() } catch { redisUp = false }
            var body = "rabbitmq=\(amqpUp ? "up" : "down") redis=\(redisUp ? "up" : "down")"
            let gateOpen = gate?.opened ?? true
            if let gate { body += " \(gate.name)=\(gateOpen ? "ok" : "checking")" }
            body += "\n"
            return Response(
                status: amqpUp && redisUp && gateOpen ? .ok : .serviceUnavailable,
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
