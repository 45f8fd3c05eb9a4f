import Foundation
import Klaviyo
import RelayTestSupport
import Testing

/// `dlq stats` and `dlq replay --id` against real dead letters (issue #11): counts by code/account/type/age
/// without removing anything, replay of one command id only, and a non-zero exit when something was not replayed.
@Suite("klaviyo-relay dlq stats and replay --id", .timeLimit(.minutes(3)))
struct DLQStatsReplayTests {
    @Test func statsCountAndReplayByIdTakesOnlyThatOne() async throws {
        try await withRelayStack { stack in
            let account = "acct-\(UUID().uuidString.lowercased().prefix(10))"
            _ = try stack.startConsumer(environment: ["RELAY_CREDENTIAL_CACHE_TTL": "100ms"])
            try await stack.waitForConsumers(1)
            let first = upsert(stack, "stats-1", account: account)
            let second = upsert(stack, "stats-2", account: account)
            for command in [first, second] {
                try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            }
            try await stack.publish(
                Array("{not json".utf8), routingKey: "profile.upsert", messageID: stack.id("garbage"))
            try await stack.waitForCollected(3)
            try await stack.waitForDeadQueue(3)

            let stats = try await stack.run(["dlq", "stats", "--json"])
            #expect(stats.status == 0, "\(stats.stderr)")
            let counts = try #require(stats.jsonLines.first)
            #expect(counts["total"] == .int(3))
            #expect(counts["by_code"]?["not_connected"] == .int(2))
            #expect(counts["by_code"]?["not_json"] == .int(1))
            #expect(counts["by_account"]?[account] == .int(2))
            #expect(counts["by_type"]?["profile.upsert"] == .int(3))
            #expect(counts["by_age"]?["<1h"] == .int(3))
            let table = try await stack.run(["dlq", "stats", "--code", "not_connected"])
            #expect(table.stdout.contains("2 dead letter(s)") && table.stdout.contains(account), "\(table.stdout)")
            // Reading changed nothing.
            try await stack.waitForDeadQueue(3)

            let missing = try await stack.run(["dlq", "replay", "--id", stack.id("no-such-command")])
            #expect(missing.status != 0)
            #expect(missing.stdout.contains("no dead letter with command or message id"))
            try await stack.waitForDeadQueue(3)

            // Connect the account, then replay only the first command: it succeeds; the others stay.
            _ = try await stack.connectAccount(account)
            let replayed = try await stack.run(["dlq", "replay", "--id", first.id])
            #expect(replayed.status == 0, "\(replayed.stdout) \(replayed.stderr)")
            #expect(replayed.stdout.contains("replayed 1, failed 0"))
            try await eventually("the replayed command's result", timeout: .seconds(30)) {
                stack.results(for: first.id).contains { $0.outcome == .succeeded }
            }
            try await stack.waitForDeadQueue(2)
            #expect(stack.results(for: second.id).isEmpty)
        }
    }
}
