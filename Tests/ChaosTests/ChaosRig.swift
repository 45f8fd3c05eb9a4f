import AMQP
import HTTPClient
import Logging
import Redis
import Relay
import RelayTestSupport
import Testing

/// What both chaos tests run on: an AMQP client, Redis and the simulator's admin API, the relay's topology under a
/// throwaway prefix, and a collector queue bound to the results and the dead letters, read into ``collected``
/// (acked after recording). ``consumers`` holds the consume processes a test starts; ``cleanUp()`` stops them and
/// removes everything the rig declared.
final class ChaosRig: Sendable {
    let prefix: String
    let topology: RelayTopology
    let amqp: AMQPClient
    let redis: RedisClient
    let http: HTTPClient
    let sim: SimAdmin
    let consumers = Shared<[ChildProcess]>([])
    let collectorQueue: String
    let collected: Collected
    private let connection: Task<Void, any Error>
    private let collector: Task<Void, any Error>

    /// Connects to `amqpURL` (described as `servers` in failures), Redis at `redisURL` and the simulator at
    /// `simURL`, clears the simulator's faults, declares the topology and the collector queue (`collectorQueue`,
    /// named `<prefix>.collector`) and starts reading it.
    init(
        prefix: String, servers: String, amqpURL: String, redisURL: String, simURL: String, logger: Logger,
        connectTimeout: Duration, collectorQueue: AMQPTopology.Queue,
        configure: (inout AMQPConfiguration) -> Void = { _ in }
    ) async throws {
        self.prefix = prefix
        let topology = RelayTopology(prefix: prefix, deliveryLimit: 10)
        self.topology = topology
        var configuration = try AMQPConfiguration(url: amqpURL)
        configuration.connectionName = "\(logger.label) \(prefix)"
        configure(&configuration)
        let amqp = AMQPClient(configuration: configuration, logger: logger)
        let connection = Task { try await amqp.run() }
        let redis = RedisClient(configuration: try RedisConfiguration(url: redisURL), logger: logger)
        let http = HTTPClient(logger: logger)
        func shutDown() async {
            await amqp.shutdown()
            _ = await connection.result
            await redis.shutdown()
            await http.shutdown()
        }
        do {
            try await amqp.waitUntilConnected(timeout: connectTimeout)
        } catch {
            Issue.record("\(servers) is not reachable at \(amqpURL): \(error)")
            await shutDown()
            throw error
        }
        do { try await redis.ping() } catch {
            Issue.record("Redis is not reachable at \(redisURL): \(error)")
            await shutDown()
            throw error
        }
        self.amqp = amqp
        self.connection = connection
        self.redis = redis
        self.http = http
        sim = SimAdmin(http: http, baseURL: simURL)
        self.collectorQueue = collectorQueue.name
        let collected = Collected()
        self.collected = collected
        let deadExchange = topology.deadExchange
        try await sim.call(.DELETE, "/_sim/faults")
        try await amqp.declare(topology.amqpTopology)
        var declaration = AMQPTopology()
        declaration.queues = [collectorQueue]
        declaration.bindings = [
            .init(queue: collectorQueue.name, exchange: topology.resultsExchange, routingKey: "#"),
            .init(queue: collectorQueue.name, exchange: topology.deadExchange, routingKey: "#"),
        ]
        try await amqp.declare(declaration)
        let stream = amqp.consume(queue: collectorQueue.name, prefetch: 500)
        collector = Task {
            for try await delivery in stream {
                collected.record(delivery, deadExchange: deadExchange)
                do { try await amqp.ack(delivery) } catch { collected.state.withLock { $0.staleAcks += 1 } }
            }
        }
    }

    /// Publishes a persistent command and retries until the broker confirms it, through restarts and node losses
    /// (a retried publish may duplicate; command ids dedupe), for up to two minutes.
    func publish(_ body: [UInt8], routingKey: String, id: String) async throws {
        var properties = AMQPProperties()
        properties.contentType = "application/json"
        properties.persistent = true
        properties.messageID = id
        let message = AMQPMessage(
            exchange: topology.commandsExchange, routingKey: routingKey, body: body, properties: properties)
        let deadline = ContinuousClock.now + .seconds(120)
        while true {
            do {
                try await amqp.publish(message)
                return
            } catch {
                guard ContinuousClock.now < deadline else { throw error }
                try? await amqp.waitUntilConnected(timeout: .seconds(5))
            }
        }
    }

    /// Clears the simulator's faults, stops the consumers and the collector, removes the topology and the collector
    /// queue, and shuts the clients down.
    func cleanUp() async {
        _ = try? await sim.call(.DELETE, "/_sim/faults")
        for consumer in consumers.withLock({ $0 }) { await consumer.stop() }
        collector.cancel()
        try? await amqp.deleteQueue(collectorQueue)
        await topology.remove(from: amqp)
        await amqp.shutdown()
        _ = await connection.result
        await redis.shutdown()
        await http.shutdown()
    }
}
