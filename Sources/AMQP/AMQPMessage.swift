/// A message to publish.
public struct AMQPMessage: Sendable {
    /// The exchange to publish to; `""` is the default exchange.
    public var exchange: String
    /// The routing key (the queue name for the default exchange).
    public var routingKey: String
    /// The payload.
    public var body: [UInt8]
    /// The content properties.
    public var properties: AMQPProperties
    /// Whether the broker must return the message (→ ``AMQPError/Code/unroutable``) when no queue is bound.
    public var mandatory: Bool

    /// Creates a message.
    public init(
        exchange: String = "", routingKey: String, body: [UInt8], properties: AMQPProperties = .init(),
        mandatory: Bool = false
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.properties = properties
        self.mandatory = mandatory
    }
}
