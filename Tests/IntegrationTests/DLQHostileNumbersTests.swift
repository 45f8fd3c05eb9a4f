import AMQP
import Foundation
import Klaviyo
import Relay
import Testing

/// `klaviyo-relay dlq` against dead letters with absurd numbers, as a hand-made or corrupted message on the real
/// broker would carry them: every subcommand used to trap (`Illegal instruction`) on an `x-death` time of
/// `UInt64.max`; now each one exits normally and reports the time as unknown.
@Suite("klaviyo-relay dlq with absurd numbers", .timeLimit(.minutes(2)))
struct DLQHostileNumbersTests {
    @Test func everySubcommandSurvivesAbsurdTimesAndCounts() async throws {
        try await withRelayStack { stack in
            let id = stack.id("absurd")
            var properties = AMQPProperties()
            properties.contentType = "application/json"
            properties.persistent = true
            properties.messageID = id
            properties.timestamp = .max
            properties.headers = [
                "x-death": .array([
                    .table([
                        "reason": .string("delivery_limit"), "queue": .string(stack.topology.queueName(.profiles)),
                        "count": .int(.max), "time": .timestamp(.max),
                        "routing-keys": .array([.string("profile.upsert")]),
                    ]),
                    .table(["reason": .string("expired"), "count": .int(.min), "time": .int(.min)]),
                ]),
                // (The broker itself refuses non-finite doubles in headers, so none is sent.)
                "x-first-death-reason": .string("expired"), "x-custom-time": .timestamp(.max),
                "x-custom-number": .double(1e308),
            ]
            let body = commandBody(id: id, type: "profile.upsert", accountID: "org_absurd", payload: [:])
            try await stack.amqp.publish(
                AMQPMessage(
                    exchange: stack.topology.deadExchange, routingKey: "profile.upsert", body: body,
                    properties: properties))
            try await stack.waitForDeadQueue(1)

            let listed = try await stack.run(["dlq", "list", "--json"])
            #expect(listed.status == 0, "\(listed.stderr)")
            let entry = try #require(listed.jsonLines.first, "\(listed.stdout)")
            #expect(entry["command_id"] == .string(id))
            #expect(entry["code"] == "delivery_limit")
            #expect(entry["dead_lettered_at"] == .null && entry["age_seconds"] == .null)

            let table = try await stack.run(["dlq", "list", "--older-than", "1h"])
            #expect(table.status == 0, "\(table.stderr)")
            #expect(table.stdout.contains("0 dead letter(s) matched"), "unknown age never matches --older-than")

            let shown = try await stack.run(["dlq", "show", id])
            #expect(shown.status == 0, "\(shown.stderr)")
            #expect(shown.stdout.contains("x-custom-time: 9999-12-31T23:59:59.999Z"), "\(shown.stdout)")

            let exported = try await stack.run(["dlq", "export"])
            #expect(exported.status == 0, "\(exported.stderr)")
            let line = try #require(exported.jsonLines.first, "\(exported.stdout)")
            #expect(line["properties"]?["timestamp"] == .int(.max))

            let refused = try await stack.run(["dlq", "list", "--older-than", "9223372036854775807d"])
            #expect(refused.status != 0 && refused.stderr.contains("at most 365d"), "\(refused.stderr)")
            let badRate = try await stack.run(["dlq", "replay", "--rate", "1e-300", "--dry-run"])
            #expect(badRate.status != 0 && badRate.stderr.contains("--rate"), "\(badRate.stderr)")

            // Nothing was lost along the way.
            try await stack.waitForDeadQueue(1)
            let purged = try await stack.run(["dlq", "purge", "--yes"])
            #expect(purged.status == 0 && purged.stdout.contains("purged 1"), "\(purged.stdout) \(purged.stderr)")
        }
    }

    /// `dlq stats --top` with a negative count used to trap (`prefix` of a negative length) after the whole scan;
    /// now it is refused before anything is read.
    @Test func aNegativeTopIsRefusedNotATrap() async throws {
        try await withRelayStack { stack in
            let id = stack.id("top")
            try await stack.amqp.publish(
                AMQPMessage(
                    exchange: stack.topology.deadExchange, routingKey: "profile.upsert",
                    body: commandBody(id: id, type: "profile.upsert", accountID: "org_top", payload: [:]),
                    properties: AMQPProperties(contentType: "application/json", persistent: true)))
            try await stack.waitForDeadQueue(1)
            for top in ["-1", "-9223372036854775808"] {
                let refused = try await stack.run(["dlq", "stats", "--top=\(top)"])
                #expect(refused.status == 64, "--top=\(top): \(refused.status) \(refused.stderr)")
                #expect(refused.stderr.contains("--top must be 0 or more"), "\(refused.stderr)")
            }
            let totalsOnly = try await stack.run(["dlq", "stats", "--top=0"])
            #expect(totalsOnly.status == 0, "\(totalsOnly.stderr)")
            #expect(totalsOnly.stdout.contains("1 dead letter(s)") && totalsOnly.stdout.contains("(1 more)"))
            try await stack.waitForDeadQueue(1)
        }
    }
}
