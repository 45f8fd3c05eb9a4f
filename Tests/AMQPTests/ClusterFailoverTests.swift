import AMQP
import Foundation
import Synchronization
import Testing

/// The client against a real 3-node cluster (`scripts/dev/rabbitmq-cluster.sh`): node lists, failover, and the
/// at-least-once guarantees of a quorum queue while its leader's node goes away.
@Suite(
    "AMQP client on a 3-node RabbitMQ cluster", .serialized,
    .enabled(if: LocalCluster.isInstalled, "rabbitmq-server is not installed: no local cluster to test against"),
    LocalCluster.scope, .timeLimit(.minutes(4)))
struct ClusterFailoverTests {
    /// Publish outcomes by message number, and the numbers delivered to the consumer.
    private final class Ledger: Sendable {
        private struct State {
            var confirmed: Set<Int> = []
            var failed: [Int: AMQPError.Code] = [:]
            var delivered: Set<Int> = []
            var deliveries = 0
            var nextNumber = 0
            var stopped = false
        }
        private let state = Mutex(State())

        /// The next message number to publish, `nil` once ``stop()`` was called.
        func takeNumber() -> Int? {
            state.withLock { state in
                guard !state.stopped else { return nil }
                defer { state.nextNumber += 1 }
                return state.nextNumber
            }
        }
        /// Ends publishing; returns how many numbers were taken.
        func stop() -> Int {
            state.withLock { state in
                state.stopped = true
                return state.nextNumber
            }
        }
        func confirmed(_ number: Int) { state.withLock { _ = $0.confirmed.insert(number) } }
        func failed(_ number: Int, _ code: AMQPError.Code) { state.withLock { $0.failed[number] = code } }
        func delivered(_ number: Int) {
            state.withLock {
                $0.delivered.insert(number)
                $0.deliveries += 1
            }
        }
        var confirmedCount: Int { state.withLock { $0.confirmed.count } }
        var snapshot: (confirmed: Set<Int>, failed: [Int: AMQPError.Code], delivered: Set<Int>, deliveries: Int) {
            state.withLock { ($0.confirmed, $0.failed, $0.delivered, $0.deliveries) }
        }
    }

    private func client(urls: String, randomStart: Bool = false) throws -> AMQPClient {
        var configuration = try AMQPConfiguration(url: urls)
        configuration.connectionName = TestBroker.uniqueName("cluster")
        configuration.startsAtRandomNode = randomStart
        configuration.reconnectInitialBackoff = .milliseconds(100)
        configuration.reconnectMaxBackoff = .seconds(1)
        return AMQPClient(configuration: configuration, logger: TestBroker.logger)
    }

    @Test func aRandomStartSpreadsClientsOverTheNodes() async throws {
        let cluster = try LocalCluster.current
        var seen: Set<AMQPConfiguration.Node> = []
        // 12 clients: all on one node by chance has probability 3 × 3^-12.
        for _ in 0..<12 {
            let client = try client(urls: cluster.urls, randomStart: true)
            let run = Task { try await client.run() }
            try await client.waitUntilConnected(timeout: .seconds(20))
            if let node = client.connectedNode { seen.insert(node) }
            await client.shutdown()
            try await run.value
        }
        #expect(seen.count > 1, "12 clients with a random start all connected to \(seen)")
        #expect(seen.isSubset(of: Set(cluster.nodes)))
    }

    /// Publishes with confirms (16 in flight, without pause) and consumes through node 1, which leads the quorum
    /// queue; stops node 1 midway and goes on publishing until 1,000 more are confirmed through node 2. Every publish
    /// ends confirmed or failed (reported, never hanging), and every confirmed message is delivered at least once.
    /// A client started while node 1 is down connects to node 2.
    @Test func failoverKeepsEveryConfirmedMessageOfAQuorumQueue() async throws {
        let cluster = try LocalCluster.current
        let queue = TestBroker.uniqueName("cluster-failover")
        let topology = AMQPTopology(queues: [.init(name: queue, arguments: ["x-queue-type": .string("quorum")])])
        var configuration = try AMQPConfiguration(url: cluster.urls)
        configuration.connectionName = TestBroker.uniqueName("cluster")
        configuration.startsAtRandomNode = false
        configuration.reconnectInitialBackoff = .milliseconds(100)
        configuration.reconnectMaxBackoff = .seconds(1)
        let client = AMQPClient(configuration: configuration, topology: topology, logger: TestBroker.logger)
        let run = Task { try await client.run() }
        try await client.waitUntilConnected(timeout: .seconds(20))
        #expect(client.connectedNode == cluster.nodes[0])
        let leaderBefore = try await cluster.leader(of: queue)
        try #require(leaderBefore == "rabbit1@localhost", "the queue declared through node 1 should lead there")

        let ledger = Ledger()
        let consumer = client.consume(queue: queue, prefetch: 200)
        let consuming = Task {
            for try await delivery in consumer {
                if let number = Int(String(decoding: delivery.body, as: UTF8.self)) { ledger.delivered(number) }
                try? await client.ack(delivery)
            }
        }
        let publishing = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        while true {
                            guard let number = ledger.takeNumber() else { return }
                            do {
                                try await client.publish(
                                    AMQPMessage(exchange: "", routingKey: queue, body: Array("\(number)".utf8)))
                                ledger.confirmed(number)
                            } catch let error as AMQPError {
                                ledger.failed(number, error.code)
                                try? await client.waitUntilConnected(timeout: .seconds(30))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }

        var restored = false
        do {
            try await eventually("500 confirmed publishes before the failover", timeout: .seconds(60)) {
                ledger.confirmedCount >= 500
            }
            let clock = ContinuousClock()
            let stoppedAt = clock.now
            try await cluster.stopNode(1)
            try await eventually("a connection to another node", timeout: .seconds(30), every: .milliseconds(20)) {
                client.connectedNode.map { $0 != cluster.nodes[0] } ?? false
            }
            let failover = clock.now - stoppedAt
            let confirmedAtFailover = ledger.confirmedCount
            try await eventually("1,000 more confirmed publishes after the failover", timeout: .seconds(60)) {
                ledger.confirmedCount >= confirmedAtFailover + 1000
            }
            let total = ledger.stop()
            #expect(client.connectedNode == cluster.nodes[1], "the next node in the list is node 2")

            let late = try self.client(urls: cluster.urls)
            let lateRun = Task { try await late.run() }
            try await late.waitUntilConnected(timeout: .seconds(20))
            #expect(late.connectedNode == cluster.nodes[1], "node 1 is down: a client starting there moves on")
            await late.shutdown()
            try await lateRun.value

            try await publishing.value
            let published = ledger.snapshot
            #expect(published.confirmed.count + published.failed.count == total, "every publish has an outcome")
            #expect(published.confirmed.isDisjoint(with: Set(published.failed.keys)))
            #expect(published.failed.values.allSatisfy { [.connectionLost, .notConnected].contains($0) })
            try await eventually("every confirmed message delivered", timeout: .seconds(60), every: .milliseconds(50)) {
                ledger.snapshot.delivered.isSuperset(of: published.confirmed)
            }
            let leaderAfter = try await cluster.leader(of: queue)
            #expect(leaderAfter != "rabbit1@localhost")
            let final = ledger.snapshot
            print(
                "cluster failover: \(published.confirmed.count) confirmed, \(published.failed.count) reported failed, "
                    + "\(final.delivered.count) distinct delivered (\(final.deliveries) deliveries), reconnected to "
                    + "\(client.connectedNode.map { "\($0)" } ?? "-") in \(failover), leader now \(leaderAfter)")
            try await cluster.startNode(1)
            restored = true
        } catch {
            if !restored { try? await cluster.startNode(1) }
            publishing.cancel()
            throw error
        }
        consuming.cancel()
        try? await client.deleteQueue(queue)
        await client.shutdown()
        try await run.value
    }
}
