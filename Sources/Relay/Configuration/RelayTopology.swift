public import AMQP

/// The RabbitMQ topology of docs/contracts.md ("Topology") under a configurable prefix (`RELAY_QUEUE_PREFIX`).
///
/// It must declare exactly what `deploy/rabbitmq/definitions.json` declares, or the broker refuses the
/// redeclaration (406 PRECONDITION_FAILED); `scripts/check/check-definitions.sh --relay` (run by the test command)
/// imports the file and has `klaviyo-relay setup` redeclare it.
public struct RelayTopology: Sendable {
    /// Name prefix, `klaviyo` by default.
    public let prefix: String
    /// Broker redeliveries before a work-queue message is dead-lettered with reason `delivery_limit`.
    public let deliveryLimit: Int
    /// Delayed-retry tiers, shortest first: name (also the binding key) and delay (the TTL of its queue).
    public let retryTiers: [RetryTier]

    /// Creates the topology for a prefix. `retryTiers` is injectable so tests can declare short tiers under
    /// their own prefix; production uses ``defaultRetryTiers`` (what `deploy/rabbitmq/definitions.json` holds).
    public init(prefix: String = "klaviyo", deliveryLimit: Int = 10, retryTiers: [RetryTier] = Self.defaultRetryTiers) {
        self.prefix = prefix
        self.deliveryLimit = deliveryLimit
        self.retryTiers = retryTiers.sorted { $0.delay < $1.delay }
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
    /// Fanout exchange set as the commands exchange's `alternate-exchange`: it receives every command whose routing
    /// key matches no binding, for the ``RelayQueue/unroutable`` queue.
    public var unroutableExchange: String { "\(prefix).unroutable" }

    /// One delayed-retry tier: a TTL queue bound to ``retryExchange`` with its name.
    public struct RetryTier: Sendable, Hashable {
        /// Name: the binding key and the queue suffix (`1s` → `<prefix>.retry.1s`).
        public var name: String
        /// How long a message waits in the tier (the queue's `x-message-ttl`).
        public var delay: Duration

        /// Creates a tier.
        public init(_ name: String, _ delay: Duration) {
            self.name = name
            self.delay = delay
        }
    }

    /// The tiers of docs/contracts.md ("Topology").
    public static let defaultRetryTiers: [RetryTier] = [
        .init("1s", .seconds(1)), .init("5s", .seconds(5)), .init("30s", .seconds(30)), .init("2m", .seconds(120)),
        .init("10m", .seconds(600)), .init("1h", .seconds(3600)),
    ]

    /// The tier for a wanted delay: the shortest one at least as long (a delay below the shortest tier takes
    /// the shortest; one beyond the longest takes the longest). `nil` only when there are no tiers.
    public func retryTier(for delay: Duration) -> RetryTier? {
        retryTiers.first { $0.delay >= delay } ?? retryTiers.last
    }

    /// The longest tier whose delay is at most `delay` (the shortest when every tier is longer): for a command
    /// that must be back no later than `delay`. `nil` only when there are no tiers.
    public func retryTier(atMost delay: Duration) -> RetryTier? {
        retryTiers.last { $0.delay <= delay } ?? retryTiers.first
    }

    /// The queue name of a work queue.
    public func queueName(_ queue: RelayQueue) -> String { "\(prefix).\(queue.rawValue)" }

    /// The queue name of a retry tier.
    public func retryQueueName(_ tier: String) -> String { "\(prefix).retry.\(tier)" }

    /// Everything to declare.
    public var amqpTopology: AMQPTopology {
        var topology = AMQPTopology()
        topology.exchanges = [
            .init(
                name: commandsExchange, type: .topic,
                arguments: ["alternate-exchange": .string(unroutableExchange)]),
            .init(name: unroutableExchange, type: .fanout),
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
            if queue == .unroutable {
                topology.bindings.append(.init(queue: queueName(queue), exchange: unroutableExchange, routingKey: ""))
            }
        }
        topology.queues.append(.init(name: deadQueue, arguments: ["x-queue-type": .string("quorum")]))
        topology.bindings.append(.init(queue: deadQueue, exchange: deadExchange, routingKey: "#"))
        for tier in retryTiers {
            let milliseconds = tier.delay.wholeMilliseconds
            topology.queues.append(
                .init(
                    name: retryQueueName(tier.name),
                    // Quorum, so expiry dead-letters at least once: a classic queue dead-letters at most once,
                    // and the chaos test lost messages expiring while the broker shut down.
                    arguments: [
                        "x-queue-type": .string("quorum"),
                        "x-message-ttl": .int(milliseconds),
                        "x-dead-letter-exchange": .string(commandsExchange),
                        "x-dead-letter-strategy": .string("at-least-once"),
                        "x-overflow": .string("reject-publish"),
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
