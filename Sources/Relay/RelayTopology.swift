public import AMQP

/// The RabbitMQ topology of DESIGN §3 under a configurable prefix (`RELAY_QUEUE_PREFIX`).
///
/// It must declare exactly what `deploy/rabbitmq/definitions.json` declares, or the broker refuses the
/// redeclaration (406 PRECONDITION_FAILED); a test compares the two.
public struct RelayTopology: Sendable {
    /// Name prefix, `klaviyo` by default.
    public let prefix: String
    /// Broker redeliveries before a work-queue message is dead-lettered with reason `delivery_limit`.
    public let deliveryLimit: Int

    /// Creates the topology for a prefix.
    public init(prefix: String = "klaviyo", deliveryLimit: Int = 10) {
        self.prefix = prefix
        self.deliveryLimit = deliveryLimit
    }

    /// Topic exchange that publishers send commands to (routing key = command type).
    public var commandsExchange: String { "\(prefix).commands" }
    /// Topic exchange of results (`<type>.succeeded` / `<type>.failed`).
    public var resultsExchange: String { "\(prefix).results" }
    /// Topic exchange of connection state changes (`connection.<state>`).
    public var connectionsExchange: String { "\(prefix).connections" }
    /// Topic exchange of dead letters (routing key = the command's original routing key).
    public var deadExchange: String { "\(prefix).dead" }
    /// The dead-letter queue, bound to ``deadExchange`` with `#`.
    public var deadQueue: String { "\(prefix).dead" }
    /// Direct exchange of the delayed-retry tiers.
    public var retryExchange: String { "\(prefix).retry" }

    /// Delayed-retry tiers: name (also the binding key) and delay.
    public static let retryTiers: [(name: String, delay: Duration)] = [
        ("1s", .seconds(1)), ("5s", .seconds(5)), ("30s", .seconds(30)), ("2m", .seconds(120)),
        ("10m", .seconds(600)), ("1h", .seconds(3600)),
    ]

    /// The queue name of a work queue.
    public func queueName(_ queue: RelayQueue) -> String { "\(prefix).\(queue.rawValue)" }

    /// The queue name of a retry tier.
    public func retryQueueName(_ tier: String) -> String { "\(prefix).retry.\(tier)" }

    /// Everything to declare.
    public var amqpTopology: AMQPTopology {
        var topology = AMQPTopology()
        topology.exchanges = [
            .init(name: commandsExchange, type: .topic),
            .init(name: resultsExchange, type: .topic),
            .init(name: connectionsExchange, type: .topic),
            .init(name: deadExchange, type: .topic),
            .init(name: retryExchange, type: .direct),
        ]
        for queue in RelayQueue.allCases {
            topology.queues.append(
                .init(
                    name: queueName(queue),
                    arguments: [
                        "x-queue-type": .string("quorum"),
                        "x-delivery-limit": .int(Int64(deliveryLimit)),
                        "x-dead-letter-exchange": .string(deadExchange),
                        "x-dead-letter-strategy": .string("at-least-once"),
                        "x-overflow": .string("reject-publish"),
                    ]))
            for key in queue.bindingKeys {
                topology.bindings.append(.init(queue: queueName(queue), exchange: commandsExchange, routingKey: key))
            }
        }
        topology.queues.append(.init(name: deadQueue, arguments: ["x-queue-type": .string("quorum")]))
        topology.bindings.append(.init(queue: deadQueue, exchange: deadExchange, routingKey: "#"))
        for tier in Self.retryTiers {
            let milliseconds = tier.delay.components.seconds * 1000
            topology.queues.append(
                .init(
                    name: retryQueueName(tier.name),
                    arguments: [
                        "x-message-ttl": .int(milliseconds),
                        "x-dead-letter-exchange": .string(commandsExchange),
                    ]))
            topology.bindings.append(
                .init(queue: retryQueueName(tier.name), exchange: retryExchange, routingKey: tier.name))
        }
        return topology
    }
}

extension RelayTopology {
    /// Deletes every queue and exchange of this prefix, ignoring ones that are already gone (tearing down a
    /// test or benchmark environment; never run it against a live prefix).
    public func remove(from amqp: AMQPClient) async {
        let topology = amqpTopology
        for queue in topology.queues { try? await amqp.deleteQueue(queue.name) }
        for exchange in topology.exchanges { try? await amqp.deleteExchange(exchange.name) }
    }
}
