/// A message delivered by the broker through a consumer (`basic.deliver`) or `basic.get`.
///
/// Acknowledge it with ``AMQPClient/ack(_:)``, ``AMQPClient/nack(_:requeue:)`` or ``AMQPClient/reject(_:requeue:)``.
public struct AMQPDelivery: Sendable {
    /// The payload.
    public var body: [UInt8]
    /// The content properties.
    public var properties: AMQPProperties
    /// The exchange the message was published to.
    public var exchange: String
    /// The routing key it was published with.
    public var routingKey: String
    /// Whether the broker delivered this message before.
    public var redelivered: Bool
    /// The channel-scoped delivery tag.
    public var deliveryTag: UInt64
    /// The consumer tag (empty for `basic.get`).
    public var consumerTag: String
    /// The queue it was consumed or fetched from.
    public var queue: String
    /// The `x-delivery-count` header set by quorum queues on redeliveries; 0 when absent.
    public var deliveryCount: Int

    /// Set for a delivery unpacked from another one (`AMQPDelivery.unpacked(...)`): its settlement is recorded
    /// there instead of being sent to the broker.
    public internal(set) var localSettlement: AMQPLocalSettlement?

    /// The connection/channel generation this delivery belongs to; acks from other generations are stale.
    let generation: UInt64
    /// The channel the delivery arrived on (acks must go to the same channel).
    let channel: UInt16

    init(
        body: [UInt8], properties: AMQPProperties, exchange: String, routingKey: String, redelivered: Bool,
        deliveryTag: UInt64, consumerTag: String, queue: String, generation: UInt64, channel: UInt16
    ) {
        self.channel = channel
        self.body = body
        self.properties = properties
        self.exchange = exchange
        self.routingKey = routingKey
        self.redelivered = redelivered
        self.deliveryTag = deliveryTag
        self.consumerTag = consumerTag
        self.queue = queue
        self.generation = generation
        switch properties.headers["x-delivery-count"] {
        case .int(let count)?: self.deliveryCount = Int(count)
        default: self.deliveryCount = 0
        }
    }
}
