import AMQP
import Testing

@Suite("AMQP write batching")
struct WriteBatchingTests {
    /// With a batching delay, the connection thread woken by the first of 64 publishes made together waits for the
    /// others: they go out in a few writes (one, unless a publish was made after the delay), and every one is
    /// confirmed and delivered. Without the delay the thread writes what it has as soon as it wakes.
    @Test func publishesMadeTogetherShareAWrite() async throws {
        let queue = TestBroker.uniqueName("batching")
        let batching: (inout AMQPConfiguration) -> Void = { $0.writeBatchingDelay = .milliseconds(200) }
        try await withClient(topology: .init(queues: [.init(name: queue)]), configure: batching) { client, _ in
            // Opens the publish channel (rabbitmq-c's own calls) before the measured publishes.
            try await client.publish(AMQPMessage(routingKey: queue, body: Array("first".utf8)))
            let before = client.framedWrites
            let started = ContinuousClock.now
            try await withThrowingDiscardingTaskGroup { group in
                for index in 0..<64 {
                    group.addTask {
                        try await client.publish(AMQPMessage(routingKey: queue, body: Array("m\(index)".utf8)))
                    }
                }
            }
            let waited = ContinuousClock.now - started
            let writes = client.framedWrites - before
            #expect(waited >= .milliseconds(200), "the thread waited for the others before writing (\(waited))")
            #expect((1...3).contains(writes), "64 publishes made together went out in \(writes) writes")
            try await eventually("65 messages in the queue", timeout: .seconds(10)) {
                try await client.messageCount(queue: queue).messages == 65
            }
        }
    }
}
