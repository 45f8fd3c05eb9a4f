import AMQP
import HTTPClient
import Logging
import Redis
import Relay
import RelayTestSupport
import Testing

/// What both chaos tests run on: an AMQP client, Redis and the simulator's admin API, the relay's topology under a
/// throwaway prefix, and a collector queue bound to the results and the dead letters, read into ``collected``
/// (acked after recording). ``consumers`` holds the consume processes a test starts; ``cleanUp()`` stops them and
/// removes everything the rig declared.
final class ChaosRig: Sendable {
    let prefix: String
    let topology: RelayTopology
    let amqp: AMQPClient
    let redis: RedisClient
    let http: HTTPClient
    let sim: SimAdmin
    let consumers = Shared<[ChildProcess]>([])
    let collectorQueue: String
    let collected: Collected
    private let connection: Task<Void, any Error>
    private let collector: Task<Void, any Error>

    /// Connects to `amqpURL` (described as `servers` in failures), Redis at `redisURL` and the simulator at
    /// `simURL`, clears the simulator's faults, declares the topology and the collector queue (`collectorQueue`,
    /// named `<prefix>.collector`) and starts reading it.
    init(
        prefix: String, servers: String, amqpURL: String, redisURL: String, simURL: String, logger: Logger,
        connectTimeout: Duration, collectorQueue: AMQPTopology.Queue,
        configure: (inout AMQPConfiguration) -> Void = { _ in }
    ) async throws {
        self.prefix = prefix
        let topology = RelayTopology(prefix: prefix, deliveryLimit: 10)
        self.topology = topology
        var configuration = try AMQPConfiguration(url: amqpURL)
        configuration.connectionName = "\(logger.label) \(prefix)"
        configure(&configuration)
        let amqp = AMQPClient(configuration: configuration, logger: logger)
        let connection = Task { try await amqp.run() }
        let redis = RedisClient(configuration: try RedisConfiguration(url: redisURL), logger: logger)
        let http = HTTPClient(logger: logger)
        func shutDown() async {
            await amqp.shutdown()
            _ = await connection.result
            await redis.shutdown()
            await http.shutdown()
        }
        do {
            try await amqp.waitUntilConnected(timeout: connectTimeout)
        } catch {
            Issue.record("\(servers) is not reachable at \(amqpURL): \(error)")
            await shutDown()
            throw error
        }
        do { try await redis.ping() } catch {
            Issue.record("Redis is not reachable at \(redisURL): \(error)")
            await shutDown()
            throw error
        }
        self.amqp = amqp
        self.connection = connection
        self.redis = redis
        self.http = http
        sim = SimAdmin(http: http, baseURL: simURL)
        self.collectorQueue = collectorQueue.name
        let collected = Collected()
        self.collected = collected
        let deadExchange = topology.deadExchange
        try await sim.call(.DELETE, "/_sim/faults")
        try await amqp.declare(topology.amqpTopology)
        var declaration = AMQPTopology()
        declaration.queues = [collectorQueue]
        declaration.bindings = [
            .init(queue: collectorQueue.name, exchange: topology.resultsExchange, routingKey: "#"),
            .init(queue: collectorQueue.name, exchange: topology.deadExchange, routingKey: "#"),
        ]
        try await amqp.declare(declaration)
        let stream = amqp.consume(queue: collectorQueue.name, prefetch: 500)
        collector = Task {
            for try await delivery in stream {
                collected.record(delivery, deadExchange: deadExchange)
                do { try await amqp.ack(delivery) } catch { collected.state.withLock { $0.staleAcks += 1 } }
            }
        }
    }

    /// Runs `scenario`, then ``cleanUp()``, also when it throws.
    func run(_ scenario: () async throws -> Void) async throws {
        do {
            try await scenario()
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()
    }

    /// Publishes a persistent command and retries until the broker confirms it, through restarts and node losses
    /// (a retried publish may duplicate; command ids dedupe), for up to two minutes.
    func publish(_ body: [UInt8], routingKey: String, id: String) async throws {
        var properties = AMQPProperties()
        properties.contentType = "application/json"
        properties.persistent = true
        properties.messageID = id
        let message = AMQPMessage(
            exchange: topology.commandsExchange, routingKey: routingKey, body: body, properties: properties)
        let deadline = ContinuousClock.now + .seconds(120)
        while true {
            do {
                try await amqp.publish(message)
                return
            } catch {
                guard ContinuousClock.now < deadline else { throw error }
                try? await amqp.waitUntilConnected(timeout: .seconds(5))
            }
        }
    }

    /// Waits (up to four minutes) until every planned command has a result or a dead letter. Otherwise records what
    /// is missing, by type, and where the broker holds messages (the starting point of any investigation), with
    /// `events` (what the test did so far), and rethrows.
    func awaitOutcomes(of planned: [String: Planned], events: @autoclosure () -> String) async throws {
        let published = planned.count
        do {
            try await eventually(
                "a result or dead letter for all \(published) commands", timeout: .seconds(240),
                every: .milliseconds(250)
            ) { self.collected.settled.count >= published }
        } catch {
            let missing = Set(planned.keys).subtracting(collected.settled)
            var missingTypes: [String: Int] = [:]
            for id in missing { missingTypes[planned[id]?.type ?? "?", default: 0] += 1 }
            var depths: [String] = []
            let queues =
                RelayQueue.allCases.map { topology.queueName($0) }
                + topology.retryTiers.map { topology.retryQueueName($0.name) } + [topology.deadQueue, collectorQueue]
            for queue in queues {
                if let count = try? await amqp.messageCount(queue: queue) {
                    depths.append("\(queue)=\(count.messages)/\(count.consumers)c")
                }
            }
            let running = consumers.withLock { $0.map { "\($0.pid):\($0.exitDescription)" } }
            Issue.record(
                """
                \(missing.count) of \(published) commands unsettled; by type: \(missingTypes.sorted { $0.key < $1.key });
                e.g. \(missing.sorted().prefix(10)); queues (messages/consumers): \(depths.joined(separator: " "));
                consumers: \(running); events: \(events())
                """)
            throw error
        }
    }

    /// Waits (up to a minute) until nothing is left in flight: the work queues and the retry tiers are empty.
    func awaitDrained() async throws {
        try await eventually("work and retry queues drained", timeout: .seconds(60), every: .milliseconds(250)) {
            for queue in RelayQueue.allCases
            where try await self.amqp.messageCount(queue: self.topology.queueName(queue)).messages > 0 {
                return false
            }
            for tier in self.topology.retryTiers
            where try await self.amqp.messageCount(queue: self.topology.retryQueueName(tier.name)).messages > 0 {
                return false
            }
            return true
        }
    }

    /// Expects exactly the published ids among the outcomes: none missing, none unknown.
    func expectExactlyThePublishedIDs(_ state: Collected.State, _ planned: [String: Planned]) {
        let settled = Set(state.results.keys).union(state.dead.keys)
        #expect(
            settled == Set(planned.keys),
            "unexpected ids: \(settled.subtracting(planned.keys).prefix(5)), missing: \(Set(planned.keys).subtracting(settled).prefix(5))"
        )
    }

    /// Expects Klaviyo's side effects applied once per account: one profile per upserted email (`<id>@example.com`)
    /// and one recorded event per `event.track` (unique id `<id>-u`), none twice. Returns how many events of the
    /// planned commands were recorded.
    func expectSideEffectsOnce(accounts: [String], _ planned: [String: Planned]) async throws -> Int {
        var eventsTotal = 0
        for account in accounts {
            let profiles = try await sim.call(.GET, "/_sim/accounts/\(account)/profiles")["profiles"]?.arrayValue ?? []
            var perEmail: [String: Int] = [:]
            for email in profiles.compactMap({ $0["email"]?.stringValue?.lowercased() }) {
                perEmail[email, default: 0] += 1
            }
            #expect(perEmail.values.allSatisfy { $0 == 1 }, "\(account): a profile per email twice")
            for plan in planned.values where plan.account == account && plan.type == "profile.upsert" {
                let count = perEmail["\(plan.id)@example.com".lowercased()] ?? 0
                #expect(count == 1, "\(account): \(count) profiles for the email of \(plan.id)")
            }
            let events = try await sim.call(.GET, "/_sim/accounts/\(account)/events")["events"]?.arrayValue ?? []
            let keys = events.map { "\($0["profile_id"]?.stringValue ?? "")|\($0["unique_id"]?.stringValue ?? "")" }
            #expect(Set(keys).count == keys.count, "\(account): an event recorded twice")
            let tracked = Set(
                planned.values.filter { $0.account == account && $0.type == "event.track" }.map { "\($0.id)-u" })
            let recorded = events.compactMap { $0["unique_id"]?.stringValue }.filter { tracked.contains($0) }
            #expect(
                recorded.count == tracked.count,
                "\(account): \(recorded.count) events recorded for \(tracked.count) event.track commands")
            eventsTotal += recorded.count
        }
        return eventsTotal
    }

    /// Clears the simulator's faults, stops the consumers and the collector, removes the topology and the collector
    /// queue, and shuts the clients down.
    func cleanUp() async {
        _ = try? await sim.call(.DELETE, "/_sim/faults")
        for consumer in consumers.withLock({ $0 }) { await consumer.stop() }
        collector.cancel()
        try? await amqp.deleteQueue(collectorQueue)
        await topology.remove(from: amqp)
        await amqp.shutdown()
        _ = await connection.result
        await redis.shutdown()
        await http.shutdown()
    }
}

extension Collected.State {
    /// The outcome figures both chaos tests print: distinct results and dead letters (`qualifier` appended to their
    /// names), the dead letters by code, duplicate deliveries, collector acks refused after a reconnect, retries.
    func outcomeRows(qualifier: String = "") -> [(String, String)] {
        var deadByCode: [String: Int] = [:]
        for letters in dead.values { if let code = letters.first?.code { deadByCode[code, default: 0] += 1 } }
        let duplicateResults = results.values.map { $0.count - 1 }.reduce(0, +)
        let duplicateDead = dead.values.map { $0.count - 1 }.reduce(0, +)
        let retries = results.values.compactMap(\.first).map { max(0, $0.attempts - 1) }.reduce(0, +)
        var rows = [
            ("results (distinct ids\(qualifier))", "\(results.count)"),
            ("dead letters (distinct ids\(qualifier))", "\(dead.count)"),
        ]
        for (code, count) in deadByCode.sorted(by: { $0.key < $1.key }) { rows.append(("  \(code)", "\(count)")) }
        rows += [
            ("duplicate deliveries (results / dead letters)", "\(duplicateResults) / \(duplicateDead)"),
            ("collector acks refused after reconnect (redelivered)", "\(staleAcks)"),
            ("retries (sum of attempts − 1 over results)", "\(retries)"),
        ]
        return rows
    }
}

/// Prints a figures table (Markdown) under `title`.
func printFigures(_ title: String, _ rows: [(String, String)]) {
    var table = "| figure | value |\n|---|---|\n"
    for (name, value) in rows { table += "| \(name) | \(value) |\n" }
    print("\n\(title)\n\(table)")
}
