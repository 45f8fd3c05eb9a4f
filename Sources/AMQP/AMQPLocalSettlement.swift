import Synchronization

/// Where the settlement of a delivery that did not come from the broker goes: a message carried inside another
/// one (a bundle) is acked, nacked or rejected in the process, and whoever unpacked it settles the carrier.
///
/// Settling such a delivery through ``AMQPClient/ack(_:)`` (or nack, reject) records the settlement here and
/// sends nothing to the broker. A second settlement throws ``AMQPError/Code/staleDelivery``, as for a broker
/// delivery settled twice.
public final class AMQPLocalSettlement: Sendable {
    /// How a delivery was settled.
    public enum Kind: Sendable, Hashable {
        /// `basic.ack`.
        case ack
        /// `basic.nack`.
        case nack(requeue: Bool)
        /// `basic.reject`.
        case reject(requeue: Bool)
    }

    let state = Mutex<Kind?>(nil)

    /// Creates an unsettled record.
    public init() {}

    /// How the delivery was settled, or nil while it is not.
    public var kind: Kind? { state.withLock { $0 } }

    func settle(_ kind: Kind) throws {
        let first = state.withLock { state -> Bool in
            guard state == nil else { return false }
            state = kind
            return true
        }
        guard first else { throw AMQPError(code: .staleDelivery, message: "the delivery was already settled") }
    }
}

extension AMQPDelivery {
    /// A delivery unpacked from a message the broker delivered (a bundle): settling it records the settlement in
    /// `settlement` only. It has no delivery tag or channel of its own.
    public static func unpacked(
        body: [UInt8], properties: AMQPProperties, exchange: String, routingKey: String, redelivered: Bool,
        queue: String, consumerTag: String, settlement: AMQPLocalSettlement
    ) -> AMQPDelivery {
        var delivery = AMQPDelivery(
            body: body, properties: properties, exchange: exchange, routingKey: routingKey, redelivered: redelivered,
            deliveryTag: 0, consumerTag: consumerTag, queue: queue, generation: 0, channel: 0)
        delivery.localSettlement = settlement
        return delivery
    }
}
