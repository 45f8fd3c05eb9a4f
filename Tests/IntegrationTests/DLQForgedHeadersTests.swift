import AMQP
import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// A broker-made dead letter keeps the headers its publisher put on the command. A publisher of account B that
/// writes `x-relay-account-id: A` (and another account's command id) on its commands must not get them listed,
/// exported, shown, replayed or purged as account A's when an outage (or a crash loop) makes the broker
/// dead-letter them at the work queue's delivery limit: the dead letter is B's, as its body says.
@Suite("klaviyo-relay dlq and forged relay headers", .timeLimit(.minutes(3)))
struct DLQForgedHeadersTests {
    @Test func aBrokerMadeDeadLetterIsTheAccountItsBodyNames() async throws {
        try await withRelayStack(deliveryLimit: 1) { stack in
            let victim = uniqueName("victim", length: 10)
            let forger = uniqueName("forger", length: 10)
            let victimCommandID = stack.id("victims-command")
            let command = upsert(stack, "forged-headers", account: forger)
            try await stack.publish(
                command.body, routingKey: "profile.upsert", messageID: command.id,
                headers: [
                    DeadLetter.Header.accountID: .string(victim), DeadLetter.Header.commandID: .string(victimCommandID),
                ])
            // No consumer: the command is handed back (as consumers do while Redis is down) until the broker
            // dead-letters it at the delivery limit, headers and all.
            let workQueue = stack.topology.queueName(.profiles)
            try await eventually("the broker to dead-letter the command", timeout: .seconds(30)) {
                if let delivery = try await stack.amqp.get(queue: workQueue) {
                    try await stack.amqp.nack(delivery, requeue: true)
                }
                return try await stack.deadQueueCount() == 1
            }
            let dead = try #require(
                try await stack.amqp.get(queue: stack.topology.deadQueue), "the dead letter to look at")
            #expect(dead.properties.headers[DeadLetter.Header.accountID]?.stringValue == victim, "the forged header")
            #expect(dead.properties.headers[DeadLetter.Header.errorCode] == nil, "made by the broker")
            try await stack.amqp.nack(dead, requeue: true)
            try await stack.waitForDeadQueue(1)

            let asVictims = try await stack.run(["dlq", "list", "--json", "--account", victim])
            #expect(asVictims.status == 0, "\(asVictims.stderr)")
            #expect(asVictims.jsonLines.isEmpty, "listed as the victim's: \(asVictims.stdout)")
            let exported = try await stack.run(["dlq", "export", "--account", victim])
            #expect(exported.status == 0, "\(exported.stderr)")
            #expect(!exported.stdout.contains(forger), "the forger's command exported as the victim's")
            let shown = try await stack.run(["dlq", "show", victimCommandID])
            #expect(shown.status != 0, "shown as the victim's command: \(shown.stdout)")
            let replayed = try await stack.run(["dlq", "replay", "--account", victim])
            #expect(replayed.stdout.contains("replayed 0, failed 0"), "\(replayed.stdout) \(replayed.stderr)")
            let purged = try await stack.run(["dlq", "purge", "--yes", "--account", victim])
            #expect(purged.stdout.contains("nothing purged"), "\(purged.stdout) \(purged.stderr)")
            try await stack.waitForDeadQueue(1)

            let asForgers = try await stack.run(["dlq", "list", "--json", "--account", forger])
            #expect(asForgers.jsonLines.count == 1, "\(asForgers.stdout) \(asForgers.stderr)")
            #expect(asForgers.jsonLines.first?["command_id"]?.stringValue == command.id)
            #expect(asForgers.jsonLines.first?["code"]?.stringValue == "delivery_limit")
            try await stack.waitForDeadQueue(1)
        }
    }

    /// `x-relay-error-code` does not make a dead letter the relay's; its seal does. A publisher of account B that
    /// writes it with `x-relay-account-id: A` on a command that is not JSON (so the body names no account) gets it
    /// neither listed, counted, replayed nor purged as A's, whether the broker dead-lettered it at the delivery limit
    /// or it reached the dead queue some other way. The relay's own (sealed) dead letter of such a body still is A's.
    @Test func anUnsealedErrorCodeDoesNotMakeADeadLetterTheRelays() async throws {
        try await withRelayStack(deliveryLimit: 1) { stack in
            let victim = uniqueName("victim", length: 10)
            let workQueue = stack.topology.queueName(.profiles)
            func properties(_ id: String, _ headers: AMQPTable) -> AMQPProperties {
                var properties = AMQPProperties(contentType: "text/plain", headers: headers, persistent: true)
                properties.messageID = id
                return properties
            }
            // The relay's dead letter of a body that names nothing, made as the relay makes it from the delivery.
            let genuineID = stack.id("genuine")
            try await stack.publish(
                Array("the relay's garbage".utf8), routingKey: "profile.upsert", messageID: genuineID)
            var taken: AMQPDelivery?
            try await eventually("the command in the work queue", timeout: .seconds(10)) {
                taken = try await stack.amqp.get(queue: workQueue)
                return taken != nil
            }
            let delivery = try #require(taken)
            try await stack.amqp.publish(
                DeadLetter.message(
                    for: delivery, topology: stack.topology, code: .notJSON, detail: "body is not valid JSON",
                    attempts: 1, firstFailedAt: nil, commandID: genuineID, accountID: victim, type: "profile.upsert",
                    seal: HeaderSeal(keyRing: stack.keys)))
            try await stack.amqp.ack(delivery)
            try await stack.waitForDeadQueue(1)

            let forged: AMQPTable = [
                DeadLetter.Header.errorCode: .string("not_connected"),
                DeadLetter.Header.errorDetail: .string("replay me as the victim's"),
                DeadLetter.Header.accountID: .string(victim), DeadLetter.Header.commandID: .string(stack.id("victims")),
                DeadLetter.Header.type: .string("profile.upsert"), DeadLetter.Header.attempts: .int(1),
            ]
            // Forged, dead-lettered by the broker at the delivery limit, headers and all.
            try await stack.publish(
                Array("forged, via the broker".utf8), routingKey: "profile.upsert", messageID: stack.id("via-broker"),
                headers: forged)
            try await eventually("the broker to dead-letter the forged command", timeout: .seconds(30)) {
                if let delivery = try await stack.amqp.get(queue: workQueue) {
                    try await stack.amqp.nack(delivery, requeue: true)
                }
                return try await stack.deadQueueCount() == 2
            }
            // Forged, straight onto the dead exchange.
            try await stack.amqp.publish(
                AMQPMessage(
                    exchange: stack.topology.deadExchange, routingKey: "profile.upsert",
                    body: Array("forged, straight to the dead queue".utf8),
                    properties: properties(stack.id("straight"), forged)))
            try await stack.waitForDeadQueue(3)

            let listed = try await stack.run(["dlq", "list", "--json", "--account", victim])
            #expect(listed.status == 0, "\(listed.stderr)")
            #expect(listed.jsonLines.map { $0["message_id"]?.stringValue } == [genuineID], "\(listed.stdout)")
            #expect(listed.jsonLines.first?["sealed"] == .bool(true))
            let stats = try await stack.run(["dlq", "stats", "--json"])
            let counts = try #require(stats.jsonLines.first, "\(stats.stdout) \(stats.stderr)")
            #expect(counts["by_account"]?[victim] == .int(1) && counts["by_account"]?["-"] == .int(2), "\(counts)")
            let dry = try await stack.run(["dlq", "replay", "--dry-run", "--account", victim])
            #expect(dry.stdout.contains("1 dead letter(s) would be replayed"), "\(dry.stdout) \(dry.stderr)")
            let purged = try await stack.run(["dlq", "purge", "--yes", "--account", victim])
            #expect(purged.stdout.contains("purged 1 dead letter(s)"), "\(purged.stdout) \(purged.stderr)")
            try await stack.waitForDeadQueue(2)

            let forgeries = try await stack.run(["dlq", "list", "--json"])
            #expect(forgeries.jsonLines.count == 2, "\(forgeries.stdout) \(forgeries.stderr)")
            for line in forgeries.jsonLines {
                #expect(line["account_id"] == .null && line["sealed"] == .bool(false), "\(line)")
            }
            let codes = Set(forgeries.jsonLines.compactMap { $0["code"]?.stringValue })
            #expect(
                codes == ["delivery_limit", "not_connected"], "the broker's reason, or the unsealed code for triage")
            let replayed = try await stack.run(["dlq", "replay", "--account", victim])
            #expect(replayed.stdout.contains("replayed 0, failed 0"), "\(replayed.stdout) \(replayed.stderr)")
            let none = try await stack.run(["dlq", "purge", "--yes", "--account", victim])
            #expect(none.stdout.contains("nothing purged"), "\(none.stdout) \(none.stderr)")
            try await stack.waitForDeadQueue(2)
        }
    }

    /// A broker-made dead letter whose publisher wrote an `x-original-routing-key` longer than AMQP allows (255
    /// bytes) used to stop every `dlq replay` that reached it: its publish failed as a lost connection ("replay
    /// stopped"), so the dead letters after it (any account's) were not replayed. The header is not a routing key
    /// the relay could have written; the replay uses the one the message arrived with.
    @Test func anImpossibleOriginalRoutingKeyDoesNotStopAReplay() async throws {
        try await withRelayStack { stack in
            let poisoned = stack.id("long-routing-key")
            let plain = stack.id("plain")
            let tooLong: AMQPTable = [DeadLetter.Header.originalRoutingKey: .string(String(repeating: "k", count: 300))]
            for (id, headers) in [(poisoned, tooLong), (plain, [:])] {
                var properties = AMQPProperties(contentType: "application/json", headers: headers, persistent: true)
                properties.messageID = id
                try await stack.amqp.publish(
                    AMQPMessage(
                        exchange: stack.topology.deadExchange, routingKey: "profile.upsert",
                        body: commandBody(id: id, type: "profile.upsert", accountID: "org_long", payload: [:]),
                        properties: properties))
            }
            try await stack.waitForDeadQueue(2)
            let replayed = try await stack.run(["dlq", "replay"])
            #expect(replayed.status == 0, "\(replayed.stdout) \(replayed.stderr)")
            #expect(replayed.stdout.contains("replayed 2, failed 0"), "\(replayed.stdout) \(replayed.stderr)")
            try await stack.waitForDeadQueue(0)
            let profiles = stack.topology.queueName(.profiles)
            try await eventually("both replays in the profiles queue", timeout: .seconds(10)) {
                try await stack.amqp.messageCount(queue: profiles).messages == 2
            }
        }
    }
}
