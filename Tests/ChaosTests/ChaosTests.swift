import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Redis
import Relay
import RelayTestSupport
import Synchronization
import Testing

/// What the durable collector queue received, by command id.
final class Collected: Sendable {
    struct State {
        var results: [String: [CommandResult]] = [:]
        var dead: [String: [(code: String, detail: String)]] = [:]
        var deliveries = 0
        var staleAcks = 0
        var profileIDs: [String: [String]] = [:]
        /// When the first result or dead letter of each command id arrived.
        var firstArrival: [String: ContinuousClock.Instant] = [:]
    }
    let state = Mutex(State())

    func record(_ delivery: AMQPDelivery, deadExchange: String) {
        let headers = delivery.properties.headers
        if delivery.exchange == deadExchange {
            let code =
                headers[DeadLetter.Header.errorCode]?.stringValue ?? (headers["x-death"] != nil ? "delivery_limit" : "")
            let detail = headers[DeadLetter.Header.errorDetail]?.stringValue ?? ""
            let id = headers[DeadLetter.Header.commandID]?.stringValue ?? delivery.properties.messageID ?? "?"
            let now = ContinuousClock.now
            state.withLock {
                $0.deliveries += 1
                $0.dead[id, default: []].append((code, detail))
                if $0.firstArrival[id] == nil { $0.firstArrival[id] = now }
            }
        } else {
            let result = (try? JSONValue.parse(delivery.body)).flatMap(CommandResult.init(json:))
            let now = ContinuousClock.now
            state.withLock {
                $0.deliveries += 1
                guard let result else {
                    $0.results["<unparsable>", default: []].append(
                        CommandResult(
                            commandID: "<unparsable>", type: "", accountID: "", outcome: .failed, attempts: 0,
                            klaviyo: nil, error: nil, completedAt: "", durationMS: 0, traceparent: nil))
                    return
                }
                if $0.results[result.commandID] == nil, result.type == "profile.upsert", result.outcome == .succeeded,
                    let id = result.klaviyo?.ids.first
                {
                    $0.profileIDs[result.accountID, default: []].append(id)
                }
                $0.results[result.commandID, default: []].append(result)
                if $0.firstArrival[result.commandID] == nil { $0.firstArrival[result.commandID] = now }
            }
        }
    }

    /// Distinct command ids with a result or a dead letter.
    var settled: Set<String> { state.withLock { Set($0.results.keys).union($0.dead.keys) } }
}

/// A command the test published, and what it should end as.
struct Planned: Sendable {
    var id: String
    var type: String
    var account: String
    /// The dead-letter code a malformed command must get; nil for well-formed ones.
    var malformedCode: String?
}

@Suite(
    "Chaos: faults, crashes and restarts", .enabled(if: ChaosEnvironment.enabled), .serialized, .timeLimit(.minutes(10))
)
struct ChaosTests {
    @Test func commandsSurviveFaultsCrashesAndRestarts() async throws {
        let started = ContinuousClock.now
        let run = String(UUID().uuidString.lowercased().prefix(8))
        let prefix = "chaos-\(run)"
        let rig = try await ChaosRig(
            prefix: prefix, servers: "RabbitMQ", amqpURL: ChaosEnvironment.amqpURL, redisURL: ChaosEnvironment.redisURL,
            simURL: ChaosEnvironment.simURL, logger: ChaosEnvironment.logger, connectTimeout: .seconds(20),
            collectorQueue: .init(name: "\(prefix).collector", durable: true, exclusive: false, autoDelete: false))
        let (topology, amqp, redis, http, sim) = (rig.topology, rig.amqp, rig.redis, rig.http, rig.sim)
        let (consumers, collected) = (rig.consumers, rig.collected)
        try await rig.run(scenario)

        func scenario() async throws {
            let consumerEnvironment = [
                "RELAY_QUEUE_PREFIX": prefix, "RELAY_KLAVIYO_API_BASE_URL": ChaosEnvironment.simURL,
                "RELAY_AMQP_URL": ChaosEnvironment.amqpURL, "RELAY_REDIS_URL": ChaosEnvironment.redisURL,
                "RELAY_CONCURRENCY": "32", "RELAY_METRICS_PORT": "0", "RELAY_LOG_FORMAT": "json",
                "RELAY_LOG_LEVEL": "info", "RELAY_SHUTDOWN_TIMEOUT": "5s", "RELAY_HTTP_TIMEOUT": "2s",
                "RELAY_MAX_ATTEMPTS": "8", "RELAY_RETRY_MAX_DELAY": "1s", "RELAY_RETRY_BASE_DELAY": "200ms",
                "RELAY_DELIVERY_LIMIT": "10",
            ]
            func startConsumer() throws {
                let child = try ChildProcess.start(
                    executable: ChaosEnvironment.relayBinary, arguments: ["consume", "--dev"],
                    variables: consumerEnvironment, label: "chaos")
                consumers.withLock { $0.append(child) }
            }
            func cli(_ arguments: [String]) async throws -> (status: Int32, output: String) {
                let child = try ChildProcess.start(
                    executable: ChaosEnvironment.relayBinary,
                    arguments: arguments + ["--dev", "--log-level", "warning"],
                    variables: [
                        "RELAY_QUEUE_PREFIX": prefix, "RELAY_AMQP_URL": ChaosEnvironment.amqpURL,
                        "RELAY_REDIS_URL": ChaosEnvironment.redisURL, "RELAY_DELIVERY_LIMIT": "10",
                    ], label: "chaos")
                let status = try await child.waitForExit(timeout: .seconds(120)).status
                return (status, child.output)
            }
            func publish(_ body: [UInt8], routingKey: String, id: String) async throws {
                try await rig.publish(body, routingKey: routingKey, id: id)
            }
            let envelope = ChaosCommandMix.envelope

            // 20 connected accounts, and one connected only before the replay (its commands: not_connected).
            let accounts = (0..<20).map { "\(prefix)-a\($0)" }
            let lateAccount = "\(prefix)-late"
            var apiKeys: [String: String] = [:]
            let klaviyo = KlaviyoClient(
                baseURL: ChaosEnvironment.simURL, transport: http, userAgent: "chaos-test",
                logger: ChaosEnvironment.logger)
            let connector = APIKeyConnector(
                klaviyo: klaviyo, store: CredentialStore(redis: redis, keys: EncryptionKeyRing.development))
            for account in accounts + [lateAccount] {
                let key = "pk_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
                apiKeys[account] = key
                try await sim.call(
                    .POST, "/_sim/accounts",
                    ["account_id": .string(account), "api_key": .string(key), "name": "Chaos Store"])
                if account != lateAccount { _ = try await connector.connect(accountID: account, apiKey: key) }
            }

            for _ in 0..<3 { try startConsumer() }
            try await eventually("3 consumers on every work queue", timeout: .seconds(30)) {
                for queue in RelayQueue.allCases {
                    if try await amqp.messageCount(queue: topology.queueName(queue)).consumers < 3 { return false }
                }
                return true
            }

            // Setup, faults off: one list per account and the account's flows (ids for later commands).
            var planned: [String: Planned] = [:]
            for account in accounts {
                let listID = "\(prefix)-setup-list-\(account)"
                let flowsID = "\(prefix)-setup-flows-\(account)"
                planned[listID] = Planned(id: listID, type: "list.create", account: account)
                planned[flowsID] = Planned(id: flowsID, type: "flow.list", account: account)
                try await publish(
                    envelope(listID, "list.create", account, ["name": .string("Chaos \(account)")]),
                    routingKey: "list.create",
                    id: listID)
                try await publish(envelope(flowsID, "flow.list", account, [:]), routingKey: "flow.list", id: flowsID)
            }
            try await eventually("setup results", timeout: .seconds(60)) {
                collected.settled.count >= planned.count
            }
            var lists: [String: String] = [:]
            var flows: [String: [String]] = [:]
            for account in accounts {
                let state = collected.state.withLock { $0 }
                let list = try #require(state.results["\(prefix)-setup-list-\(account)"]?.first?.klaviyo?.ids.first)
                lists[account] = list
                flows[account] = try #require(state.results["\(prefix)-setup-flows-\(account)"]?.first?.klaviyo?.ids)
                try #require(!(flows[account] ?? []).isEmpty)
            }

            let faults: JSONValue = [
                "error_rate": 0.05, "error_statuses": [503], "throttle_rate": 0.02, "retry_after_seconds": 1,
                "reset_rate": 0.01, "timeout_rate": 0.01, "timeout_ms": 3000,
            ]
            try await sim.call(.PUT, "/_sim/faults", faults)
            let statsBefore = try await sim.call(.GET, "/_sim/stats")

            // Chaos, triggered by publishing progress: SIGKILL + restart a consumer, restart RabbitMQ, Redis.
            let total = ChaosEnvironment.commandCount
            let publishedCount = Shared<Int>(0)
            let events = Shared<[String]>([])
            let chaos = Task {
                func when(_ fraction: Double) async throws {
                    try await eventually(
                        "\(Int(fraction * 100)) % published", timeout: .seconds(300), every: .milliseconds(100)
                    ) {
                        Double(publishedCount.withLock { $0 }) >= fraction * Double(total)
                    }
                }
                func services(_ command: String) async throws {
                    // services.sh starts daemons that inherit the descriptors Foundation uses to notice a child's
                    // exit, so the child's end is observed through the status file its shell writes last.
                    let script = ChaosEnvironment.repositoryRoot.appendingPathComponent("scripts/dev/services.sh").path
                    let base = FileManager.default.temporaryDirectory.appendingPathComponent(
                        "chaos-\(command)-\(UUID().uuidString)"
                    ).path
                    let started = ContinuousClock.now
                    let progress = publishedCount.withLock { $0 } * 100 / total
                    _ = try ChildProcess.start(
                        executable: "/bin/bash",
                        arguments: [
                            "-c",
                            "\"$0\" \"$1\" --force >\"$2.log\" 2>&1 </dev/null; echo $? >\"$2.status.tmp\"; mv \"$2.status.tmp\" \"$2.status\"",
                            script, command, base,
                        ],
                        clearRelayEnvironment: false, label: "chaos")
                    try await eventually(
                        "services.sh \(command) to finish", timeout: .seconds(180), every: .milliseconds(200)
                    ) {
                        FileManager.default.fileExists(atPath: base + ".status")
                    }
                    let status =
                        (try? String(contentsOfFile: base + ".status", encoding: .utf8))?
                        .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                    let output = (try? String(contentsOfFile: base + ".log", encoding: .utf8)) ?? ""
                    let line = output.split(separator: "\n").last.map(String.init) ?? ""
                    events.withLock {
                        $0.append(
                            "\(command) started at \(progress) % published: exit \(status) after \(seconds(ContinuousClock.now - started)) (\(line))"
                        )
                    }
                    #expect(status == "0", "services.sh \(command) failed: \(output)")
                }
                try await when(0.2)
                let victim = consumers.withLock { $0[0] }
                victim.kill9()
                _ = try await victim.waitForExit(timeout: .seconds(10))
                try startConsumer()
                events.withLock { $0.append("SIGKILLed consumer \(victim.pid) at 20 %, started a new one") }
                try await when(0.45)
                if ChaosEnvironment.restartRabbitMQ {
                    try await services("restart-rabbitmq")
                } else {
                    events.withLock { $0.append("RabbitMQ restart disabled (CHAOS_RESTARTS)") }
                }
                try await when(0.7)
                if ChaosEnvironment.restartRedis {
                    try await services("restart-redis")
                } else {
                    events.withLock { $0.append("Redis restart disabled (CHAOS_RESTARTS)") }
                }
            }

            var mix = ChaosCommandMix(accounts: accounts, lateAccount: lateAccount, lists: lists, flows: flows)
            var typeCounts: [String: Int] = [:]
            let pace = Duration.milliseconds(5)  // ≈ 200 commands/s, so the chaos lands mid-stream
            for index in 0..<total {
                let id = "\(prefix)-\(index)"
                let command = mix.next(index: index, id: id) { account in
                    collected.state.withLock { $0.profileIDs[account] ?? [] }
                }
                let plan = command.plan
                planned[id] = plan
                typeCounts[plan.type, default: 0] += 1
                try await publish(command.body, routingKey: command.routingKey, id: id)
                publishedCount.withLock { $0 += 1 }
                try await Task.sleep(for: pace)
            }
            let published = planned.count
            try await chaos.value

            try await rig.awaitOutcomes(of: planned, events: "\(events.withLock { $0 })")
            // Nothing left in flight: work and retry queues empty.
            try await rig.awaitDrained()
            let publishedAt = ContinuousClock.now
            let state = collected.state.withLock { $0 }
            let statsAfter = try await sim.call(.GET, "/_sim/stats")

            // Exactly the published ids, each with a result or a dead letter, never a success and a dead letter.
            rig.expectExactlyThePublishedIDs(state, planned)
            var both: [String] = []
            var wrongDead: [String] = []
            var retryable: [String: Int] = [:]
            for (id, plan) in planned {
                let dead = state.dead[id] ?? []
                let succeeded = (state.results[id] ?? []).contains { $0.outcome == .succeeded }
                if succeeded && !dead.isEmpty { both.append(id) }
                for letter in dead {
                    #expect(!letter.code.isEmpty, "dead letter \(id) without a reason")
                    if let expected = plan.malformedCode {
                        if letter.code != expected { wrongDead.append("\(id): \(letter.code) (expected \(expected))") }
                    } else if plan.account == lateAccount {
                        if letter.code != "not_connected" {
                            wrongDead.append("\(id): \(letter.code) (expected not_connected)")
                        }
                    } else if ["retries_exhausted", "delivery_limit"].contains(letter.code) {
                        retryable[letter.code, default: 0] += 1
                    } else {
                        wrongDead.append("\(id) \(plan.type): \(letter.code) \(letter.detail)")
                    }
                }
                if plan.malformedCode != nil || plan.account == lateAccount {
                    #expect(
                        dead.count >= 1 && state.results[id] == nil, "\(id) (\(plan.type)) must be dead-lettered only")
                }
            }
            #expect(both.isEmpty, "both a success result and a dead letter: \(both.prefix(5))")
            #expect(wrongDead.isEmpty, "dead letters that should not be: \(wrongDead.prefix(10))")
            let failedResults = state.results.values.compactMap(\.first).filter { $0.outcome == .failed }
            #expect(
                failedResults.isEmpty,
                "failed results: \(failedResults.prefix(3).map { "\($0.commandID) \($0.error?.detail ?? "")" })")

            // Klaviyo side effects applied once: one profile per identifier, one event per unique_id.
            let eventsTotal = try await rig.expectSideEffectsOnce(accounts: accounts, planned)

            // Replay: faults off, the late account connected; retryable dead letters become results.
            try await sim.call(.DELETE, "/_sim/faults")
            _ = try await connector.connect(accountID: lateAccount, apiKey: apiKeys[lateAccount]!)
            let replayable = ["not_connected", "retries_exhausted", "delivery_limit"]
            let toReplay = Set(
                planned.values.filter { plan in
                    plan.malformedCode == nil
                        && (state.dead[plan.id] ?? []).contains { replayable.contains($0.code) }
                }.map(\.id))
            var replayOutput: [String] = []
            for code in replayable {
                let replay = try await cli(["dlq", "replay", "--code", code])
                #expect(replay.status == 0, "dlq replay --code \(code): \(replay.output)")
                replayOutput.append(replay.output.split(separator: "\n").last.map(String.init) ?? "")
            }
            try await eventually(
                "\(toReplay.count) replayed commands to succeed", timeout: .seconds(120), every: .milliseconds(250)
            ) {
                collected.state.withLock { s in
                    toReplay.allSatisfy { id in (s.results[id] ?? []).contains { $0.outcome == .succeeded } }
                }
            }
            let deadLeft = Int(try await amqp.messageCount(queue: topology.deadQueue).messages)
            let malformed = planned.values.filter { $0.malformedCode != nil }.count
            // What is left in the dead-letter queue: the malformed ones, each with its reason, and nothing else.
            let listed = try await cli(["dlq", "list", "--json"])
            #expect(listed.status == 0, "dlq list: \(listed.output)")
            let left = listed.output.split(separator: "\n").compactMap { try? JSONValue.parse(Array($0.utf8)) }
                .filter { $0["code"] != nil }
            #expect(left.count == deadLeft, "dlq list shows \(left.count) of \(deadLeft) dead letters")
            for entry in left {
                let id = entry["command_id"]?.stringValue ?? entry["message_id"]?.stringValue ?? ""
                let expected = planned[id]?.malformedCode
                #expect(
                    expected != nil && entry["code"]?.stringValue == expected, "left in the dead-letter queue: \(entry)"
                )
            }
            #expect(
                Set(left.compactMap { $0["command_id"]?.stringValue ?? $0["message_id"]?.stringValue }).count
                    == malformed,
                "every malformed command is still dead-lettered once replays are done")

            // A second replay changes nothing: nothing replayed, no new results, no Klaviyo call.
            let deliveriesBefore = collected.state.withLock { $0.deliveries }
            let requestsBefore = try await sim.call(.GET, "/_sim/stats")["requests_total"]
            for code in replayable {
                let again = try await cli(["dlq", "replay", "--code", code])
                #expect(again.status == 0)
                #expect(again.output.contains("replayed 0, failed 0"), "second replay --code \(code): \(again.output)")
            }
            #expect(try await sim.call(.GET, "/_sim/stats")["requests_total"] == requestsBefore)
            #expect(collected.state.withLock { $0.deliveries } == deliveriesBefore)
            #expect(Int(try await amqp.messageCount(queue: topology.deadQueue).messages) == deadLeft)

            // Figures.
            let final = collected.state.withLock { $0 }
            func statusCount(_ stats: JSONValue, _ status: String) -> Int {
                if case .int(let n)? = stats["by_status"]?[status] { return Int(n) }
                return 0
            }
            var rows: [(String, String)] =
                [
                    ("commands published (distinct ids)", "\(published) (\(total) main + \(published - total) setup)"),
                    ("  of which malformed", "\(malformed)"),
                    (
                        "  of which for the not-yet-connected account",
                        "\(planned.values.filter { $0.account == lateAccount }.count)"
                    ),
                ] + state.outcomeRows(qualifier: ", before replay") + [
                    (
                        "held back by the relay's rate limiter (retry scheduled, no attempt used)",
                        "\(consumers.withLock { $0 }.map { $0.output.components(separatedBy: "held back by the rate limiter").count - 1 }.reduce(0, +))"
                    ),
                    (
                        "Klaviyo calls under faults",
                        "\(intValue(statsAfter["requests_total"]) - intValue(statsBefore["requests_total"]))"
                    ),
                    (
                        "  503 / 429 / 504 answered",
                        "\(statusCount(statsAfter, "503") - statusCount(statsBefore, "503")) / \(statusCount(statsAfter, "429") - statusCount(statsBefore, "429")) / \(statusCount(statsAfter, "504") - statusCount(statsBefore, "504"))"
                    ),
                    ("events recorded (one per event.track)", "\(eventsTotal)"),
                    ("replayed (first run)", replayOutput.joined(separator: "; ")),
                    ("replayed commands now succeeded", "\(toReplay.count)"),
                    ("second replay", "replayed 0 (no new results, no Klaviyo calls)"),
                    ("dead letters left (malformed)", "\(deadLeft)"),
                    ("results after replay (distinct ids)", "\(final.results.count)"),
                    ("time to settle everything", seconds(publishedAt - started)),
                    ("total time", seconds(ContinuousClock.now - started)),
                ]
            for event in events.withLock({ $0 }) { rows.append(("chaos", event)) }
            let typeLine = typeCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            rows.append(("mix", typeLine))
            printFigures("CHAOS TEST FIGURES", rows)
        }
    }
}

/// A value behind a lock that escaping closures can share.
final class Shared<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout sending Value) throws -> sending R) rethrows -> R {
        try storage.withLock(body)
    }
}
