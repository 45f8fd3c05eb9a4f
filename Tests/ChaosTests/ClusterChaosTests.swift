import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Redis
import Relay
import RelayTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The chaos test on a cluster (issue #10): a 3-node RabbitMQ cluster, a Redis Cluster of 3 primaries + 3 replicas,
/// three `consume` processes spread over the nodes and a klaviyo-sim; while 5,000 mixed commands of 20 accounts
/// are published, one consumer is SIGKILLed (and replaced), the node leading `<prefix>.profiles` is stopped and
/// later started again, a Redis primary is SIGKILLed (its replica takes over) and the node a consumer is connected
/// to is stopped. Runs only with `RELAY_CLUSTER_CHAOS=1` (scripts/test/cluster-chaos.sh starts the clusters).
@Suite(
    "Cluster chaos: node, primary and consumer losses", .enabled(if: ClusterChaosEnvironment.enabled), .serialized,
    .timeLimit(.minutes(10))
)
struct ClusterChaosTests {
    @Test func commandsSurviveNodeLossesOnClusters() async throws {
        let started = ContinuousClock.now
        let run = String(UUID().uuidString.lowercased().prefix(8))
        let prefix = "cluster-chaos-\(run)"
        let logger = ClusterChaosEnvironment.logger
        let rig = try await ChaosRig(
            prefix: prefix, servers: "the RabbitMQ cluster", amqpURL: ClusterChaosEnvironment.amqpURL,
            redisURL: ClusterChaosEnvironment.redisURL,
            simURL: ClusterChaosEnvironment.simURL, logger: logger, connectTimeout: .seconds(30),
            collectorQueue: .init(name: "\(prefix).collector", arguments: ["x-queue-type": .string("quorum")])
        ) {
            $0.reconnectInitialBackoff = .milliseconds(100)
            $0.reconnectMaxBackoff = .seconds(1)
        }
        let (topology, amqp, redis, http, sim) = (rig.topology, rig.amqp, rig.redis, rig.http, rig.sim)
        let (consumers, collected) = (rig.consumers, rig.collected)
        try await rig.run(scenario)

        func scenario() async throws {
            // Each consumer gets the node list in another order (each still starts at a random node).
            let urls = ClusterChaosEnvironment.amqpURL.split(separator: ",").map(String.init)
            let consumerCount = Shared<Int>(0)
            @Sendable func startConsumer() throws {
                let number = consumerCount.withLock {
                    $0 += 1
                    return $0
                }
                let rotated = Array(urls[(number % urls.count)...] + urls[..<(number % urls.count)])
                let child = try ChildProcess.start(
                    executable: ClusterChaosEnvironment.relayBinary, arguments: ["consume", "--dev"],
                    variables: [
                        "RELAY_QUEUE_PREFIX": prefix, "RELAY_KLAVIYO_API_BASE_URL": ClusterChaosEnvironment.simURL,
                        "RELAY_AMQP_URL": rotated.joined(separator: ","),
                        "RELAY_REDIS_URL": ClusterChaosEnvironment.redisURL, "RELAY_CONCURRENCY": "32",
                        "RELAY_METRICS_PORT": "0", "RELAY_LOG_FORMAT": "json", "RELAY_LOG_LEVEL": "info",
                        "RELAY_SHUTDOWN_TIMEOUT": "5s", "RELAY_HTTP_TIMEOUT": "5s", "RELAY_MAX_ATTEMPTS": "8",
                        "RELAY_RETRY_MAX_DELAY": "1s", "RELAY_RETRY_BASE_DELAY": "200ms", "RELAY_DELIVERY_LIMIT": "10",
                    ], label: "cluster-chaos")
                consumers.withLock { $0.append(child) }
            }
            func publish(_ body: [UInt8], routingKey: String, id: String) async throws {
                try await rig.publish(body, routingKey: routingKey, id: id)
            }
            @Sendable func allConsumersOnEveryQueue() async throws -> Bool {
                for queue in RelayQueue.allCases {
                    if try await amqp.messageCount(queue: topology.queueName(queue)).consumers < 3 { return false }
                }
                return true
            }

            // 20 accounts connected with API keys (credentials in the Redis Cluster), one never connected.
            let accounts = (0..<20).map { "\(prefix)-a\($0)" }
            let lateAccount = "\(prefix)-late"
            let klaviyo = KlaviyoClient(
                baseURL: ClusterChaosEnvironment.simURL, transport: http, userAgent: "cluster-chaos-test",
                logger: logger)
            let connector = APIKeyConnector(
                klaviyo: klaviyo, store: CredentialStore(redis: redis, keys: EncryptionKeyRing.development))
            for account in accounts + [lateAccount] {
                let key = "pk_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
                try await sim.call(
                    .POST, "/_sim/accounts",
                    ["account_id": .string(account), "api_key": .string(key), "name": "Cluster Chaos Store"])
                if account != lateAccount { _ = try await connector.connect(accountID: account, apiKey: key) }
            }

            for _ in 0..<3 { try startConsumer() }
            try await eventually("3 consumers on every work queue", timeout: .seconds(60)) {
                try await allConsumersOnEveryQueue()
            }

            // Setup: one list per account and the account's flows (ids for later commands).
            var planned: [String: Planned] = [:]
            for account in accounts {
                let listID = "\(prefix)-setup-list-\(account)"
                let flowsID = "\(prefix)-setup-flows-\(account)"
                planned[listID] = Planned(id: listID, type: "list.create", account: account)
                planned[flowsID] = Planned(id: flowsID, type: "flow.list", account: account)
                try await publish(
                    ChaosCommandMix.envelope(listID, "list.create", account, ["name": .string("Chaos \(account)")]),
                    routingKey: "list.create", id: listID)
                try await publish(
                    ChaosCommandMix.envelope(flowsID, "flow.list", account, [:]), routingKey: "flow.list", id: flowsID)
            }
            try await eventually("setup results", timeout: .seconds(90)) { collected.settled.count >= planned.count }
            var lists: [String: String] = [:]
            var flows: [String: [String]] = [:]
            for account in accounts {
                let state = collected.state.withLock { $0 }
                lists[account] = try #require(
                    state.results["\(prefix)-setup-list-\(account)"]?.first?.klaviyo?.ids.first)
                flows[account] = try #require(state.results["\(prefix)-setup-flows-\(account)"]?.first?.klaviyo?.ids)
                try #require(!(flows[account] ?? []).isEmpty)
            }
            let statsBefore = try await sim.call(.GET, "/_sim/stats")

            let total = ClusterChaosEnvironment.commandCount
            let publishedCount = Shared<Int>(0)
            let events = Shared<[ClusterChaosEvent]>([])
            let chaos = Task {
                try await causeFailures(
                    total: total, publishedCount: publishedCount, events: events, consumers: consumers,
                    accounts: accounts, profilesQueue: topology.queueName(.profiles),
                    startConsumer: startConsumer, allConsumersOnEveryQueue: allConsumersOnEveryQueue)
            }

            var mix = ChaosCommandMix(accounts: accounts, lateAccount: lateAccount, lists: lists, flows: flows)
            var typeCounts: [String: Int] = [:]
            var publishedAt: [String: ContinuousClock.Instant] = [:]
            for index in 0..<total {
                let id = "\(prefix)-\(index)"
                let command = mix.next(index: index, id: id) { account in
                    collected.state.withLock { $0.profileIDs[account] ?? [] }
                }
                planned[id] = command.plan
                typeCounts[command.plan.type, default: 0] += 1
                try await publish(command.body, routingKey: command.routingKey, id: id)
                publishedAt[id] = ContinuousClock.now
                publishedCount.withLock { $0 += 1 }
                try await Task.sleep(for: ClusterChaosEnvironment.pace)
            }
            let published = planned.count
            let publishingEnded = ContinuousClock.now
            do {
                try await chaos.value
            } catch {
                Issue.record("the chaos sequence failed: \(error)")
                throw error
            }

            try await rig.awaitOutcomes(of: planned, events: "\(events.withLock { $0.map(\.name) })")
            let settledAt = ContinuousClock.now
            try await rig.awaitDrained()
            let state = collected.state.withLock { $0 }
            let statsAfter = try await sim.call(.GET, "/_sim/stats")

            // Every published id has an outcome; a well-formed command of a connected account a success result.
            rig.expectExactlyThePublishedIDs(state, planned)
            var wrongDead: [String] = []
            var inconsistent: [String] = []
            for (id, plan) in planned {
                let dead = state.dead[id] ?? []
                let results = state.results[id] ?? []
                let expected = plan.malformedCode ?? (plan.account == lateAccount ? "not_connected" : nil)
                if let expected {
                    if !results.isEmpty || dead.contains(where: { $0.code != expected }) {
                        wrongDead.append("\(id) \(plan.type): \(dead.map(\.code)), \(results.count) results")
                    }
                } else if !dead.isEmpty {
                    wrongDead.append("\(id) \(plan.type): \(dead.map { "\($0.code) \($0.detail)" })")
                }
                // At least once, every copy the same outcome for the same command id.
                if Set(results.map(\.outcome.rawValue)).count > 1 || results.contains(where: { $0.commandID != id }) {
                    inconsistent.append("\(id): \(results.map(\.outcome.rawValue))")
                }
            }
            #expect(wrongDead.isEmpty, "dead letters that should not be: \(wrongDead.prefix(10))")
            #expect(inconsistent.isEmpty, "results that disagree: \(inconsistent.prefix(5))")
            let failedResults = state.results.values.compactMap(\.first).filter { $0.outcome != .succeeded }
            #expect(
                failedResults.isEmpty,
                "unsuccessful results: \(failedResults.prefix(3).map { "\($0.commandID) \($0.outcome) \($0.error?.detail ?? "")" })"
            )

            // Klaviyo side effects applied once: one profile per upserted email, one event per event.track.
            let eventsTotal = try await rig.expectSideEffectsOnce(accounts: accounts, planned)

            // Figures.
            var rows: [(String, String)] =
                [
                    ("commands published (distinct ids)", "\(published) (\(total) main + \(published - total) setup)"),
                    ("  of which malformed", "\(planned.values.filter { $0.malformedCode != nil }.count)"),
                    (
                        "  of which for the unconnected account",
                        "\(planned.values.filter { $0.account == lateAccount }.count)"
                    ),
                ] + state.outcomeRows() + [
                    (
                        "Klaviyo calls (main phase)",
                        "\(intValue(statsAfter["requests_total"]) - intValue(statsBefore["requests_total"]))"
                    ),
                    ("events recorded (one per event.track)", "\(eventsTotal)"),
                ]
            let arrivals = Array(state.firstArrival.values)
            for event in events.withLock({ $0 }) {
                let served = event.firstServed(planned: planned, published: publishedAt, arrivals: state.firstArrival)
                let gap = event.longestGap(arrivals: arrivals, window: .seconds(20))
                var parts = ["at \(event.progress) % published", "the operation took \(seconds(event.operation))"]
                parts += event.notes
                parts.append("first new \(event.scope.label) served \(served.map(seconds) ?? "—") after it")
                parts.append("longest pause between outcomes in the 20 s after it: \(seconds(gap))")
                rows.append((event.name, parts.joined(separator: "; ")))
                #expect(served != nil || !event.isFailure, "\(event.name): no command published after it was served")
            }
            rows += [
                ("publishing (\(total) commands)", seconds(publishingEnded - started)),
                ("time to settle everything", seconds(settledAt - started)),
                ("total time", seconds(ContinuousClock.now - started)),
                (
                    "mix",
                    typeCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                ),
            ]
            printFigures("CLUSTER CHAOS TEST FIGURES", rows)
        }
    }

    /// The chaos sequence, triggered by publishing progress: a consumer SIGKILLed and replaced (10 %), the node
    /// leading `profilesQueue` stopped (25 %) and started again (45 %), a Redis primary SIGKILLed (60 %), the node a
    /// consumer is connected to stopped whole (75 %) and started again once its consumers moved.
    private func causeFailures(
        total: Int, publishedCount: Shared<Int>, events: Shared<[ClusterChaosEvent]>, consumers: Shared<[ChildProcess]>,
        accounts: [String], profilesQueue: String,
        startConsumer: @escaping @Sendable () throws -> Void,
        allConsumersOnEveryQueue: @escaping @Sendable () async throws -> Bool
    ) async throws {
        let clock = ContinuousClock()
        func when(_ fraction: Double) async throws -> Int {
            try await eventually("\(Int(fraction * 100)) % published", timeout: .seconds(300), every: .milliseconds(50))
            {
                Double(publishedCount.withLock { $0 }) >= fraction * Double(total)
            }
            return publishedCount.withLock { $0 } * 100 / total
        }
        func record(_ event: ClusterChaosEvent) { events.withLock { $0.append(event) } }

        // 1. SIGKILL a consumer, start a replacement.
        var progress = try await when(0.10)
        var begin = clock.now
        let victim = consumers.withLock { $0[0] }
        victim.kill9()
        _ = try await victim.waitForExit(timeout: .seconds(10))
        var event = ClusterChaosEvent(
            name: "consumer SIGKILLed", progress: progress, startedAt: begin, effectiveAt: clock.now, scope: .all)
        try startConsumer()
        try await eventually("the replacement consuming every queue", timeout: .seconds(60)) {
            try await allConsumersOnEveryQueue()
        }
        event.notes.append(
            "pid \(victim.pid); its replacement consuming every queue \(seconds(clock.now - begin)) after the kill")
        record(event)

        // 2. Stop the node leading the profiles queue (its quorum queue elects a leader on another node).
        progress = try await when(0.25)
        let leader = try await LocalClusters.leader(of: profilesQueue)
        let onLeader = consumers.withLock { $0.filter(\.isRunning) }.filter { connectedNode(of: $0) == leader }
        let connectionsBefore = onLeader.map { connectionCount(of: $0) }
        begin = clock.now
        try await LocalClusters.rabbitmq(["stop-node", "\(leader)"])
        event = ClusterChaosEvent(
            name: "RabbitMQ node leading \(profilesQueue) stopped", progress: progress, startedAt: begin,
            effectiveAt: clock.now, scope: .queue(prefixes: ["profile.", "list.", "subscription."]))
        event.notes.append("node \(leader) (AMQP \(LocalClusters.amqpPort(ofNode: leader)))")
        try await eventually("the consumers of node \(leader) on another node", timeout: .seconds(60)) {
            zip(onLeader, connectionsBefore).allSatisfy { connectionCount(of: $0) > $1 || !$0.isRunning }
        }
        event.notes.append(
            "its \(onLeader.count) consumer(s) reconnected elsewhere \(seconds(clock.now - begin)) after the stop began"
        )
        let newLeader = try await LocalClusters.leader(of: profilesQueue)
        event.notes.append("new leader node \(newLeader)")
        record(event)

        // 3. Start it again.
        progress = try await when(0.45)
        begin = clock.now
        try await LocalClusters.rabbitmq(["start-node", "\(leader)"])
        record(
            ClusterChaosEvent(
                name: "RabbitMQ node \(leader) started again", progress: progress, startedAt: begin,
                effectiveAt: clock.now, scope: .all, isFailure: false))

        // 4. SIGKILL the Redis primary serving most accounts; its replica is promoted.
        progress = try await when(0.60)
        var accountsByPrimary: [Int: Set<String>] = [:]
        for account in accounts {
            if let port = try await LocalClusters.primary(ofSlot: RedisSlot.of(RedisKeys.connection(account))) {
                accountsByPrimary[port, default: []].insert(account)
            }
        }
        let (primary, itsAccounts) = try #require(accountsByPrimary.max { $0.value.count < $1.value.count })
        let replicas = await LocalClusters.replicas(of: primary)
        let pid = try LocalClusters.redisPID(primary)
        begin = clock.now
        kill(pid, SIGKILL)
        event = ClusterChaosEvent(
            name: "Redis primary SIGKILLed", progress: progress, startedAt: begin, effectiveAt: clock.now,
            scope: .accounts(itsAccounts))
        event.notes.append("port \(primary), slots of \(itsAccounts.count) of the 20 accounts, replica(s) \(replicas)")
        let others = LocalClusters.redisPorts.filter { $0 != primary }
        try await eventually("a replica of \(primary) promoted", timeout: .seconds(60), every: .milliseconds(50)) {
            for replica in replicas where await LocalClusters.role(replica) == "master" { return true }
            return false
        }
        event.notes.append("replica promoted \(seconds(clock.now - begin)) after the kill")
        try await eventually("the Redis Cluster ok again", timeout: .seconds(60), every: .milliseconds(100)) {
            await LocalClusters.redisClusterOK(among: others)
        }
        event.notes.append("cluster state ok on every node \(seconds(clock.now - begin)) after the kill")
        record(event)

        // 5. Stop (whole) the node a consumer is connected to.
        progress = try await when(0.75)
        let running = consumers.withLock { $0.filter(\.isRunning) }
        let target = try #require(running.first { connectedNode(of: $0) != nil }, "no consumer names its node")
        let node = try #require(connectedNode(of: target))
        let onNode = running.filter { connectedNode(of: $0) == node }
        let before = onNode.map { connectionCount(of: $0) }
        begin = clock.now
        try await LocalClusters.rabbitmq(["stop-node", "\(node)", "--hard"])
        event = ClusterChaosEvent(
            name: "RabbitMQ node of consumer \(target.pid) stopped (whole node)", progress: progress, startedAt: begin,
            effectiveAt: clock.now, scope: .all)
        event.notes.append("node \(node), \(onNode.count) consumer(s) on it")
        try await eventually("the consumers of node \(node) on another node", timeout: .seconds(60)) {
            zip(onNode, before).allSatisfy { connectionCount(of: $0) > $1 || !$0.isRunning }
        }
        event.notes.append("they reconnected elsewhere \(seconds(clock.now - begin)) after the stop began")
        record(event)

        // 6. Start it again (a whole node: a new Erlang VM that rejoins the cluster), so the run ends on three nodes.
        progress = publishedCount.withLock { $0 } * 100 / total
        begin = clock.now
        try await LocalClusters.rabbitmq(["start-node", "\(node)"])
        record(
            ClusterChaosEvent(
                name: "RabbitMQ node \(node) started again (whole node)", progress: progress, startedAt: begin,
                effectiveAt: clock.now, scope: .all, isFailure: false))
    }

    /// The RabbitMQ node (1-3) a consumer connected to last, from its `AMQP connected` log lines.
    private func connectedNode(of consumer: ChildProcess) -> Int? {
        let lines = consumer.output.split(separator: "\n").filter { $0.contains("AMQP connected") }
        guard let last = lines.last else { return nil }
        return (1...3).first { last.contains("127.0.0.1:\(LocalClusters.amqpPort(ofNode: $0))") }
    }

    /// How many times a consumer has connected to the broker so far.
    private func connectionCount(of consumer: ChildProcess) -> Int {
        consumer.output.split(separator: "\n").filter { $0.contains("AMQP connected") }.count
    }
}
