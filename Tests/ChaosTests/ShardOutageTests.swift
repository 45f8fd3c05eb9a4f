import AMQP
import Foundation
import Klaviyo
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
/// (`CLUSTER_CHAOS_REDIS_BASE_PORT`), after the cluster chaos test.
@Suite(
    "Shard outage: one Redis Cluster primary down", .enabled(if: ClusterChaosEnvironment.enabled), .serialized,
    .timeLimit(.minutes(6))
)
struct ShardOutageTests {
    @Test func healthyShardsKeepFlowingAndTheDownedShardsCommandsSucceedOnceItIsBack() async throws {
        let tag = String(UUID().uuidString.lowercased().prefix(8))
        let prefix = "shard-outage-\(tag)"
        let logger = ClusterChaosEnvironment.logger
        let ports = LocalClusters.redisPorts
        // The cluster chaos test before this one SIGKILLs a primary and leaves it down (its replica serves its
        // slots): start every node again (it rejoins as a replica) so each answers and the slot map is whole.
        _ = try shell([
            ClusterChaosEnvironment.repositoryRoot.appendingPathComponent("scripts/dev/redis-cluster.sh").path,
            "start", "--base-port", String(ClusterChaosEnvironment.redisBasePort),
        ])
        // Accounts by the primary serving their slot; the victim is the first primary, its replicas must not
        // take over, and the other shards must keep serving while it is down.
        let ranges = try #require(await LocalClusters.slotRanges(), "the cluster's slot map")
        func primary(of account: String) -> Int? {
            let slot = RedisSlot.of(RedisKeys.connection(account))
            return ranges.first { $0.slots.contains(slot) }?.primary
        }
        var byPrimary: [Int: [String]] = [:]
        for index in 0..<200 {
            let account = "\(prefix)-a\(index)"
            if let port = primary(of: account) { byPrimary[port, default: []].append(account) }
        }
        let primaries = byPrimary.keys.sorted()
        try #require(primaries.count == 3, "three primaries serve the accounts: \(primaries)")
        let victim = primaries[0]
        let victimAccounts = Array(byPrimary[victim]!.prefix(4))
        let healthyAccounts = Array(byPrimary[primaries[1]]!.prefix(2) + byPrimary[primaries[2]]!.prefix(2))
        let replicas = await LocalClusters.replicas(of: victim)
        let rig = try await ChaosRig(
            prefix: prefix, servers: "RabbitMQ", amqpURL: ClusterChaosEnvironment.amqpURL,
            redisURL: ClusterChaosEnvironment.redisURL, simURL: ClusterChaosEnvironment.simURL, logger: logger,
            connectTimeout: .seconds(30),
            collectorQueue: .init(name: "\(prefix).collector", arguments: ["x-queue-type": .string("quorum")]))
        try await rig.run {
            defer {
                // Leave the cluster as the next run expects it, even when an expectation failed.
                for port in ports {
                    _ = try? shell([
                        "/usr/bin/redis-cli", "-p", String(port), "CONFIG", "SET",
                        "cluster-require-full-coverage", "yes",
                    ])
                    _ = try? shell([
                        "/usr/bin/redis-cli", "-p", String(port), "CONFIG", "SET",
                        "cluster-replica-no-failover", "no",
                    ])
                }
                _ = try? shell([
                    ClusterChaosEnvironment.repositoryRoot.appendingPathComponent("scripts/dev/redis-cluster.sh").path,
                    "start", "--base-port", String(ClusterChaosEnvironment.redisBasePort),
                ])
            }
            try await scenario()
        }

        func scenario() async throws {
            // A lost primary without a replica must not stop the other shards (the setting docs/operations.md asks
            // for), and the victim's replicas must not take over: the shard is really down.
            for port in ports {
                _ = try await LocalClusters.redisCLI(port, ["CONFIG", "SET", "cluster-require-full-coverage", "no"])
            }
            for replica in replicas {
                _ = try await LocalClusters.redisCLI(replica, ["CONFIG", "SET", "cluster-replica-no-failover", "yes"])
            }
            let klaviyo = KlaviyoClient(
                baseURL: ClusterChaosEnvironment.simURL, transport: rig.http, userAgent: "shard-outage-test",
                logger: logger)
            let connector = APIKeyConnector(
                klaviyo: klaviyo, store: CredentialStore(redis: rig.redis, keys: EncryptionKeyRing.development))
            var apiKeys: [String] = []
            for account in victimAccounts + healthyAccounts {
                let key = "pk_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
                apiKeys.append(key)
                try await rig.sim.call(
                    .POST, "/_sim/accounts",
                    ["account_id": .string(account), "api_key": .string(key), "name": "Shard Outage Store"])
                _ = try await connector.connect(accountID: account, apiKey: key)
            }
            let consumer = try ChildProcess.start(
                executable: ClusterChaosEnvironment.relayBinary, arguments: ["consume", "--dev"],
                variables: [
                    "RELAY_QUEUE_PREFIX": prefix, "RELAY_KLAVIYO_API_BASE_URL": ClusterChaosEnvironment.simURL,
                    "RELAY_AMQP_URL": ClusterChaosEnvironment.amqpURL,
                    "RELAY_REDIS_URL": ClusterChaosEnvironment.redisURL,
                    "RELAY_CONCURRENCY": "8", "RELAY_METRICS_PORT": "0", "RELAY_LOG_FORMAT": "json",
                    "RELAY_LOG_LEVEL": "info", "RELAY_SHUTDOWN_TIMEOUT": "5s", "RELAY_DELIVERY_LIMIT": "10",
                ], label: "shard-outage")
            rig.consumers.withLock { $0.append(consumer) }
            try await eventually("the consumer on every work queue", timeout: .seconds(60)) {
                for queue in RelayQueue.allCases
                where try await rig.amqp.messageCount(queue: rig.topology.queueName(queue)).consumers < 1 {
                    return false
                }
                return true
            }
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
            try shell([
                ClusterChaosEnvironment.repositoryRoot.appendingPathComponent("scripts/dev/redis-cluster.sh").path,
                "start", "--base-port", String(ClusterChaosEnvironment.redisBasePort),
            ])
            let backAt = ContinuousClock.now
            try await rig.awaitOutcomes(of: planned, events: "victim \(victim) down for \(seconds(downFor))")
            let recovered = ContinuousClock.now - backAt
            try await rig.awaitDrained()
            let state = rig.collected.state.withLock { $0 }
            rig.expectExactlyThePublishedIDs(state, planned)
            #expect(
                state.dead.isEmpty, "dead letters: \(state.dead.prefix(5).map { "\($0.key) \($0.value.map(\.code))" })")
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

    /// Runs a program (output to a file: the Redis daemons the cluster script starts must not hold a pipe).
    @discardableResult
    private func shell(_ command: [String]) throws -> Int32 {
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
