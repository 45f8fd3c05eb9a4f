import AMQP
import Foundation
import ServiceLifecycle
import Testing

/// A gap between losing and regaining the connection that tests can act in (e.g. publish while disconnected).
private func slowerReconnect(_ configuration: inout AMQPConfiguration) {
    configuration.reconnectInitialBackoff = .milliseconds(300)
}

@Suite("AMQPClient against the real broker")
struct AMQPClientTests {
    @Test func headersAndPropertiesRoundTrip() async throws {
        let queue = TestBroker.uniqueName("roundtrip")
        try await withClient(topology: .init(queues: [.init(name: queue)])) { client, _ in
            let consumer = client.consume(queue: queue, prefetch: 10)
            let collector = await DeliveryCollector.start(consumer)
            let headers: AMQPTable = [
                "string": .string("héllo"), "int": .int(-42), "big": .int(1 << 40), "bool": .bool(true),
                "false": .bool(false), "double": .double(3.25),
                "nested": .table(["inner": .string("x"), "deeper": .table(["n": .int(7)])]),
                "array": .array([.int(1), .string("two"), .table(["three": .bool(true)]), .array([.double(4.5)])]),
                "bytes": .bytes([0, 1, 2, 255]), "when": .timestamp(1_700_000_000), "nothing": .void,
            ]
            let properties = AMQPProperties(
                contentType: "application/json", contentEncoding: "identity", headers: headers, persistent: true,
                priority: 3, correlationID: "corr-1", replyTo: "reply.queue", expiration: "60000", messageID: "msg-1",
                timestamp: 1_700_000_123, type: "relay.test", appID: "amqp-tests")
            let body = Array("{\"hello\":\"world\"}".utf8)
            try await client.publish(AMQPMessage(routingKey: queue, body: body, properties: properties))
            let delivery = try #require(try await collector.waitFor(count: 1).first)
            #expect(delivery.body == body)
            #expect(delivery.properties == properties)
            #expect(delivery.properties.headers == headers)
            #expect(delivery.queue == queue)
            #expect(delivery.routingKey == queue)
            #expect(delivery.exchange == "")
            #expect(delivery.redelivered == false)
            #expect(delivery.deliveryCount == 0)
            #expect(delivery.consumerTag == consumer.consumerTag)
            try await client.ack(delivery)
            await #expect(throws: AMQPError.self) { try await client.ack(delivery) }  // double ack is refused locally
            await consumer.cancel()
        }
    }

    /// The client frames publishes itself (several per write): a body larger than the broker's frame size goes
    /// out as several body frames, an empty body as none, large properties fit, and all arrive intact.
    @Test func largeAndEmptyBodiesArriveWhole() async throws {
        let queue = TestBroker.uniqueName("bodies")
        try await withClient(topology: .init(queues: [.init(name: queue)])) { client, _ in
            let consumer = client.consume(queue: queue, prefetch: 10)
            let collector = await DeliveryCollector.start(consumer)
            // 300,001 bytes: three body frames at RabbitMQ's default frame-max of 131,072.
            let large = (0..<300_001).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
            let bodies: [[UInt8]] = [large, [], Array("small".utf8)]
            // Properties of more than 4 KB (the first encoding buffer) are encoded again into a larger one.
            let bigHeaders: AMQPTable = ["big": .string(String(repeating: "h", count: 10_000))]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, body) in bodies.enumerated() {
                    // Published back to back, so they share the connection thread's writes.
                    group.addTask {
                        try await client.publish(
                            AMQPMessage(
                                routingKey: queue, body: body,
                                properties: .init(headers: index == 2 ? bigHeaders : [:], messageID: "m\(index)")))
                    }
                }
                try await group.waitForAll()
            }
            let deliveries = try await collector.waitFor(count: 3)
            let byID = Dictionary(uniqueKeysWithValues: deliveries.map { ($0.properties.messageID ?? "", $0) })
            #expect(byID["m0"]?.body == large)
            #expect(byID["m1"]?.body == [])
            #expect(byID["m2"]?.body == Array("small".utf8))
            #expect(byID["m2"]?.properties.headers == bigHeaders)
            for delivery in deliveries { try await client.ack(delivery) }
            await consumer.cancel()
        }
    }

    @Test func tenThousandConcurrentPublishesAreConfirmedAndConsumed() async throws {
        let queue = TestBroker.uniqueName("bulk")
        let topology = AMQPTopology(queues: [.init(name: queue, arguments: ["x-queue-type": .string("quorum")])])
        try await withClient(topology: topology) { client, _ in
            let total = 10_000
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<total {
                    group.addTask {
                        try await client.publish(
                            AMQPMessage(
                                routingKey: queue, body: Array("message \(index)".utf8),
                                properties: .init(persistent: true, messageID: "\(index)")))
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await client.messageCount(queue: queue).messages == UInt32(total))

            let consumer = client.consume(queue: queue, prefetch: 500)
            var seen = Set<String>()
            for try await delivery in consumer {
                seen.insert(delivery.properties.messageID ?? "")
                try await client.ack(delivery)
                if seen.count == total { break }
            }
            #expect(seen.count == total)
            await consumer.cancel()
            try await eventually("queue drained") { try await client.messageCount(queue: queue).messages == 0 }
            #expect(try await client.messageCount(queue: queue).messages == 0)
        }
    }

    @Test func prefetchIsHonoured() async throws {
        let queue = TestBroker.uniqueName("prefetch")
        try await withClient(topology: .init(queues: [.init(name: queue)])) { client, _ in
            for index in 0..<20 {
                try await client.publish(AMQPMessage(routingKey: queue, body: [UInt8(index)]))
            }
            let consumer = client.consume(queue: queue, prefetch: 5)
            let collector = await DeliveryCollector.start(consumer)
            let first = try await collector.waitFor(count: 5)
            #expect(first.count == 5)
            // No sixth delivery may arrive while the five are unacknowledged.
            await #expect(throws: TestTimeout.self) {
                try await collector.waitFor(count: 6, timeout: .milliseconds(500))
            }
            #expect(try await client.messageCount(queue: queue) == (messages: 15, consumers: 1))
            #expect(await collector.deliveries.count == 5)
            // Acknowledging one frees exactly one slot.
            try await client.ack(first[0])
            let afterAck = try await collector.waitFor(count: 6)
            #expect(afterAck.count == 6)
            await #expect(throws: TestTimeout.self) {
                try await collector.waitFor(count: 7, timeout: .milliseconds(300))
            }
            await consumer.cancel()
        }
    }

    @Test func ackSoonIsWrittenWithoutBeingAwaited() async throws {
        let queue = TestBroker.uniqueName("acksoon")
        try await withClient(topology: .init(queues: [.init(name: queue)])) { client, _ in
            for index in 0..<3 {
                try await client.publish(AMQPMessage(routingKey: queue, body: [UInt8(index)]))
            }
            // Prefetch 1: each next delivery arrives only once the broker has the previous one's ack.
            let consumer = client.consume(queue: queue, prefetch: 1)
            let collector = await DeliveryCollector.start(consumer)
            let first = try await collector.waitFor(count: 1)[0]
            try client.ackSoon(first)
            // A second ack of the same delivery is dropped locally: sent to the broker it would close the channel
            // (unknown delivery tag) and every later delivery would come back redelivered.
            try client.ackSoon(first)
            let second = try await collector.waitFor(count: 2)[1]
            try client.ackSoon(second)
            let third = try await collector.waitFor(count: 3)[2]
            try client.ackSoon(third)
            try await client.publish(AMQPMessage(routingKey: queue, body: [9]))
            let fourth = try await collector.waitFor(count: 4)[3]
            #expect(fourth.body == [9])
            #expect(await collector.deliveries.allSatisfy { !$0.redelivered })
            try await client.ack(fourth)
            #expect(try await client.messageCount(queue: queue).messages == 0)
            await consumer.cancel()
        }
    }

    @Test func acksOfLaterDeliveriesNeverAcknowledgeOneStillHeld() async throws {
        let queue = TestBroker.uniqueName("held")
        let topology = AMQPTopology(queues: [.init(name: queue, arguments: ["x-queue-type": .string("quorum")])])
        try await withClient(topology: topology) { client, _ in
            for index in 0..<200 {
                try await client.publish(AMQPMessage(routingKey: queue, body: [UInt8(index % 256)]))
            }
            let consumer = client.consume(queue: queue, prefetch: 200)
            let collector = await DeliveryCollector.start(consumer)
            let deliveries = try await collector.waitFor(count: 200)
            // Hold the 10th; ack the others all at once (they are written together, with `multiple` where safe).
            let held = deliveries[9]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for delivery in deliveries where delivery.deliveryTag != held.deliveryTag {
                    group.addTask { try await client.ack(delivery) }
                }
                try await group.waitForAll()
            }
            // Had an ack swept the held delivery, the broker would refuse this requeue (unknown delivery tag) and
            // nothing would come back.
            try await client.nack(held, requeue: true)
            let redelivered = try await collector.waitFor(count: 201)[200]
            #expect(redelivered.body == held.body)
            #expect(redelivered.redelivered)
            try await client.ack(redelivered)
            #expect(try await client.messageCount(queue: queue).messages == 0)
            await consumer.cancel()
        }
    }

    @Test func nackRequeueRedeliversAndCountsDeliveries() async throws {
        let queue = TestBroker.uniqueName("nack")
        let topology = AMQPTopology(queues: [.init(name: queue, arguments: ["x-queue-type": .string("quorum")])])
        try await withClient(topology: topology) { client, _ in
            let consumer = client.consume(queue: queue, prefetch: 1)
            let collector = await DeliveryCollector.start(consumer)
            try await client.publish(AMQPMessage(routingKey: queue, body: Array("again".utf8)))
            let first = try await collector.waitFor(count: 1)[0]
            #expect(first.redelivered == false)
            #expect(first.deliveryCount == 0)
            try await client.nack(first, requeue: true)
            let second = try await collector.waitFor(count: 2)[1]
            #expect(second.redelivered == true)
            #expect(second.deliveryCount == 1)
            #expect(second.body == first.body)
            try await client.reject(second, requeue: true)
            let third = try await collector.waitFor(count: 3)[2]
            #expect(third.deliveryCount == 2)
            try await client.ack(third)
            await consumer.cancel()
        }
    }

    @Test func deliveryLimitDeadLettersWithXDeath() async throws {
        let queue = TestBroker.uniqueName("limited")
        let dlx = TestBroker.uniqueName("dlx")
        let dlq = TestBroker.uniqueName("dlq")
        let topology = AMQPTopology(
            exchanges: [.init(name: dlx, type: .fanout)],
            queues: [
                .init(
                    name: queue,
                    arguments: [
                        "x-queue-type": .string("quorum"), "x-delivery-limit": .int(1),
                        "x-dead-letter-exchange": .string(dlx),
                    ]),
                .init(name: dlq),
            ],
            bindings: [.init(queue: dlq, exchange: dlx, routingKey: "")])
        try await withClient(topology: topology) { client, _ in
            let consumer = client.consume(queue: queue, prefetch: 1)
            let collector = await DeliveryCollector.start(consumer)
            let deadLetters = await DeliveryCollector.start(client.consume(queue: dlq, prefetch: 1))
            try await client.publish(
                AMQPMessage(routingKey: queue, body: Array("poison".utf8), properties: .init(messageID: "poison-1")))
            for attempt in 1...2 {
                let delivery = try await collector.waitFor(count: attempt)[attempt - 1]
                try await client.nack(delivery, requeue: true)
            }
            let dead = try await deadLetters.waitFor(count: 1)[0]
            #expect(dead.body == Array("poison".utf8))
            #expect(dead.properties.messageID == "poison-1")
            guard case .array(let deaths)? = dead.properties.headers["x-death"], case .table(let death)? = deaths.first
            else {
                Issue.record(
                    "x-death is not an array of tables: \(String(describing: dead.properties.headers["x-death"]))")
                return
            }
            #expect(death["reason"] == .string("delivery_limit"))
            #expect(death["queue"] == .string(queue))
            #expect(dead.properties.headers["x-first-death-reason"] == .string("delivery_limit"))
            try await client.ack(dead)
            #expect(await collector.deliveries.count == 2)
        }
    }

    @Test func unroutableAndMissingExchange() async throws {
        let exchange = TestBroker.uniqueName("unbound")
        let queue = TestBroker.uniqueName("after404")
        let topology = AMQPTopology(exchanges: [.init(name: exchange, type: .direct)], queues: [.init(name: queue)])
        try await withClient(topology: topology) { client, _ in
            await #expect {
                try await client.publish(
                    AMQPMessage(exchange: exchange, routingKey: "nowhere", body: [1], mandatory: true))
            } throws: { error in
                (error as? AMQPError)?.code == .unroutable && (error as? AMQPError)?.replyCode == 312
            }
            // Not mandatory: silently dropped but confirmed.
            try await client.publish(AMQPMessage(exchange: exchange, routingKey: "nowhere", body: [2]))

            let missing = TestBroker.uniqueName("missing-exchange")
            await #expect {
                try await client.publish(AMQPMessage(exchange: missing, routingKey: "x", body: [3]))
            } throws: { error in
                guard let error = error as? AMQPError else { return false }
                return error.code == .channelClosed && error.replyCode == 404 && !error.isRetriable
            }
            try await client.publish(AMQPMessage(routingKey: queue, body: [4]))
            #expect(try await client.messageCount(queue: queue).messages == 1)
            #expect(client.isConnected)
        }
    }

    @Test func passiveDeclareOfMissingQueueFailsWith404AndClientKeepsWorking() async throws {
        let queue = TestBroker.uniqueName("present")
        try await withClient(topology: .init(queues: [.init(name: queue)])) { client, _ in
            let consumer = client.consume(queue: queue, prefetch: 10)
            let collector = await DeliveryCollector.start(consumer)
            await #expect {
                _ = try await client.messageCount(queue: TestBroker.uniqueName("absent"))
            } throws: { error in
                (error as? AMQPError)?.code == .channelClosed && (error as? AMQPError)?.replyCode == 404
            }
            #expect(try await client.messageCount(queue: queue) == (messages: 0, consumers: 1))
            try await client.publish(AMQPMessage(routingKey: queue, body: [9]))
            let delivery = try await collector.waitFor(count: 1)[0]
            try await client.ack(delivery)
            // basic.get and purge on the (reopened) RPC channel.
            try await client.publish(AMQPMessage(routingKey: queue, body: [10]))
            await consumer.cancel()
            try await client.publish(AMQPMessage(routingKey: queue, body: [11]))
            try await eventually("messages ready again") { try await client.messageCount(queue: queue).messages >= 1 }
            let fetched = try #require(try await client.get(queue: queue))
            #expect(fetched.body == [10] || fetched.body == [11])
            try await client.ack(fetched)
            _ = try await client.purge(queue: queue)
            #expect(try await client.get(queue: queue) == nil)
        }
    }

    @Test func consumingAMissingQueueFailsTheStreamOnly() async throws {
        let queue = TestBroker.uniqueName("survivor")
        try await withClient(topology: .init(queues: [.init(name: queue)])) { client, _ in
            let good = await DeliveryCollector.start(client.consume(queue: queue, prefetch: 5))
            let bad = await DeliveryCollector.start(client.consume(queue: TestBroker.uniqueName("nope"), prefetch: 5))
            await #expect {
                try await bad.waitFor(count: 1)
            } throws: { error in
                (error as? AMQPError)?.replyCode == 404
            }
            try await client.publish(AMQPMessage(routingKey: queue, body: [1]))
            let delivery = try await good.waitFor(count: 1)[0]
            try await client.ack(delivery)
        }
    }

    @Test func reconnectsAfterBrokerClosesTheConnection() async throws {
        let queue = TestBroker.uniqueName("reconnect")
        try await withClient(
            topology: .init(queues: [.init(name: queue)]),
            configure: slowerReconnect
        ) { client, configuration in
            let consumer = client.consume(queue: queue, prefetch: 10)
            let collector = await DeliveryCollector.start(consumer)
            try await client.publish(AMQPMessage(routingKey: queue, body: Array("before".utf8)))
            let before = try await collector.waitFor(count: 1)[0]

            var names: [String] = []
            try await eventually(
                "the management API to list the connection", timeout: .seconds(30), every: .milliseconds(200)
            ) {
                names = try await Management.connections(named: configuration.connectionName)
                return !names.isEmpty
            }
            let opened = client.connectionsOpened
            #expect(opened == 1)
            for name in names { try await Management.closeConnection(name) }
            // The loss is seen by the count (a gap in isConnected can be shorter than a loaded test's polling).
            try await eventually("a second connection after the broker closed the first") {
                client.connectionsOpened == opened + 1 && client.isConnected
            }

            await #expect {
                try await client.ack(before)
            } throws: { error in
                (error as? AMQPError)?.code == .staleDelivery
            }
            try await client.publish(AMQPMessage(routingKey: queue, body: Array("after".utf8)))
            // The old message is redelivered to the re-subscribed consumer, and the new one arrives too.
            let all = try await collector.waitFor(count: 3)
            let afterReconnect = all.dropFirst()
            #expect(afterReconnect.contains { $0.body == Array("after".utf8) })
            #expect(afterReconnect.contains { $0.body == Array("before".utf8) && $0.redelivered })
            for delivery in afterReconnect { try await client.ack(delivery) }
            try await eventually("queue drained") { try await client.messageCount(queue: queue).messages == 0 }
        }
    }
}

extension AMQPClientTests {
    @Test func publishesInFlightDuringAConnectionLossFailRetriably() async throws {
        let queue = TestBroker.uniqueName("inflight")
        try await withClient(
            topology: .init(queues: [.init(name: queue, arguments: ["x-queue-type": .string("quorum")])]),
            configure: slowerReconnect
        ) { client, configuration in
            var names: [String] = []
            try await eventually(
                "the management API to list the connection", timeout: .seconds(30), every: .milliseconds(200)
            ) {
                names = try await Management.connections(named: configuration.connectionName)
                return !names.isEmpty
            }
            let connectionNames = names
            let outcomes = try await withThrowingTaskGroup(of: [AMQPError?].self) { group in
                for worker in 0..<32 {
                    group.addTask {
                        var results: [AMQPError?] = []
                        for index in 0..<150 {
                            do {
                                try await client.publish(
                                    AMQPMessage(routingKey: queue, body: Array("\(worker)-\(index)".utf8)))
                                results.append(nil)
                            } catch let error as AMQPError {
                                results.append(error)
                                // A real publisher would retry; here we just wait for the reconnect and go on.
                                if error.isRetriable { try await client.waitUntilConnected(timeout: .seconds(15)) }
                            }
                        }
                        return results
                    }
                }
                group.addTask {
                    for name in connectionNames { try await Management.closeConnection(name) }
                    return []
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(outcomes.count == 32 * 150)
            let failures = outcomes.compactMap { $0 }
            for failure in failures {
                #expect(failure.isRetriable, "\(failure)")
                #expect([.connectionLost, .notConnected, .connectionClosed].contains(failure.code), "\(failure)")
            }
            try await client.waitUntilConnected(timeout: .seconds(15))
            try await client.publish(AMQPMessage(routingKey: queue, body: Array("after".utf8)))
            // Every confirmed publish is really in the queue (some unconfirmed ones may be too: at-least-once).
            let confirmed = outcomes.count - failures.count + 1
            try await eventually("the queue to hold every confirmed message") {
                try await client.messageCount(queue: queue).messages >= UInt32(confirmed)
            }
        }
    }
}

@Suite("AMQPClient lifecycle")
struct AMQPClientLifecycleTests {
    private static func race(
        _ what: String, timeout: Duration, _ body: @escaping @Sendable () async throws -> Void
    )
        async throws
    {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await body()
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            let finished = try await group.next() ?? false
            group.cancelAll()
            if !finished { throw TestTimeout(what: what) }
        }
    }

    @Test func runReturnsAfterShutdown() async throws {
        let client = AMQPClient(configuration: try TestBroker.configuration(), logger: TestBroker.logger)
        let runTask = Task { try await client.run() }
        try await client.waitUntilConnected(timeout: .seconds(15))
        let consumer = client.consume(queue: TestBroker.uniqueName("never-declared-but-unused"), prefetch: 1)
        _ = consumer
        try await Self.race("shutdown", timeout: .seconds(15)) {
            await client.shutdown()
            try await runTask.value
        }
        #expect(!client.isConnected)
        await #expect {
            try await client.publish(AMQPMessage(routingKey: "x", body: []))
        } throws: { error in
            (error as? AMQPError)?.code == .shutdown
        }
    }

    @Test func runReturnsOnServiceGroupGracefulShutdown() async throws {
        let client = AMQPClient(configuration: try TestBroker.configuration(), logger: TestBroker.logger)
        let group = ServiceGroup(services: [client], logger: TestBroker.logger)
        let groupTask = Task { try await group.run() }
        try await client.waitUntilConnected(timeout: .seconds(15))
        let queue = TestBroker.uniqueName("graceful")
        // Exclusive, as in runReturnsAfterCancellation: nothing stays behind whatever wins the race.
        try await client.declare(.init(queues: [.init(name: queue, durable: false, exclusive: true, autoDelete: true)]))
        let collector = await DeliveryCollector.start(client.consume(queue: queue, prefetch: 1))
        await group.triggerGracefulShutdown()
        try await Self.race("the service group to finish after a graceful shutdown", timeout: .seconds(15)) {
            try await groupTask.value
        }
        #expect(!client.isConnected)
        try await eventually("consumer stream finished") { await collector.isFinished }
    }

    @Test func runReturnsAfterCancellation() async throws {
        let client = AMQPClient(configuration: try TestBroker.configuration(), logger: TestBroker.logger)
        let runTask = Task { try await client.run() }
        try await client.waitUntilConnected(timeout: .seconds(15))
        let queue = TestBroker.uniqueName("cancel")
        // Exclusive: gone with the connection even if the cancellation beats the subscription (an auto-delete
        // queue that never had a consumer would stay behind).
        try await client.declare(.init(queues: [.init(name: queue, durable: false, exclusive: true, autoDelete: true)]))
        let consumer = client.consume(queue: queue, prefetch: 1)
        let collector = await DeliveryCollector.start(consumer)
        runTask.cancel()
        try await Self.race("run() to return after cancellation", timeout: .seconds(15)) {
            try await runTask.value
        }
        #expect(!client.isConnected)
        try await eventually("consumer stream finished") { await collector.isFinished }
    }

    @Test func wrongPasswordIsReportedByWaitUntilConnected() async throws {
        var configuration = try TestBroker.configuration()
        configuration.password = "definitely-wrong-\(UUID())"
        let client = AMQPClient(configuration: configuration, logger: TestBroker.logger)
        let runTask = Task { try await client.run() }
        await #expect {
            try await client.waitUntilConnected(timeout: .seconds(2))
        } throws: { error in
            guard let error = error as? AMQPError else { return false }
            return error.code == .timeout && error.message.contains("authenticationFailed")
                && error.message.contains("ACCESS_REFUSED") && !error.message.contains(configuration.password)
        }
        await client.shutdown()
        try await runTask.value
    }

    @Test func waitUntilConnectedTimesOutWhenBrokerIsUnreachable() async throws {
        var configuration = try AMQPConfiguration(url: "amqp://127.0.0.1:1/")
        configuration.reconnectInitialBackoff = .milliseconds(50)
        let client = AMQPClient(configuration: configuration, logger: TestBroker.logger)
        let runTask = Task { try await client.run() }
        await #expect {
            try await client.waitUntilConnected(timeout: .milliseconds(500))
        } throws: { error in
            (error as? AMQPError)?.code == .timeout
        }
        await #expect {
            try await client.publish(AMQPMessage(routingKey: "x", body: []))
        } throws: { error in
            (error as? AMQPError)?.code == .notConnected && (error as? AMQPError)?.isRetriable == true
        }
        await client.shutdown()
        try await runTask.value
    }
}

extension AMQPClientTests {
    @Test func brokerNackFailsThePublish() async throws {
        let queue = TestBroker.uniqueName("full")
        let topology = AMQPTopology(queues: [
            .init(name: queue, arguments: ["x-max-length": .int(1), "x-overflow": .string("reject-publish")])
        ])
        try await withClient(topology: topology) { client, _ in
            try await client.publish(AMQPMessage(routingKey: queue, body: [1]))
            await #expect {
                try await client.publish(AMQPMessage(routingKey: queue, body: [2]))
            } throws: { error in
                (error as? AMQPError)?.code == .publishNacked
            }
            #expect(try await client.messageCount(queue: queue).messages == 1)
            let fetched = try #require(try await client.get(queue: queue))
            #expect(fetched.body == [1])
            #expect(fetched.consumerTag == "")
            #expect(fetched.queue == queue)
            try await client.ack(fetched)
            try await client.publish(AMQPMessage(routingKey: queue, body: [3]))
        }
    }

    @Test func consumerRegisteredBeforeRunIsSubscribedOnConnect() async throws {
        let queue = TestBroker.uniqueName("early")
        var configuration = try TestBroker.configuration()
        configuration.heartbeat = .seconds(5)
        let client = AMQPClient(
            configuration: configuration, topology: .init(queues: [.init(name: queue, autoDelete: true)]),
            logger: TestBroker.logger)
        let collector = await DeliveryCollector.start(client.consume(queue: queue, prefetch: 2))
        let runTask = Task { try await client.run() }
        try await client.waitUntilConnected(timeout: .seconds(15))
        try await client.publish(AMQPMessage(routingKey: queue, body: Array("early".utf8)))
        let delivery = try await collector.waitFor(count: 1)[0]
        #expect(delivery.body == Array("early".utf8))
        try await client.ack(delivery)
        await client.shutdown()
        try await runTask.value
        try await eventually("the consumer stream to finish after shutdown") { await collector.isFinished }
    }
}

extension AMQPClientTests {
    /// Idles for four 1-second heartbeat intervals: heartbeats must flow both ways (rabbitmq-c sends ours from the
    /// non-blocking reads, the broker's wake the poll), otherwise one side drops the connection and the held
    /// delivery becomes stale.
    @Test func heartbeatsKeepAnIdleConnectionAlive() async throws {
        let queue = TestBroker.uniqueName("heartbeat")
        try await withClient(
            topology: .init(queues: [.init(name: queue)]), configure: oneSecondHeartbeat
        ) { client, _ in
            let collector = await DeliveryCollector.start(client.consume(queue: queue, prefetch: 1))
            try await client.publish(AMQPMessage(routingKey: queue, body: [42]))
            let held = try await collector.waitFor(count: 1)[0]
            let clock = ContinuousClock()
            let idleUntil = clock.now + .seconds(4)
            while clock.now < idleUntil {
                #expect(client.isConnected)
                try await Task.sleep(for: .milliseconds(250))  // the idle time is what is under test here
            }
            try await client.ack(held)  // same connection and channel: not stale
            #expect(try await client.messageCount(queue: queue).messages == 0)
        }
    }
}

private func oneSecondHeartbeat(_ configuration: inout AMQPConfiguration) {
    configuration.heartbeat = .seconds(1)
}
