/// A declarative set of exchanges, queues and bindings.
///
/// The topology given to ``AMQPClient/init(configuration:topology:logger:)`` is declared on every (re)connect,
/// in order: exchanges, then queues, then bindings.
public struct AMQPTopology: Sendable {
    /// The kind of an exchange.
    public enum ExchangeType: String, Sendable, Hashable {
        /// Routes on an exact routing key match.
        case direct
        /// Routes on routing key patterns (`*`, `#`).
        case topic
        /// Routes to every bound queue.
        case fanout
        /// Routes on header values.
        case headers
    }

    /// An exchange declaration.
    public struct Exchange: Sendable, Hashable {
        /// The exchange name.
        public var name: String
        /// The exchange kind.
        public var type: ExchangeType
        /// Whether it survives a broker restart.
        public var durable: Bool
        /// Whether it is deleted when the last binding goes away.
        public var autoDelete: Bool
        /// Whether clients can publish to it directly (`false`) or only via exchange-to-exchange bindings.
        public var `internal`: Bool
        /// Extra arguments, e.g. `alternate-exchange`.
        public var arguments: AMQPTable

        /// Creates an exchange declaration.
        public init(
            name: String, type: ExchangeType, durable: Bool = true, autoDelete: Bool = false,
            internal: Bool = false, arguments: AMQPTable = [:]
        ) {
            self.name = name
            self.type = type
            self.durable = durable
            self.autoDelete = autoDelete
            self.internal = `internal`
            self.arguments = arguments
        }
    }

    /// A queue declaration.
    public struct Queue: Sendable, Hashable {
        /// The queue name.
        public var name: String
        /// Whether it survives a broker restart.
        public var durable: Bool
        /// Whether only the declaring connection may use it.
        public var exclusive: Bool
        /// Whether it is deleted when the last consumer goes away.
        public var autoDelete: Bool
        /// Extra arguments, e.g. `["x-queue-type": .string("quorum"), "x-delivery-limit": .int(5)]`.
        public var arguments: AMQPTable

        /// Creates a queue declaration.
        public init(
            name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
            arguments: AMQPTable = [:]
        ) {
            self.name = name
            self.durable = durable
            self.exclusive = exclusive
            self.autoDelete = autoDelete
            self.arguments = arguments
        }
    }

    /// A queue-to-exchange binding.
    public struct Binding: Sendable, Hashable {
        /// The bound queue.
        public var queue: String
        /// The source exchange.
        public var exchange: String
        /// The binding key.
        public var routingKey: String
        /// Extra arguments (e.g. for headers exchanges).
        public var arguments: AMQPTable

        /// Creates a binding declaration.
        public init(queue: String, exchange: String, routingKey: String, arguments: AMQPTable = [:]) {
            self.queue = queue
            self.exchange = exchange
            self.routingKey = routingKey
            self.arguments = arguments
        }
    }

    /// The exchanges to declare.
    public var exchanges: [Exchange]
    /// The queues to declare.
    public var queues: [Queue]
    /// The bindings to declare.
    public var bindings: [Binding]

    /// Creates a topology; empty by default.
    public init(exchanges: [Exchange] = [], queues: [Queue] = [], bindings: [Binding] = []) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }

    /// Whether there is nothing to declare.
    public var isEmpty: Bool { exchanges.isEmpty && queues.isEmpty && bindings.isEmpty }

    /// Returns this topology followed by `other`'s declarations.
    public func merging(_ other: AMQPTopology) -> AMQPTopology {
        AMQPTopology(
            exchanges: exchanges + other.exchanges, queues: queues + other.queues,
            bindings: bindings + other.bindings)
    }

    /// The declarations of both topologies, `lhs` first.
    public static func + (lhs: AMQPTopology, rhs: AMQPTopology) -> AMQPTopology { lhs.merging(rhs) }
}
