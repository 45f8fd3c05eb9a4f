import AMQP
import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Synchronization
import Testing

/// One run of `klaviyo-relay <arguments>` against a stack's prefix, its output captured.
struct RelayRun {
    var status: Int32
    var stdout: String
    var stderr: String

    /// The stdout lines parsed as JSON (NDJSON output).
    var jsonLines: [JSONValue] {
        stdout.split(separator: "\n").compactMap { try? JSONValue.parse(Array($0.utf8)) }
    }
}

/// A child process's exit status, once it exited.
final class ExitStatus: Sendable {
    let value = Mutex<Int32?>(nil)
}

extension RelayStack {
    /// Runs a one-shot `klaviyo-relay` subcommand for this prefix (with `variables` on top) and waits for it to exit.
    func run(
        _ arguments: [String], stdin: String? = nil, variables: [String: String] = [:], timeout: Duration = .seconds(60)
    ) async throws -> RelayRun {
        let directory = FileManager.default.temporaryDirectory
        let out = directory.appendingPathComponent("relay-cli-\(UUID().uuidString).out")
        let err = directory.appendingPathComponent("relay-cli-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: IntegrationEnvironment.relayBinary)
        process.arguments = arguments + ["--dev", "--log-level", "warning"]
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where key.hasPrefix("RELAY_") { environment[key] = nil }
        environment.merge([
            "RELAY_QUEUE_PREFIX": prefix, "RELAY_AMQP_URL": IntegrationEnvironment.amqpURL,
            "RELAY_REDIS_URL": IntegrationEnvironment.redisURL, "RELAY_DELIVERY_LIMIT": String(topology.deliveryLimit),
        ]) { _, new in new }
        environment.merge(variables) { _, new in new }
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        let input = Pipe()
        process.standardInput = input
        let finished = ExitStatus()
        process.terminationHandler = { ended in finished.value.withLock { $0 = ended.terminationStatus } }
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        try await eventually("klaviyo-relay \(arguments.joined(separator: " ")) to exit", timeout: timeout) {
            finished.value.withLock { $0 != nil }
        }
        return RelayRun(
            status: finished.value.withLock { $0! }, stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// Ready messages in the dead-letter queue (requeued ones count again once the broker has them back).
    func deadQueueCount() async throws -> Int {
        Int(try await amqp.messageCount(queue: topology.deadQueue).messages)
    }

    /// Waits until the dead-letter queue holds exactly `count` ready messages.
    func waitForDeadQueue(_ count: Int) async throws {
        try await eventually("\(count) message(s) in the dead-letter queue", timeout: .seconds(30)) {
            try await self.deadQueueCount() == count
        }
    }

    func setFaults(_ faults: JSONValue) async throws {
        try await simAdmin(.PUT, "/_sim/faults", faults)
    }

    func clearFaults() async throws {
        try await simAdmin(.DELETE, "/_sim/faults")
    }

    /// Statuses of the recorded profile-import calls of an account (the connection check is left out).
    func klaviyoStatuses(account: String) async throws -> [Int] {
        try await klaviyoRequests(account: account).filter { $0["path"]?.stringValue == "/api/profile-import" }
            .compactMap {
                if case .int(let status)? = $0["status"] { return Int(status) }
                return nil
            }
    }

    /// Everything that arrived through the dead exchange (ours and the broker's).
    var allDeadLetters: [AMQPDelivery] { deliveries.filter { $0.exchange == topology.deadExchange } }
}

/// The consumer's "retry scheduled" log lines (JSON).
func scheduledRetries(_ log: String) -> [JSONValue] {
    log.split(separator: "\n").compactMap { try? JSONValue.parse(Array($0.utf8)) }
        .filter { $0["msg"]?.stringValue == "klaviyo call failed; retry scheduled" }
}

func upsert(_ stack: RelayStack, _ name: String, account: String) -> (id: String, email: String, body: [UInt8]) {
    let id = stack.id(name)
    let email = "\(id)@example.com".lowercased()
    return (
        id, email,
        commandBody(id: id, type: "profile.upsert", accountID: account, payload: ["profile": ["email": .string(email)]])
    )
}

/// Transient Klaviyo failures go through the TTL retry tiers (never a sleep on the held message) and end in a
/// result, or in `retries_exhausted`; a crash loop ends in `delivery_limit`. Faults are injected into the shared
/// simulator, scoped to each test's account, one test at a time.
@Suite("Retries through the TTL tiers (fault injection)", .serialized, .timeLimit(.minutes(5)))
struct RetryTierTests {
    /// Short backoff so every retry lands in the 1 s tier; a generous attempt budget.
    let fastRetries = ["RELAY_RETRY_MAX_DELAY": "1s", "RELAY_RETRY_BASE_DELAY": "200ms", "RELAY_MAX_ATTEMPTS": "30"]

    @Test func unavailableIsRetriedThroughTheTierAndSucceedsOnceFaultsClear() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            try await stack.setFaults(["error_rate": 1.0, "error_statuses": [503], "account_id": .string(account)])
            let consumer = try stack.startConsumer(environment: fastRetries)
            try await stack.waitForConsumers(1)
            let command = upsert(stack, "retry-503", account: account)
            try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)

            // Two failed calls prove the command came back from the tier (the first delivery was acked).
            try await eventually("two 503s for the account", timeout: .seconds(30)) {
                try await stack.klaviyoStatuses(account: account).filter { $0 == 503 }.count >= 2
            }
            #expect(stack.deliveries.isEmpty, "no result and no dead letter while Klaviyo fails")
            try await stack.clearFaults()
            try await stack.waitForCollected(1)
            let result = try #require(stack.results(for: command.id).first)
            #expect(result.outcome == .succeeded)
            #expect(result.attempts >= 3, "two failed attempts and the successful one")
            #expect(stack.deadLetters.isEmpty)
            let statuses = try await stack.klaviyoStatuses(account: account)
            #expect(statuses.filter { $0 == 503 }.count == result.attempts - 1)
            #expect(statuses.filter { (200..<300).contains($0) }.count == 1)
            let scheduled = scheduledRetries(consumer.log)
            #expect(scheduled.count == result.attempts - 1)
            #expect(scheduled.allSatisfy { $0["retry_tier"]?.stringValue == "1s" })
            #expect(try await stack.amqp.messageCount(queue: stack.topology.retryQueueName("1s")).messages == 0)
        }
    }

    @Test func throttledWithRetryAfterIsRetriedNotDeadLettered() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            try await stack.setFaults(["throttle_rate": 1.0, "retry_after_seconds": 1, "account_id": .string(account)])
            let consumer = try stack.startConsumer(environment: fastRetries)
            try await stack.waitForConsumers(1)
            let command = upsert(stack, "retry-429", account: account)
            try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            try await eventually("a 429 for the account", timeout: .seconds(30)) {
                try await stack.klaviyoStatuses(account: account).contains(429)
            }
            try await stack.clearFaults()
            try await stack.waitForCollected(1)
            let result = try #require(stack.results(for: command.id).first)
            #expect(result.outcome == .succeeded)
            #expect(result.attempts >= 2)
            #expect(stack.deadLetters.isEmpty)
            // The scheduled delay honoured Retry-After (1 s) and the tier is at least that long.
            let scheduled = scheduledRetries(consumer.log)
            #expect(!scheduled.isEmpty)
            for line in scheduled {
                let wanted = Int(line["retry_wanted_ms"]?.stringValue ?? "") ?? -1
                #expect(wanted >= 1000, "wanted \(wanted) ms despite Retry-After: 1")
                #expect(["5s", "1s"].contains(line["retry_tier"]?.stringValue ?? ""))
                if wanted > 1000 { #expect(line["retry_tier"]?.stringValue == "5s") }
            }
        }
    }

    /// The publisher's `expiration` would let the dead letter expire in the dead queue (which dead-letters
    /// nowhere) and its `user_id` would make the broker refuse the relay's publish: neither travels.
    @Test func aDeadLetterDropsThePublishersExpirationAndUserID() async throws {
        try await withRelayStack { stack in
            _ = try stack.startConsumer()
            try await stack.waitForConsumers(1)
            var properties = AMQPProperties(contentType: "application/json", persistent: true)
            properties.messageID = stack.id("expiring")
            properties.expiration = "600000"
            properties.userID = try AMQPConfiguration(url: IntegrationEnvironment.amqpURL).username
            try await stack.amqp.publish(
                AMQPMessage(
                    exchange: stack.topology.commandsExchange, routingKey: "profile.upsert",
                    body: Array("not json".utf8), properties: properties))
            try await stack.waitForCollected(1)
            let dead = try #require(stack.deadLetters.first)
            #expect(dead.properties.headers[DeadLetter.Header.errorCode] == .string("not_json"))
            #expect(dead.properties.messageID == stack.id("expiring"))
            #expect(dead.properties.expiration == nil)
            #expect(dead.properties.userID == nil)
        }
    }

    /// A command dead-lettered, then delivered again as a copy (its ack lost: a copy the relay sealed, as a
    /// retry copy is, stands in for the broker's redelivery) ends as a duplicate, although it would now succeed:
    /// one command, one outcome. Published fresh (a replay), it runs, and its own retry copies (sealed like the
    /// copy above) run too: the replay clears the mark. (Before, the replay's first retry copy was acked as a
    /// copy of the dead letter: the command ended with neither a result nor a dead letter.)
    @Test func aCopyOfADeadLetteredCommandIsADuplicateAndAReplayRuns() async throws {
        try await withRelayStack { stack in
            // No credential cache: the replay must see the connection made after the first delivery.
            var environment = fastRetries
            environment["RELAY_CREDENTIAL_CACHE_TTL"] = "0s"
            let consumer = try stack.startConsumer(environment: environment)
            try await stack.waitForConsumers(1)
            let account = uniqueName("acct", length: 10)
            let command = upsert(stack, "dead-then-copy", account: account)
            try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            try await stack.waitForCollected(1)
            #expect(
                stack.deadLetters.first?.properties.headers[DeadLetter.Header.errorCode] == .string("not_connected"))
            _ = try await stack.connectAccount(account)

            let original = AMQPDelivery.unpacked(
                body: command.body, properties: AMQPProperties(contentType: "application/json", messageID: command.id),
                exchange: stack.topology.commandsExchange, routingKey: "profile.upsert", redelivered: false,
                queue: stack.topology.queueName(.profiles), consumerTag: "", settlement: AMQPLocalSettlement())
            try await stack.amqp.publish(
                DelayedRetry.message(
                    for: original, topology: stack.topology, tier: stack.topology.retryTiers[0],
                    routingKey: "profile.upsert", attempts: 1, firstFailedAt: Timestamp.now(), lastError: "test",
                    seal: HeaderSeal(keyRing: stack.keys)))
            try await eventually("the copy to be acked as a duplicate", timeout: .seconds(30)) {
                consumer.log.contains("command already dead-lettered")
            }
            #expect(stack.deliveries.count == 1, "the copy ended without a result or a second dead letter")

            // The replay's first call fails (503): it goes on through a sealed retry copy.
            try await stack.setFaults(["error_rate": 1.0, "error_statuses": [503], "account_id": .string(account)])
            try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            try await eventually("the replay's first call to fail", timeout: .seconds(30)) {
                try await stack.klaviyoStatuses(account: account).contains(503)
            }
            try await stack.clearFaults()
            try await stack.waitForCollected(2)
            #expect(stack.results(for: command.id).map(\.outcome) == [.succeeded])
            #expect(
                stack.deadLetters.count == 1,
                "\(stack.deadLetters.map { $0.properties.headers[DeadLetter.Header.errorDetail] ?? .void })")
        }
    }

    /// A replay's delivery may come back as a copy before any delivery of it was admitted (handed back during
    /// a Redis outage, or its consumer died): it carries the replay's token, so it is not taken for a copy of
    /// the dead letter, and runs. (Before replays carried a token, it was acked as one: lost.)
    @Test func aCopyOfAReplayRunsEvenBeforeTheReplayWasAdmitted() async throws {
        try await withRelayStack { stack in
            _ = try stack.startConsumer(environment: ["RELAY_CREDENTIAL_CACHE_TTL": "0s"])
            try await stack.waitForConsumers(1)
            let account = uniqueName("acct", length: 10)
            let command = upsert(stack, "replay-copy", account: account)
            try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            try await stack.waitForCollected(1)
            let dead = try #require(stack.deadLetters.first)
            #expect(dead.properties.headers[DeadLetter.Header.errorCode] == .string("not_connected"))
            _ = try await stack.connectAccount(account)

            // What `dlq replay` publishes, as the relay would park it again (sealed) after handing it back.
            let replay = DeadLetterQueue.replayMessage(for: dead, topology: stack.topology)
            let replayed = AMQPDelivery.unpacked(
                body: replay.body, properties: replay.properties, exchange: replay.exchange,
                routingKey: replay.routingKey, redelivered: false, queue: stack.topology.queueName(.profiles),
                consumerTag: "", settlement: AMQPLocalSettlement())
            try await stack.amqp.publish(
                DelayedRetry.message(
                    for: replayed, topology: stack.topology, tier: stack.topology.retryTiers[0],
                    routingKey: "profile.upsert", attempts: 1, firstFailedAt: Timestamp.now(), lastError: "test",
                    seal: HeaderSeal(keyRing: stack.keys)))
            try await stack.waitForCollected(2)
            #expect(stack.results(for: command.id).map(\.outcome) == [.succeeded])
            #expect(stack.deadLetters.count == 1)
        }
    }

    @Test func maxAttemptsEndInRetriesExhausted() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            try await stack.setFaults(["error_rate": 1.0, "error_statuses": [503], "account_id": .string(account)])
            var environment = fastRetries
            environment["RELAY_MAX_ATTEMPTS"] = "3"
            _ = try stack.startConsumer(environment: environment)
            try await stack.waitForConsumers(1)
            let command = upsert(stack, "exhausted", account: account)
            try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            try await stack.waitForCollected(1)
            try await stack.clearFaults()
            let dead = try #require(stack.deadLetters.first)
            let headers = dead.properties.headers
            #expect(headers["x-relay-error-code"] == .string("retries_exhausted"))
            #expect(headers["x-relay-attempts"] == .int(3))
            #expect(headers["x-relay-error-detail"]?.stringValue?.contains("3 attempts") == true)
            #expect(headers["x-relay-error-detail"]?.stringValue?.contains("503") == true)
            #expect(headers["x-relay-last-error"]?.stringValue?.contains("503") == true)
            #expect(headers["x-original-routing-key"] == .string("profile.upsert"))
            #expect(headers["x-relay-first-failed-at"] != nil)
            #expect(dead.body == command.body, "the original body, byte for byte")
            #expect(dead.properties.messageID == command.id)
            #expect(stack.results(for: command.id).isEmpty)
            #expect(try await stack.klaviyoStatuses(account: account).filter { $0 == 503 }.count == 3)
        }
    }

    @Test func maxRetryAgeEndsInRetriesExhausted() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            try await stack.setFaults(["error_rate": 1.0, "error_statuses": [503], "account_id": .string(account)])
            var environment = fastRetries
            environment["RELAY_MAX_RETRY_AGE"] = "1s"
            _ = try stack.startConsumer(environment: environment)
            try await stack.waitForConsumers(1)
            let command = upsert(stack, "too-old", account: account)
            try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            try await stack.waitForCollected(1)
            try await stack.clearFaults()
            let dead = try #require(stack.deadLetters.first)
            #expect(dead.properties.headers["x-relay-error-code"] == .string("retries_exhausted"))
            #expect(
                dead.properties.headers["x-relay-error-detail"]?.stringValue?.contains("maximum age 1000ms") == true)
            // The first failure went to the 1 s tier; the attempt after it is past the age: 2 attempts, far
            // below RELAY_MAX_ATTEMPTS (30).
            #expect(dead.properties.headers["x-relay-attempts"] == .int(2))
            #expect(try await stack.klaviyoStatuses(account: account).filter { $0 == 503 }.count == 2)
        }
    }

    /// A command that crashes the consumer every time is dead-lettered by the broker (`x-delivery-limit`)
    /// instead of looping, and `dlq list/show` report it as `delivery_limit`.
    @Test func crashLoopEndsAsDeliveryLimitDeadLetter() async throws {
        try await withRelayStack(deliveryLimit: 2) { stack in
            let (account, _) = try await stack.connectAccount()
            let command = upsert(stack, "crash-loop", account: account)
            let crash = [
                "RELAY_ENABLE_FAULT_INJECTION": "1", "RELAY_FAULT_CRASH_AT": "after_klaviyo_call",
                "RELAY_FAULT_CRASH_COMMAND_ID": command.id, "RELAY_DELIVERY_LIMIT": "2",
            ]
            try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            var crashes = 0
            for _ in 1...6 where stack.allDeadLetters.isEmpty {
                let consumer = try stack.startConsumer(environment: crash)
                try await eventually("a crash or the dead letter", timeout: .seconds(60)) {
                    !consumer.isRunning || !stack.allDeadLetters.isEmpty
                }
                if !consumer.isRunning {
                    let ending = try await consumer.waitForExit()
                    #expect(ending.reason == .uncaughtSignal && ending.status == SIGKILL)
                    crashes += 1
                } else {
                    // The dead letter may reach the collector before the crash is reaped: give it a moment.
                    let deadline = ContinuousClock.now + .seconds(5)
                    while consumer.isRunning && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(25))
                    }
                    if let ending = consumer.exited.withLock({ $0 }), ending.status == SIGKILL {
                        crashes += 1
                    } else {
                        await consumer.stop()
                    }
                }
            }
            try await eventually("the delivery_limit dead letter", timeout: .seconds(30)) {
                !stack.allDeadLetters.isEmpty
            }
            // x-delivery-limit 2: at most three deliveries, then the broker dead-letters (not a loop). A delivery
            // handed back when a consumer's connection closed also counts, so two crashes can be enough.
            #expect((2...3).contains(crashes), "bounded by the delivery limit; saw \(crashes)")
            let dead = try #require(stack.allDeadLetters.first)
            #expect(dead.body == command.body)
            #expect(dead.properties.headers["x-relay-error-code"] == nil, "made by the broker, not by us")
            #expect(DeadLetterSummary(dead, seal: HeaderSeal(keyRing: stack.keys)).code == "delivery_limit")
            #expect(stack.results(for: command.id).isEmpty)
            #expect(try await stack.amqp.messageCount(queue: stack.topology.queueName(.profiles)).messages == 0)

            let listed = try await stack.run(["dlq", "list", "--json", "--code", "delivery_limit"])
            #expect(listed.status == 0, "\(listed.stderr)")
            #expect(listed.jsonLines.count == 1)
            #expect(listed.jsonLines.first?["command_id"]?.stringValue == command.id)
            #expect(listed.jsonLines.first?["broker_made"] == .bool(true))
            let shown = try await stack.run(["dlq", "show", command.id])
            #expect(shown.status == 0, "\(shown.stderr)")
            #expect(shown.stdout.contains("code:         delivery_limit (made by the broker)"))
            #expect(shown.stdout.contains("x-death"))
            try await stack.waitForDeadQueue(1)
        }
    }
}

/// `klaviyo-relay dlq` against real dead letters: filters, dry runs, replay only after the broker confirmed,
/// idempotent replays, purge of exactly the filtered ones.
@Suite("klaviyo-relay dlq", .timeLimit(.minutes(4)))
struct DLQToolTests {
    @Test func listFiltersDryRunPurgeAndReplayOfNotConnected() async throws {
        try await withRelayStack { stack in
            let account = "acct-\(UUID().uuidString.lowercased().prefix(10))"
            _ = try stack.startConsumer(environment: ["RELAY_CREDENTIAL_CACHE_TTL": "100ms"])
            try await stack.waitForConsumers(1)
            let first = upsert(stack, "nc-1", account: account)
            let second = upsert(stack, "nc-2", account: account)
            let invalidID = stack.id("invalid")
            for command in [first, second] {
                try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            }
            try await stack.publish(
                Array("{not json".utf8), routingKey: "profile.upsert", messageID: stack.id("garbage"))
            try await stack.publish(
                commandBody(id: invalidID, type: "profile.upsert", accountID: account, payload: [:]),
                routingKey: "profile.upsert", messageID: invalidID)
            try await stack.waitForCollected(4)
            try await stack.waitForDeadQueue(4)

            let all = try await stack.run(["dlq", "list", "--json"])
            #expect(all.status == 0, "\(all.stderr)")
            #expect(
                Set(all.jsonLines.compactMap { $0["code"]?.stringValue }) == [
                    "not_connected", "not_json", "schema_invalid",
                ])
            #expect(all.jsonLines.count == 4)
            let notConnected = try await stack.run(["dlq", "list", "--json", "--code", "not_connected"])
            #expect(Set(notConnected.jsonLines.compactMap { $0["command_id"]?.stringValue }) == [first.id, second.id])
            #expect(
                try await stack.run(["dlq", "list", "--json", "--account", account, "--limit", "1"]).jsonLines.count
                    == 1)
            #expect(
                try await stack.run(["dlq", "list", "--json", "--type", "profile.*", "--code", "schema_invalid"])
                    .jsonLines.count == 1)
            #expect(try await stack.run(["dlq", "list", "--json", "--older-than", "1h"]).jsonLines.isEmpty)
            let table = try await stack.run(["dlq", "list", "--code", "not_connected"])
            #expect(
                table.stdout.contains("AGE") && table.stdout.contains("not_connected")
                    && table.stdout.contains(first.id))
            #expect(table.stdout.contains("2 dead letter(s) matched; 2 other(s) left in place"))
            try await stack.waitForDeadQueue(4)

            // Purge: a "no" changes nothing; --yes removes exactly the filtered one.
            let declined = try await stack.run(["dlq", "purge", "--code", "not_json"], stdin: "n\n")
            #expect(declined.stdout.contains("nothing purged"))
            try await stack.waitForDeadQueue(4)
            let purged = try await stack.run(["dlq", "purge", "--code", "not_json", "--yes"])
            #expect(purged.stdout.contains("purged 1 dead letter(s)"), "\(purged.stdout) \(purged.stderr)")
            try await stack.waitForDeadQueue(3)
            let left = try await stack.run(["dlq", "list", "--json"])
            #expect(Set(left.jsonLines.compactMap { $0["code"]?.stringValue }) == ["not_connected", "schema_invalid"])

            // Export: NDJSON with headers and the original body, nothing removed.
            let exportPath = FileManager.default.temporaryDirectory.appendingPathComponent("dlq-\(stack.prefix).ndjson")
                .path
            defer { try? FileManager.default.removeItem(atPath: exportPath) }
            let exported = try await stack.run(["dlq", "export", "--code", "not_connected", "--output", exportPath])
            #expect(exported.status == 0, "\(exported.stderr)")
            let exportedLines = try String(contentsOfFile: exportPath, encoding: .utf8).split(separator: "\n")
                .map { try JSONValue.parse(Array($0.utf8)) }
            #expect(exportedLines.count == 2)
            #expect(
                Set(exportedLines.compactMap { $0["body"]?.stringValue }) == [
                    String(decoding: first.body, as: UTF8.self), String(decoding: second.body, as: UTF8.self),
                ])
            #expect(exportedLines.allSatisfy { $0["headers"]?["x-relay-error-code"]?.stringValue == "not_connected" })
            try await stack.waitForDeadQueue(3)

            // Dry run: prints, changes nothing.
            let dry = try await stack.run(["dlq", "replay", "--code", "not_connected", "--dry-run"])
            #expect(dry.stdout.contains("would replay \(first.id)") && dry.stdout.contains("would replay \(second.id)"))
            try await stack.waitForDeadQueue(3)
            #expect(stack.deliveries.count == 4, "no new result or dead letter")

            // Connect the account, replay: both become results and leave the dead queue.
            _ = try await stack.connectAccount(account)
            let replay = try await stack.run(["dlq", "replay", "--code", "not_connected", "--rate", "20"])
            #expect(replay.status == 0, "\(replay.stderr)")
            #expect(replay.stdout.contains("replayed 2, failed 0"))
            try await stack.waitForCollected(6)
            for command in [first, second] {
                let result = try #require(stack.results(for: command.id).first)
                #expect(result.outcome == .succeeded)
            }
            try await stack.waitForDeadQueue(1)

            // A second replay finds nothing to do.
            let again = try await stack.run(["dlq", "replay", "--code", "not_connected"])
            #expect(again.stdout.contains("replayed 0, failed 0"))
            let sentinel = upsert(stack, "sentinel", account: account)
            try await stack.publish(sentinel.body, routingKey: "profile.upsert", messageID: sentinel.id)
            try await stack.waitForCollected(7)
            #expect(stack.results(for: sentinel.id).count == 1)
            #expect(stack.results(for: first.id).count == 1 && stack.results(for: second.id).count == 1)
            #expect(stack.deliveries.count == 7)
            let remaining = try await stack.run(["dlq", "list", "--json"])
            #expect(remaining.jsonLines.map { $0["command_id"]?.stringValue } == [invalidID])
        }
    }

    /// A replay killed half-way (SIGKILL, harsher than Ctrl-C) loses nothing: every command is either a result
    /// or still a dead letter (or both, if it died between the confirm and the ack).
    @Test func interruptedReplayLosesNothing() async throws {
        try await withRelayStack { stack in
            let account = "acct-\(UUID().uuidString.lowercased().prefix(10))"
            _ = try stack.startConsumer(environment: ["RELAY_CREDENTIAL_CACHE_TTL": "100ms"])
            try await stack.waitForConsumers(1)
            let commands = (1...4).map { upsert(stack, "interrupted-\($0)", account: account) }
            for command in commands {
                try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            }
            try await stack.waitForCollected(4)
            try await stack.waitForDeadQueue(4)
            _ = try await stack.connectAccount(account)

            let process = Process()
            process.executableURL = URL(fileURLWithPath: IntegrationEnvironment.relayBinary)
            process.arguments = ["dlq", "replay", "--rate", "1", "--dev", "--log-level", "warning"]
            var environment = ProcessInfo.processInfo.environment
            for key in environment.keys where key.hasPrefix("RELAY_") { environment[key] = nil }
            environment.merge([
                "RELAY_QUEUE_PREFIX": stack.prefix, "RELAY_AMQP_URL": IntegrationEnvironment.amqpURL,
                "RELAY_REDIS_URL": IntegrationEnvironment.redisURL,
            ]) { _, new in new }
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            let finished = ExitStatus()
            process.terminationHandler = { ended in finished.value.withLock { $0 = ended.terminationStatus } }
            try process.run()
            try await eventually("the first replayed result", timeout: .seconds(30)) {
                commands.contains { !stack.results(for: $0.id).isEmpty }
            }
            kill(process.processIdentifier, SIGKILL)
            try await eventually("the replay process to die", timeout: .seconds(10)) {
                finished.value.withLock { $0 != nil }
            }

            // The broker hands back what the killed run held; each command is a result or a dead letter.
            let replayedSoFar = commands.filter { !stack.results(for: $0.id).isEmpty }.count
            #expect(replayedSoFar < 4, "killed before it finished (--rate 1)")
            try await eventually("results + dead letters to cover every command", timeout: .seconds(30)) {
                let results = commands.filter { !stack.results(for: $0.id).isEmpty }.count
                return try await results + stack.deadQueueCount() >= 4
            }
            let listed = try await stack.run(["dlq", "list", "--json"])
            let stillDead = Set(listed.jsonLines.compactMap { $0["command_id"]?.stringValue })
            for command in commands {
                #expect(!stack.results(for: command.id).isEmpty || stillDead.contains(command.id), "\(command.id) lost")
            }
            // Finishing the replay turns the rest into results.
            let rest = try await stack.run(["dlq", "replay"])
            #expect(rest.status == 0, "\(rest.stderr)")
            try await eventually("every command to have a result", timeout: .seconds(30)) {
                commands.allSatisfy { !stack.results(for: $0.id).isEmpty }
            }
            try await stack.waitForDeadQueue(0)
        }
    }

    /// A dead letter whose command had in fact succeeded (e.g. its result went out, then an operator or a
    /// broker-made dead letter copied it): replaying it does not call Klaviyo again; the stored result is
    /// re-published to whoever is listening.
    @Test func replayOfACommandThatHadSucceededDoesNotCallKlaviyoAgain() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let consumer = try stack.startConsumer()
            try await stack.waitForConsumers(1)
            let command = upsert(stack, "done-before", account: account)
            try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            try await stack.waitForCollected(1)
            #expect(stack.results(for: command.id).first?.outcome == .succeeded)

            var properties = AMQPProperties(contentType: "application/json", persistent: true)
            properties.messageID = command.id
            properties.headers = [
                "x-relay-error-code": .string("retries_exhausted"), "x-relay-error-detail": .string("test"),
                "x-relay-attempts": .int(5), "x-relay-command-id": .string(command.id),
                "x-relay-account-id": .string(account), "x-relay-type": .string("profile.upsert"),
                "x-original-routing-key": .string("profile.upsert"),
                "x-original-exchange": .string(stack.topology.commandsExchange),
            ]
            try await stack.amqp.publish(
                AMQPMessage(
                    exchange: stack.topology.deadExchange, routingKey: "profile.upsert", body: command.body,
                    properties: properties))
            try await stack.waitForCollected(2)
            try await stack.waitForDeadQueue(1)

            let replay = try await stack.run(["dlq", "replay", "--account", account])
            #expect(replay.stdout.contains("replayed 1, failed 0"), "\(replay.stdout) \(replay.stderr)")
            try await stack.waitForCollected(3)
            #expect(stack.results(for: command.id).count == 2, "the stored result, re-published")
            try await eventually("the duplicate to be recognised", timeout: .seconds(30)) {
                consumer.log.contains("duplicate command: not sent to Klaviyo again")
            }
            let imports = try await stack.klaviyoRequests(account: account).filter {
                $0["path"]?.stringValue == "/api/profile-import"
            }
            #expect(imports.count == 1, "Klaviyo was called once, by the original delivery")
            try await stack.waitForDeadQueue(0)
        }
    }
}
