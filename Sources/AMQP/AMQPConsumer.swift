/// A stream of deliveries from one queue, with manual acknowledgements.
///
/// Created by ``AMQPClient/consume(queue:prefetch:)``. It survives reconnects (the client re-subscribes it and the
/// sequence simply continues) and finishes when the client shuts down or ``cancel()`` is called. Iteration throws
/// an ``AMQPError`` if the broker refuses the subscription (e.g. 404 for a missing queue) or cancels it.
/// Only one task should iterate a consumer.
public final class AMQPConsumer: AsyncSequence, Sendable {
    /// A delivery.
    public typealias Element = AMQPDelivery

    /// The queue this consumer reads from.
    public let queue: String
    /// The consumer tag sent to the broker (stable across reconnects).
    public let consumerTag: String

    private let stream: AsyncThrowingStream<AMQPDelivery, any Error>
    private let core: ClientCore

    init(queue: String, consumerTag: String, stream: AsyncThrowingStream<AMQPDelivery, any Error>, core: ClientCore) {
        self.queue = queue
        self.consumerTag = consumerTag
        self.stream = stream
        self.core = core
    }

    /// Stops receiving new deliveries (`basic.cancel`) and finishes the sequence.
    ///
    /// Deliveries already received can still be acknowledged; unacknowledged ones are redelivered by the broker
    /// once the connection or channel closes.
    public func cancel() async {
        core.removeConsumer(tag: consumerTag)
    }

    /// Creates the iterator.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator())
    }

    /// Iterates the deliveries.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<AMQPDelivery, any Error>.AsyncIterator

        /// The next delivery, or `nil` once the consumer is finished.
        public mutating func next() async throws -> AMQPDelivery? {
            try await base.next()
        }
    }
}
