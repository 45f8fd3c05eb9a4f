import AMQP
import Foundation
import Klaviyo
import RelayTestSupport
import Testing

@testable import Relay

extension FairnessTests {
    /// Eight deliveries of one account at 3 MB each are parked in bundles of at most 8 MiB (`Settings.maxBytes`):
    /// four of two members (the flush finds all eight in the open bundle and splits them at 8 MiB), each delivery
    /// acked after its bundle was confirmed, and the four bundles come back to the work queue. Before, the member count alone bounded a bundle: the eight went as one
    /// 24 MB message, and eight commands of 18 MB as one of 144 MB, beyond the 128 MiB RabbitMQ 3.x takes in one
    /// message (16 MiB from 4.0): the broker refused it, closing the publish channel under every other publish in
    /// flight, and the members were requeued, bundled and refused again until their delivery limit dead-lettered
    /// them untried. (The sizes here stay small: the whole suite shares one broker on two cores.)
    @Test func largeCommandsAreParkedInBundlesTheBrokerTakes() async throws {
        try await withRelayStack { stack in
            let fairness = AccountFairness(
                settings: .init(concurrency: 16, fairShare: 0.25, prefetch: 64), amqp: stack.amqp,
                topology: stack.topology, seal: HeaderSeal(keyRing: stack.keys), logger: IntegrationEnvironment.logger)
            #expect(fairness.settings.maxMembers >= 8, "the member count alone does not split them")
            let queue = stack.topology.queueName(.profiles)
            let pad = JSONValue.string(String(repeating: "x", count: 3_000_000))
            let deliveries = (0..<8).map { index in
                AMQPDelivery.unpacked(
                    body: commandBody(
                        id: stack.id("large-\(index)"), type: "profile.upsert", accountID: "org_large",
                        payload: ["profile": ["email": "large@example.com"], "pad": pad]),
                    properties: AMQPProperties(contentType: "application/json", persistent: true),
                    exchange: stack.topology.commandsExchange, routingKey: "profile.upsert", redelivered: false,
                    queue: queue, consumerTag: "test", settlement: AMQPLocalSettlement())
            }
            // As the consumer does: a full bundle is flushed at once, an opened one after its window.
            var flushes: [(AccountFairness.BufferKey, Int)] = []
            for delivery in deliveries {
                switch fairness.add(delivery, account: "org_large") {
                case .full(let key, let generation), .opened(let key, let generation): flushes.append((key, generation))
                case .joined: break
                }
            }
            for (key, generation) in flushes { await fairness.flush(key, generation: generation) }

            let settled = deliveries.map { $0.localSettlement?.kind }
            #expect(settled.allSatisfy { $0 == .ack }, "settlements: \(settled)")
            // Full from the third member on (9 MB); the first flush takes all eight and splits them at 8 MiB.
            try await eventually("the four bundles back in the work queue", timeout: .seconds(30)) {
                try await stack.amqp.messageCount(queue: queue).messages == 4
            }
        }
    }
}
