import AMQP
import Foundation
import Klaviyo
import Logging
import Redis
import Relay
import RelayTestSupport
import Testing

/// One Redis Cluster primary down with no replica to take over (a shard outage): the accounts whose slots it serves
/// cannot be served, and the others must keep flowing. A `consume` process with 8 slots (2 per account at the
/// default fair share), 4 accounts on the downed primary and 4 on the others: while it is down, the commands of the
/// healthy accounts (with random ids, so their id claims land on any shard) all end as results; once it is back,
/// every command of the affected accounts ends as a result too (none lost, none dead-lettered). The consumer neither
/// crashes nor logs an API key. Runs in scripts/test/cluster-chaos.sh (`RELAY_CLUSTER_CHAOS=1`) on its Redis Cluster
/// (`CLUSTER_CHAOS_REDIS_BASE_PORT`), after the cluster chaos test. The second test does the same for batched
/// `event.track` and coalesced `profile.upsert` (``batchedEventsAndCoalescedUpsertsThroughAShardOutage()``); the third
/// checks the rate limiter's gate alone (``theRateLimiterGivesUpAtOnceOnADownedShard()``).
@Suite(
    "Shard outage: one Redis Cluster primary down", .enabled(if: ClusterChaosEnvironment.enabled), .serialized,
    .timeLimit(.minutes(6))
)
struct ShardOutageTests {
    @Test func healthyShardsKeepFlowingAndTheDownedShardsCommandsSucceedOnceItIsBack() async throws {
        // Accounts by the primary serving their slot; the victim is the first primary, its replicas must not
        // take over, and the other shards must keep serving while it is down.
        let (prefix, logger, layout, rig) = try await Self.prepare("shard-outage")
        let (victim, victimAccounts, healthyAccounts, replicas) = (
            layout.victim, layout.victimAccounts, layout.healthyAccounts, layout.replicas
        )
        try await Self.run(rig, isolating: replicas, scenario)

        func scenario() async throws {
            let apiKeys = try await Self.connect(victimAccounts + healthyAccounts, rig: rig, logger: logger)
            let consumer = try await Self.startConsumer(prefix: prefix, rig: rig)
            var planned: [String: Planned] = [:]
            func publish(_ account: String, count: Int) async throws -> [String] {
                var ids: [String] = []
                for _ in 0..<count {
                    let id = "\(prefix)-\(UUID().uuidString.lowercased())"
                    planned[id] = Planned(id: id, type: "flow.list", account: account)
                    try await rig.publish(
                        ChaosCommandMix.envelope(id, "flow.list", account, [:]), routingKey: "flow.list", id: id)
                    ids.append(id)
                }
                return ids
            }
            func succeeded(_ ids: [String]) -> Int {
                rig.collected.state.withLock { state in
                    ids.filter { state.results[$0]?.first?.outcome == .succeeded }.count
                }
            }

            // Every account works before the outage.
            var warmUp: [String] = []
            for account in victimAccounts + healthyAccounts { warmUp += try await publish(account, count: 1) }
            try await eventually("every account's first command succeeded", timeout: .seconds(60)) {
                succeeded(warmUp) == warmUp.count
            }

            // The victim shard goes down (its data saved, so it comes back whole); its replicas stay replicas.
            _ = try? await LocalClusters.redisCLI(victim, ["SHUTDOWN", "SAVE", "NOW"])
            try await eventually("the victim primary \(victim) down", timeout: .seconds(20)) {
                await LocalClusters.role(victim) == nil
            }
            let downAt = ContinuousClock.now
            var affected: [String] = []
            for account in victimAccounts { affected += try await publish(account, count: 12) }
            // Longer than the Redis client's retry through a failover (30 s): what the affected accounts' commands do
            // once waiting no longer helps.
            try await Task.sleep(for: .seconds(35))
            var healthy: [String] = []
            for account in healthyAccounts { healthy += try await publish(account, count: 5) }
            let healthyPublished = ContinuousClock.now
            let healthyFlowed = await waitUntil(timeout: .seconds(30), every: .milliseconds(100)) {
                succeeded(healthy) == healthy.count
            }
            #expect(
                healthyFlowed,
                "\(succeeded(healthy)) of \(healthy.count) commands of the healthy accounts succeeded within 30 s while one shard was down"
            )
            let healthyTook = ContinuousClock.now - healthyPublished
            // Nothing of the affected accounts ended while their shard was down (no result, no dead letter).
            let settledEarly = rig.collected.settled.intersection(affected)
            #expect(
                settledEarly.isEmpty,
                "commands of the downed shard's accounts settled while it was down: \(settledEarly.count)")
            let downFor = ContinuousClock.now - downAt

            // The shard comes back: every affected command ends as a result, none lost or dead-lettered.
            let (state, recovered) = try await Self.bringBack(victim, rig: rig, planned: planned, downFor: downFor)
            #expect(
                succeeded(affected) == affected.count,
                "\(succeeded(affected)) of \(affected.count) affected commands succeeded")
            #expect(consumer.isRunning, "the consumer is still running: \(consumer.exitDescription)")
            let output = consumer.output
            for key in apiKeys { #expect(!output.contains(key), "the consumer logged an API key") }
            printFigures(
                "SHARD OUTAGE FIGURES",
                [
                    ("victim primary", "\(victim) (replicas \(replicas) not failing over)"),
                    ("affected / healthy commands", "\(affected.count) / \(healthy.count)"),
                    ("healthy commands all succeeded after", seconds(healthyTook)),
                    ("shard down for", seconds(downFor)),
                    ("affected commands all settled after the shard was back", seconds(recovered)),
                    ("consumer log lines", "\(output.split(separator: "\n").count)"),
                ] + state.outcomeRows())
        }
    }

    /// The same outage for the two paths that share work between commands: `event.track` batched into
    /// `bulk_create_events` (``EventBatcher``) and coalescable `profile.upsert` coalesced into profile bulk import
    /// jobs (``ProfileCoalescer``, `RELAY_COALESCE=on`, threshold 0: every eligible upsert joins a batch). Both kinds
    /// stream to every account across the moment the primary dies (so batches are open, submitted or being polled
    /// when it does); 35 s later, a backlog per healthy account and more for the downed shard's accounts. While it is
    /// down, every healthy command (the stream's and the backlog's) succeeds, the backlog's within 30 s, batched and
    /// coalesced; nothing published for the downed shard's accounts after it went down settles. Once it is back,
    /// every command has exactly one success result, none dead-lettered, each profile and event recorded at
    /// Klaviyo once; no command circled through the retry tiers faster than the 5 s tier allows, the consumer
    /// still runs and logged no API key.
    @Test func batchedEventsAndCoalescedUpsertsThroughAShardOutage() async throws {
        let (prefix, logger, layout, rig) = try await Self.prepare("shard-batch")
        let (victim, victimAccounts, healthyAccounts, replicas) = (
            layout.victim, layout.victimAccounts, layout.healthyAccounts, layout.replicas
        )
        try await Self.run(rig, isolating: replicas, scenario)

        func scenario() async throws {
            let apiKeys = try await Self.connect(victimAccounts + healthyAccounts, rig: rig, logger: logger)
            let consumer = try await Self.startConsumer(
                prefix: prefix, rig: rig,
                extra: ["RELAY_COALESCE": "on", "RELAY_COALESCE_THRESHOLD": "0s", "RELAY_BATCH_WINDOW": "1s"])
            var planned: [String: Planned] = [:]
            var sequence = 0
            func publish(_ account: String, _ type: String) async throws -> String {
                let id = "\(prefix)-\(UUID().uuidString.lowercased())"
                sequence += 1
                let payload: JSONValue
                if type == "event.track" {
                    payload = [
                        "metric": "Shard Outage Event", "profile": ["email": .string("\(id)-e@example.com")],
                        "properties": ["n": .int(Int64(sequence))], "unique_id": .string("\(id)-u"),
                    ]
                } else {
                    payload = [
                        "profile": [
                            "email": .string("\(id)@example.com"), "first_name": "Shard",
                            "properties": ["n": .int(Int64(sequence))],
                        ]
                    ]
                }
                planned[id] = Planned(id: id, type: type, account: account)
                try await rig.publish(ChaosCommandMix.envelope(id, type, account, payload), routingKey: type, id: id)
                return id
            }
            func results(_ ids: some Collection<String>) -> [CommandResult] {
                rig.collected.state.withLock { state in ids.compactMap { state.results[$0]?.first } }
            }
            func succeeded(_ ids: some Collection<String>) -> Int {
                results(ids).filter { $0.outcome == .succeeded }.count
            }

            // Every account batches and coalesces before the outage.
            var warmUp: [String] = []
            for account in victimAccounts + healthyAccounts {
                warmUp += [try await publish(account, "event.track"), try await publish(account, "profile.upsert")]
            }
            try await eventually("every account's first event and upsert succeeded", timeout: .seconds(60)) {
                succeeded(warmUp) == warmUp.count
            }
            // What the healthy accounts' backlog takes with every shard up (the outage's must not take much longer).
            func healthyBacklog() async throws -> [String] {
                var ids: [String] = []
                for _ in 0..<20 {
                    for account in healthyAccounts {
                        ids += [
                            try await publish(account, "event.track"), try await publish(account, "profile.upsert"),
                        ]
                    }
                }
                return ids
            }
            let baseline = try await healthyBacklog()
            let baselinePublished = ContinuousClock.now
            try await eventually("the healthy accounts' backlog succeeded with every shard up", timeout: .seconds(30)) {
                succeeded(baseline) == baseline.count
            }
            let baselineTook = ContinuousClock.now - baselinePublished

            // A stream of events and upserts to every account across the moment the victim primary dies (its data
            // saved, so it comes back whole), so that the downed shard's accounts have batches open, submitted and
            // polled when it does. The pause between rounds paces the load; nothing waits on it.
            var stream: (victim: [String], healthy: [String]) = ([], [])
            let streamStart = ContinuousClock.now
            var downAt: ContinuousClock.Instant?
            var afterDown: [String] = []
            while ContinuousClock.now - streamStart < .seconds(6) {
                let round = ContinuousClock.now
                for account in victimAccounts {
                    for type in ["event.track", "profile.upsert"] {
                        let id = try await publish(account, type)
                        stream.victim.append(id)
                        if downAt != nil { afterDown.append(id) }
                    }
                }
                for account in healthyAccounts {
                    for type in ["event.track", "profile.upsert"] {
                        stream.healthy.append(try await publish(account, type))
                    }
                }
                if downAt == nil, ContinuousClock.now - streamStart >= .seconds(4) {
                    _ = try? await LocalClusters.redisCLI(victim, ["SHUTDOWN", "SAVE", "NOW"])
                    downAt = ContinuousClock.now
                }
                try await Task.sleep(until: round + .milliseconds(200))
            }
            let down = try #require(downAt)
            try await eventually("the victim primary \(victim) down", timeout: .seconds(20)) {
                await LocalClusters.role(victim) == nil
            }
            let beforeDown = stream.victim.count - afterDown.count

            // Longer than the Redis client's retry through a failover (30 s): then a backlog per healthy account
            // (enough for batched events and coalesced upserts), and more for the downed shard's accounts.
            try await Task.sleep(until: down + .seconds(35))
            let backlog = try await healthyBacklog()
            for _ in 0..<5 {
                for account in victimAccounts {
                    afterDown += [
                        try await publish(account, "event.track"), try await publish(account, "profile.upsert"),
                    ]
                }
            }
            let backlogPublished = ContinuousClock.now
            let healthy = stream.healthy + backlog
            let healthyFlowed = await waitUntil(timeout: .seconds(30), every: .milliseconds(100)) {
                succeeded(healthy) == healthy.count
            }
            let healthyTook = ContinuousClock.now - backlogPublished
            #expect(
                healthyTook <= baselineTook + .seconds(10),
                "the healthy accounts' backlog took \(seconds(healthyTook)) with a shard down, \(seconds(baselineTook)) without"
            )
            #expect(
                healthyFlowed,
                "\(succeeded(backlog)) of \(backlog.count) backlog commands and \(succeeded(stream.healthy)) of \(stream.healthy.count) streamed commands of the healthy accounts succeeded within 30 s while one shard was down"
            )
            let backlogResults = results(backlog)
            let batched = backlogResults.filter { result in
                if case .int(let size) = result.klaviyo?.data?["batched"] { return size > 1 }
                return false
            }.count
            let coalesced = backlogResults.filter { $0.klaviyo?.data?["coalesced"] == .bool(true) }.count
            #expect(batched > 0, "none of the healthy accounts' backlog events went in a bulk call during the outage")
            #expect(coalesced > 0, "none of the healthy accounts' backlog upserts was coalesced during the outage")
            // Nothing published for the downed shard's accounts after it went down ended while it was down.
            let settledEarly = rig.collected.settled.intersection(afterDown)
            #expect(
                settledEarly.isEmpty,
                "commands of the downed shard's accounts published during the outage settled: \(settledEarly.count)")
            let downFor = ContinuousClock.now - down

            // The shard comes back: every command ends as one success result, none lost or dead-lettered.
            let (state, recovered) = try await Self.bringBack(victim, rig: rig, planned: planned, downFor: downFor)
            let duplicates = state.results.filter { $0.value.count > 1 }
            #expect(duplicates.isEmpty, "commands with more than one result: \(duplicates.keys.sorted().prefix(5))")
            let affected = stream.victim + afterDown
            #expect(
                succeeded(affected) == affected.count,
                "\(succeeded(affected)) of \(affected.count) commands of the downed shard's accounts succeeded")
            let recorded = try await rig.expectSideEffectsOnce(accounts: victimAccounts + healthyAccounts, planned)
            #expect(consumer.isRunning, "the consumer is still running: \(consumer.exitDescription)")
            let output = consumer.output
            for key in apiKeys { #expect(!output.contains(key), "the consumer logged an API key") }
            // No spinning: a command parked while its shard is down comes back after the 5 s tier at the soonest.
            var parks: [String: Int] = [:]
            var messages: [String: Int] = [:]
            for line in output.split(separator: "\n") {
                guard let entry = try? JSONValue.parse(Array(line.utf8)), let message = entry["msg"]?.stringValue
                else { continue }
                if entry["level"]?.stringValue != "info" { messages[message, default: 0] += 1 }
                if message.contains("Redis Cluster shard is unavailable"), let id = entry["command_id"]?.stringValue {
                    parks[id, default: 0] += 1
                }
            }
            let mostParks = parks.values.max() ?? 0
            let allowedParks = Int(downFor / .seconds(5)) + 3
            #expect(mostParks <= allowedParks, "a command was parked \(mostParks) times in \(seconds(downFor))")
            printFigures(
                "SHARD OUTAGE (BATCHING, COALESCING) FIGURES",
                [
                    ("victim primary", "\(victim) (replicas \(replicas) not failing over)"),
                    (
                        "downed shard's commands (published before it went down / after)",
                        "\(beforeDown) / \(afterDown.count)"
                    ),
                    ("healthy commands (streamed / backlog)", "\(stream.healthy.count) / \(backlog.count)"),
                    ("healthy backlog: batched events / coalesced upserts", "\(batched) / \(coalesced)"),
                    ("healthy backlog all succeeded after (every shard up)", seconds(baselineTook)),
                    ("healthy commands all succeeded after the backlog was published", seconds(healthyTook)),
                    ("shard down for", seconds(downFor)),
                    ("every command settled after the shard was back", seconds(recovered)),
                    ("events recorded at Klaviyo", "\(recorded)"),
                    ("parks while the shard was down (commands / most of one)", "\(parks.count) / \(mostParks)"),
                    ("consumer log lines", "\(output.split(separator: "\n").count)"),
                ] + messages.sorted { $0.value > $1.value }.prefix(8).map { ("  \($0.key)", "\($0.value)") }
                    + state.outcomeRows())
        }
    }

    /// The two retry loops of their own on the per-command path give up at once on a shard that is down: the
    /// rate limiter's gate (every Klaviyo call of a command, and an event batch's shared call) and the coalescer's
    /// scripts used to retry a Redis Cluster slot whose primary was gone about 100 times with backoff (about two and
    /// a half minutes), holding the command's consumer slot (or the batch's deliveries) for nothing. Now the first
    /// failure after the client's retry timeout ends the call with `gateUnavailable`: the command is handed back
    /// and its next delivery is parked by the processor's first Redis step. An account on another shard is
    /// admitted meanwhile.
    @Test func theRateLimiterGivesUpAtOnceOnADownedShard() async throws {
        let prefix = "shard-gate-\(String(UUID().uuidString.lowercased().prefix(8)))"
        let logger = ClusterChaosEnvironment.logger
        let layout = try await Self.layout(prefix: prefix)
        try await Self.isolate(replicas: layout.replicas)
        defer { Self.restoreCluster() }
        var configuration = try RedisConfiguration(url: ClusterChaosEnvironment.redisURL)
        let retryTimeout = Duration.seconds(2)
        configuration.clusterRetryTimeout = retryTimeout
        let redis = RedisClient(configuration: configuration, logger: logger)
        defer { Task { await redis.shutdown() } }
        let operation = "test_operation"
        let limiter = RateLimiter(redis: redis, table: [operation: KlaviyoRateLimit(burst: 100, steady: 1000)])
        let victimAccount = try #require(layout.victimAccounts.first)
        let healthyAccount = try #require(layout.healthyAccounts.first)
        // Both shards serve before the outage (the client knows the slot map).
        for account in [victimAccount, healthyAccount] {
            try await limiter.gate(accountID: account, logger: logger).admit(
                operationID: operation, credential: .apiKey("pk_test"))
        }
        _ = try? await LocalClusters.redisCLI(layout.victim, ["SHUTDOWN", "SAVE", "NOW"])
        for round in 1...2 {
            let started = ContinuousClock.now
            await #expect {
                try await limiter.gate(accountID: victimAccount, logger: logger).admit(
                    operationID: operation, credential: .apiKey("pk_test"))
            } throws: { error in
                (error as? KlaviyoError)?.code == .gateUnavailable && !(error as! KlaviyoError).requestMayHaveBeenSent
            }
            // The first call waits out the client's retry timeout once; neither retries beyond it (the old loop
            // took minutes). The bound is far above a loaded machine's delays.
            let took = ContinuousClock.now - started
            #expect(took < retryTimeout + .seconds(10), "round \(round): the gate gave up after \(took)")
        }
        try await limiter.gate(accountID: healthyAccount, logger: logger).admit(
            operationID: operation, credential: .apiKey("pk_test"))
    }

    /// Runs a test's scenario on its rig with the victim's replicas isolated (``isolate(replicas:)``), and leaves the
    /// cluster as the next run expects it, even when an expectation failed.
    static func run(_ rig: ChaosRig, isolating replicas: [Int], _ scenario: () async throws -> Void) async throws {
        try await rig.run {
            defer { restoreCluster() }
            try await isolate(replicas: replicas)
            try await scenario()
        }
    }

    /// Starts the downed primary again and waits until every planned command has its outcome and the queues are
    /// drained; expects exactly the published ids and no dead letter. Returns what was collected and how long the
    /// outcomes took once the primary was back.
    static func bringBack(
        _ victim: Int, rig: ChaosRig, planned: [String: Planned], downFor: Duration
    ) async throws -> (state: Collected.State, recovered: Duration) {
        try run(startCluster)
        let backAt = ContinuousClock.now
        try await rig.awaitOutcomes(of: planned, events: "victim \(victim) down for \(seconds(downFor))")
        let recovered = ContinuousClock.now - backAt
        try await rig.awaitDrained()
        let state = rig.collected.state.withLock { $0 }
        rig.expectExactlyThePublishedIDs(state, planned)
        #expect(
            state.dead.isEmpty, "dead letters: \(state.dead.prefix(5).map { "\($0.key) \($0.value.map(\.code))" })")
        return (state, recovered)
    }

    /// A test's unique prefix (`<name>-<8 hex>`), logger, account layout (``layout(prefix:)``) and rig on the
    /// cluster chaos step's clusters (results collected in a quorum queue).
    static func prepare(
        _ name: String
    ) async throws -> (
        prefix: String, logger: Logger,
        layout: (victim: Int, victimAccounts: [String], healthyAccounts: [String], replicas: [Int]), rig: ChaosRig
    ) {
        let prefix = "\(name)-\(UUID().uuidString.lowercased().prefix(8))"
        let logger = ClusterChaosEnvironment.logger
        let layout = try await layout(prefix: prefix)
        let rig = try await ChaosRig(
            prefix: prefix, servers: "RabbitMQ", amqpURL: ClusterChaosEnvironment.amqpURL,
            redisURL: ClusterChaosEnvironment.redisURL, simURL: ClusterChaosEnvironment.simURL, logger: logger,
            connectTimeout: .seconds(30),
            collectorQueue: .init(name: "\(prefix).collector", arguments: ["x-queue-type": .string("quorum")]))
        return (prefix, logger, layout, rig)
    }

    /// Starts every node of the cluster chaos step's Redis Cluster (a stopped one rejoins).
    static let startCluster = [
        ClusterChaosEnvironment.repositoryRoot.appendingPathComponent("scripts/dev/redis-cluster.sh").path,
        "start", "--base-port", String(ClusterChaosEnvironment.redisBasePort),
    ]

    /// The accounts of a test by the primary serving their slot: 4 on the victim (the first primary), 2 on each
    /// of the others, and the victim's replicas.
    /// The cluster chaos test before these SIGKILLs a primary and leaves it down (its replica serves its slots), and
    /// a failed test may leave one down: every node is started first (a stopped one rejoins as a replica) so each
    /// answers and the slot map is whole.
    static func layout(
        prefix: String
    ) async throws -> (victim: Int, victimAccounts: [String], healthyAccounts: [String], replicas: [Int]) {
        try run(startCluster)
        let ranges = try #require(await LocalClusters.slotRanges(), "the cluster's slot map")
        var byPrimary: [Int: [String]] = [:]
        for index in 0..<200 {
            let account = "\(prefix)-a\(index)"
            let slot = RedisSlot.of(RedisKeys.connection(account))
            if let port = ranges.first(where: { $0.slots.contains(slot) })?.primary {
                byPrimary[port, default: []].append(account)
            }
        }
        let primaries = byPrimary.keys.sorted()
        try #require(primaries.count == 3, "three primaries serve the accounts: \(primaries)")
        let victim = primaries[0]
        return (
            victim, Array(byPrimary[victim]!.prefix(4)),
            Array(byPrimary[primaries[1]]!.prefix(2) + byPrimary[primaries[2]]!.prefix(2)),
            await LocalClusters.replicas(of: victim)
        )
    }

    /// A lost primary without a replica must not stop the other shards (the setting docs/operations.md asks for),
    /// and the victim's replicas must not take over: the shard is really down.
    static func isolate(replicas: [Int]) async throws {
        for port in LocalClusters.redisPorts {
            _ = try await LocalClusters.redisCLI(port, ["CONFIG", "SET", "cluster-require-full-coverage", "no"])
        }
        for replica in replicas {
            _ = try await LocalClusters.redisCLI(replica, ["CONFIG", "SET", "cluster-replica-no-failover", "yes"])
        }
    }

    /// Leaves the cluster as the next run expects it, even when an expectation failed.
    static func restoreCluster() {
        for port in LocalClusters.redisPorts {
            _ = try? Self.run([
                "/usr/bin/redis-cli", "-p", String(port), "CONFIG", "SET", "cluster-require-full-coverage", "yes",
            ])
            _ = try? Self.run([
                "/usr/bin/redis-cli", "-p", String(port), "CONFIG", "SET", "cluster-replica-no-failover", "no",
            ])
        }
        _ = try? Self.run(startCluster)
    }

    /// Creates each account at the simulator with an API key and connects it; returns the keys.
    static func connect(_ accounts: [String], rig: ChaosRig, logger: Logger) async throws -> [String] {
        let klaviyo = KlaviyoClient(
            baseURL: ClusterChaosEnvironment.simURL, transport: rig.http, userAgent: "shard-outage-test", logger: logger
        )
        let connector = APIKeyConnector(
            klaviyo: klaviyo, store: CredentialStore(redis: rig.redis, keys: EncryptionKeyRing.development))
        var apiKeys: [String] = []
        for account in accounts {
            let key = "pk_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            apiKeys.append(key)
            try await rig.sim.call(
                .POST, "/_sim/accounts",
                ["account_id": .string(account), "api_key": .string(key), "name": "Shard Outage Store"])
            _ = try await connector.connect(accountID: account, apiKey: key)
        }
        return apiKeys
    }

    /// Starts the `consume` process of a test (8 slots: 2 per account at the default fair share, `extra` on top)
    /// and waits until it consumes every work queue.
    static func startConsumer(prefix: String, rig: ChaosRig, extra: [String: String] = [:]) async throws -> ChildProcess
    {
        let consumer = try ChildProcess.start(
            executable: ClusterChaosEnvironment.relayBinary, arguments: ["consume", "--dev"],
            variables: [
                "RELAY_QUEUE_PREFIX": prefix, "RELAY_KLAVIYO_API_BASE_URL": ClusterChaosEnvironment.simURL,
                "RELAY_AMQP_URL": ClusterChaosEnvironment.amqpURL, "RELAY_REDIS_URL": ClusterChaosEnvironment.redisURL,
                "RELAY_CONCURRENCY": "8", "RELAY_METRICS_PORT": "0", "RELAY_LOG_FORMAT": "json",
                "RELAY_LOG_LEVEL": "info", "RELAY_SHUTDOWN_TIMEOUT": "5s", "RELAY_DELIVERY_LIMIT": "10",
            ].merging(extra) { $1 }, label: "shard-outage")
        rig.consumers.withLock { $0.append(consumer) }
        try await eventually("the consumer on every work queue", timeout: .seconds(60)) {
            for queue in RelayQueue.allCases
            where try await rig.amqp.messageCount(queue: rig.topology.queueName(queue)).consumers < 1 {
                return false
            }
            return true
        }
        return consumer
    }

    /// Runs a program (output to a file: the Redis daemons the cluster script starts must not hold a pipe).
    @discardableResult
    private func shell(_ command: [String]) throws -> Int32 { try Self.run(command) }

    @discardableResult
    private static func run(_ command: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TimedOut(what: "\(command.joined(separator: " ")) to succeed (exit \(process.terminationStatus))")
        }
        return process.terminationStatus
    }
}
