import AMQP
import Logging
import Testing

@testable import Relay

@Suite("Handed-back deliveries", .timeLimit(.minutes(2)))
struct HandBackTests {
    /// A delivery the processor could not finish while the channel stays up is requeued: left unacked, it would
    /// hold its prefetch slot until the connection closes (with prefetch 1, the next `next()` would never return).
    @Test func aHandedBackDeliveryIsRequeuedOnALiveChannel() async throws {
        try await withRelayStack { stack in
            let queue = "\(stack.prefix).hand-back"
            var declaration = AMQPTopology()
            declaration.queues = [.init(name: queue, durable: false, exclusive: true, autoDelete: true)]
            try await stack.amqp.declare(declaration)
            try await stack.amqp.publish(
                AMQPMessage(exchange: "", routingKey: queue, body: Array("handed back".utf8), properties: .init()))
            var deliveries = stack.amqp.consume(queue: queue, prefetch: 1).makeAsyncIterator()
            let first = try #require(try await deliveries.next())
            #expect(!first.redelivered)
            await ConsumerService.handBack(first, amqp: stack.amqp, after: .zero, logger: Logger(label: "test"))
            let again = try #require(try await deliveries.next())
            #expect(again.redelivered)
            #expect(again.body == first.body)
            try await stack.amqp.ack(again)
        }
    }
}
