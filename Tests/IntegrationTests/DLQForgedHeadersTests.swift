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
