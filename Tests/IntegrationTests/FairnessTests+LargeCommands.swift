import AMQP
import Foundation
import Klaviyo
import RelayTestSupport
import Testing

@testable import Relay

extension FairnessTests {
    /// Eight deliveries of one account at 18 MB each (144 MB together, beyond the 128 MiB that RabbitMQ takes in
    /// one message by default; 16 MiB from RabbitMQ 4.0) are parked in bundles the broker takes: each delivery
    /// is acked after its bundle was confirmed, and the bundles come back to the work queue. As one bundle the
    /// broker refused them (closing the publish channel under every other publish in flight), and the eight were
    /// requeued, to be bundled and refused again until the broker dead-lettered them at their delivery limit.
    @Test func largeCommandsAreParkedInBundlesTheBrokerTakes() async throws {
        try await withRelayStack { stack in
            let fairness = AccountFairness(
                settings: .init(concurrency: 16, fairShare: 0.25, prefetch: 64), amqp: stack.amqp,
                topology: stack.topology, seal: HeaderSeal(keyRing: stack.keys), logger: IntegrationEnvironment.logger)
            #expect(fairness.settings.maxMembers >= 8, "the member count alone does not split them")
            let queue = stack.topology.queueName(.profiles)
            let pad = JSONValue.string(String(repeating: "x", count: 18_000_000))
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
            // Each member is larger than a bundle may be: eight bundles of one, back in the queue after the 1 s tier.
            try await eventually("the bundles back in the work queue", timeout: .seconds(30)) {
                try await stack.amqp.messageCount(queue: queue).messages >= 8
            }
        }
    }
}
