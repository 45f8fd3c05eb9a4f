import AMQP
import Foundation
import Klaviyo
import Relay
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

    /// A scan holds what settling needs, not every body: the dead letters it passes over keep no payload, nor do
    /// the selected ones without `keepBodies` (the caller sees each whole once, in `onMatch`). Handed back, every
    /// message is still whole in the queue.
    @Test func aScanHoldsNoBodiesItDoesNotNeed() async throws {
        try await withRelayStack { stack in
            var bodies: [String: [UInt8]] = [:]
            for (index, account) in ["acct-a", "acct-a", "acct-b"].enumerated() {
                let id = stack.id("held-\(index)")
                let body = Array(
                    "{\"id\":\"\(id)\",\"account_id\":\"\(account)\",\"pad\":\"\(String(repeating: "x", count: 2000))\"}"
                        .utf8)
                bodies[id] = body
                var properties = AMQPProperties()
                properties.messageID = id
                properties.headers = [
                    "x-relay-command-id": .string(id), "x-relay-account-id": .string(account),
                    "x-relay-error-code": .string("klaviyo_rejected"),
                ]
                try await stack.amqp.publish(
                    AMQPMessage(
                        exchange: stack.topology.deadExchange, routingKey: "profile.upsert", body: body,
                        properties: properties))
            }
            try await stack.waitForDeadQueue(3)
            let queue = DeadLetterQueue(
                amqp: stack.amqp, topology: stack.topology, seal: HeaderSeal(keyRing: stack.keys))
            var seen: [String: [UInt8]] = [:]
            let lean = try await queue.scan(
                DeadLetterFilter(account: "acct-a"), keepBodies: false,
                onMatch: { held in seen[held.summary.commandID ?? ""] = held.delivery.body })
            await queue.release(lean.others + lean.selected.map(\.delivery))
            #expect(lean.selected.count == 2 && lean.others.count == 1)
            #expect(lean.selected.allSatisfy { $0.delivery.body.isEmpty && $0.summary.accountID == "acct-a" })
            #expect(lean.others.allSatisfy { $0.body.isEmpty && $0.properties.headers.isEmpty })
            #expect(seen.count == 2 && seen.allSatisfy { bodies[$0.key] == $0.value }, "onMatch saw each whole")

            try await stack.waitForDeadQueue(3)
            let whole = try await queue.scan(DeadLetterFilter())
            await queue.release(whole.others + whole.selected.map(\.delivery))
            #expect(whole.selected.count == 3)
            for held in whole.selected {
                #expect(bodies[held.summary.commandID ?? ""] == held.delivery.body, "handed back whole")
            }
        }
    }

    /// A run reads the dead letters that were there when it started: here every match makes another dead letter
    /// arrive (a tenant flooding the dead queue), and the run still ends after the three it found, leaving the new
    /// ones for the next run. (It read until the queue was empty, so a flood faster than the run kept it going.)
    @Test func aScanReadsTheDepthItFoundNotAFlood() async throws {
        try await withRelayStack { stack in
            func deadLetter(_ id: String) async throws {
                var properties = AMQPProperties()
                properties.messageID = id
                properties.headers = ["x-relay-error-code": .string("klaviyo_rejected")]
                try await stack.amqp.publish(
                    AMQPMessage(
                        exchange: stack.topology.deadExchange, routingKey: "profile.upsert",
                        body: Array("{\"id\":\"\(id)\",\"account_id\":\"acct-flood\"}".utf8), properties: properties))
            }
            for index in 0..<3 { try await deadLetter(stack.id("found-\(index)")) }
            try await stack.waitForDeadQueue(3)
            let queue = DeadLetterQueue(
                amqp: stack.amqp, topology: stack.topology, seal: HeaderSeal(keyRing: stack.keys))
            var arrived = 0
            let selection = try await queue.scan(
                DeadLetterFilter(),
                onMatch: { _ in
                    guard arrived < 5 else { return }
                    arrived += 1
                    try await deadLetter(stack.id("flood-\(arrived)"))
                })
            await queue.release(selection.others + selection.selected.map(\.delivery))
            #expect(arrived == 3)
            #expect(selection.selected.count == 3)
            #expect(selection.selected.allSatisfy { $0.summary.commandID?.contains("found-") == true })
            try await stack.waitForDeadQueue(6)
        }
    }

    /// What a tenant put in its command reaches the operator's terminal escaped (an OSC title sequence in the
    /// account id, in table and `show`), an `--id` that names dead letters of two accounts (the second an
    /// `id_conflict`) is shown whole and refused by replay and purge, and an export file is the operator's alone.
    @Test func hostileTextIsEscapedAndAnAmbiguousIdIsRefused() async throws {
        try await withRelayStack { stack in
            _ = try stack.startConsumer()
            try await stack.waitForConsumers(1)
            let owner = "acct-\(UUID().uuidString.lowercased().prefix(10))"
            let shared = upsert(stack, "shared-id", account: owner)
            try await stack.publish(shared.body, routingKey: "profile.upsert", messageID: shared.id)
            try await stack.waitForCollected(1)
            let other = "acct-\(UUID().uuidString.lowercased().prefix(10))"
            let reused = commandBody(
                id: shared.id, type: "profile.upsert", accountID: other,
                payload: ["profile": ["email": "reuse@example.com"]])
            try await stack.publish(reused, routingKey: "profile.upsert", messageID: shared.id)
            let hostile = commandBody(
                id: stack.id("hostile"), type: "profile.upsert", accountID: "\u{1b}]0;pwned\u{07}\u{1b}[2J",
                payload: ["profile": ["email": "x@example.com"]])
            try await stack.publish(hostile, routingKey: "profile.upsert", messageID: stack.id("hostile"))
            try await stack.waitForCollected(3)
            try await stack.waitForDeadQueue(3)
            let codes = Set(stack.deadLetters.compactMap { $0.properties.headers["x-relay-error-code"]?.stringValue })
            #expect(codes == ["not_connected", "id_conflict", "schema_invalid"], "\(codes)")

            let list = try await stack.run(["dlq", "list"])
            #expect(list.status == 0, "\(list.stderr)")
            #expect(!list.stdout.unicodeScalars.contains("\u{1b}"), "no raw escape reaches the terminal")
            #expect(list.stdout.contains("\\u{1b}]0;pwned\\u{7}"), "\(list.stdout)")
            let showHostile = try await stack.run(["dlq", "show", stack.id("hostile")])
            #expect(showHostile.status == 0, "\(showHostile.stderr)")
            #expect(
                !showHostile.stdout.unicodeScalars.contains("\u{1b}")
                    && !showHostile.stdout.unicodeScalars.contains("\u{07}"))

            let show = try await stack.run(["dlq", "show", shared.id])
            #expect(show.status == 0, "\(show.stderr)")
            #expect(
                show.stdout.contains("dead letter 2 of 2") && show.stdout.contains(owner) && show.stdout.contains(other)
            )
            for verb in [["replay"], ["purge", "--yes"]] {
                let refused = try await stack.run(["dlq"] + verb + ["--id", shared.id])
                #expect(refused.status != 0, "\(verb) \(refused.stdout)")
                #expect(
                    refused.stderr.contains("2 dead letters have id")
                        || refused.stdout.contains("2 dead letters have id"),
                    "\(refused.stdout) \(refused.stderr)")
            }
            try await stack.waitForDeadQueue(3)
            let narrowed = try await stack.run(["dlq", "purge", "--yes", "--id", shared.id, "--account", other])
            #expect(
                narrowed.status == 0 && narrowed.stdout.contains("purged 1"), "\(narrowed.stdout) \(narrowed.stderr)")
            try await stack.waitForDeadQueue(2)

            let file = FileManager.default.temporaryDirectory.appendingPathComponent("dlq-\(UUID().uuidString).ndjson")
                .path
            defer { try? FileManager.default.removeItem(atPath: file) }
            let export = try await stack.run(["dlq", "export", "--output", file])
            #expect(export.status == 0, "\(export.stderr)")
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            #expect(try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").count == 2)
        }
    }
}
