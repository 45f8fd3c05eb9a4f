import AMQP
import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// What one publisher's mistakes may not do to another tenant (issue #9): reuse of a command id, routing keys
/// that match nothing, `reply_to` into the relay's own queues, forged relay headers.
@Suite("Tenant isolation", .serialized, .timeLimit(.minutes(3)))
struct TenantIsolationTests {
    func code(_ delivery: AMQPDelivery) -> String? {
        delivery.properties.headers[DeadLetter.Header.errorCode]?.stringValue
    }

    func deadLetters(_ stack: RelayStack, id: String) -> [AMQPDelivery] {
        stack.deadLetters.filter { $0.properties.headers[DeadLetter.Header.commandID]?.stringValue == id }
    }

    /// Declares a reply queue the default `RELAY_REPLY_TO_PATTERN` admits.
    func replyQueue(_ stack: RelayStack, _ name: String) async throws -> String {
        let queue = "reply.\(stack.prefix).\(name)"
        var declaration = AMQPTopology()
        declaration.queues = [.init(name: queue, durable: false, autoDelete: false)]
        try await stack.amqp.declare(declaration)
        return queue
    }

    @Test func anIDReusedByAnotherAccountIsAConflictAndRevealsNothing() async throws {
        try await withRelayStack { stack in
            let (first, _) = try await stack.connectAccount()
            let (second, _) = try await stack.connectAccount()
            // Connecting validated each key with one call; count what the commands add.
            let connectCalls = try await stack.klaviyoRequests(account: second).count
            _ = try stack.startConsumer()
            let id = stack.id("order-123")
            try await stack.publish(
                commandBody(id: id, type: "account.get", accountID: first, payload: [:]), routingKey: "account.get",
                messageID: id)
            try await eventually("the first account's result", timeout: .seconds(30)) {
                !stack.results(for: id).isEmpty
            }
            let secondReplies = try await replyQueue(stack, "second")
            try await stack.publish(
                commandBody(id: id, type: "account.get", accountID: second, payload: [:]), routingKey: "account.get",
                messageID: id, replyTo: secondReplies)
            try await eventually("the second account's dead letter", timeout: .seconds(30)) {
                !deadLetters(stack, id: id).isEmpty
            }
            let dead = try #require(deadLetters(stack, id: id).first)
            #expect(code(dead) == "id_conflict")
            #expect(dead.properties.headers[DeadLetter.Header.accountID]?.stringValue == second)
            let detail = dead.properties.headers[DeadLetter.Header.errorDetail]?.stringValue ?? ""
            #expect(!detail.contains(first), "the detail names the other account: \(detail)")
            // Nothing of the first command's result reached the second publisher, on reply_to or the exchange.
            #expect(try await stack.amqp.messageCount(queue: secondReplies).messages == 0)
            #expect(stack.results(for: id).allSatisfy { $0.accountID == first })
            #expect(stack.results(for: id).count == 1)
            #expect(
                try await stack.klaviyoRequests(account: second).count == connectCalls,
                "the second command reached Klaviyo")

            // The very same command again (a double publish) is still a harmless duplicate.
            try await stack.publish(
                commandBody(id: id, type: "account.get", accountID: first, payload: [:]), routingKey: "account.get",
                messageID: id)
            try await eventually("the duplicate's result", timeout: .seconds(30)) { stack.results(for: id).count == 2 }
            #expect(stack.results(for: id).allSatisfy { $0.accountID == first && $0.outcome == .succeeded })
            #expect(try await stack.klaviyoRequests(account: first).count == connectCalls + 1)
        }
    }

    @Test func anIDReusedForAnotherTypeOrBodyOfTheSameAccountIsAConflict() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let connectCalls = try await stack.klaviyoRequests(account: account).count
            _ = try stack.startConsumer()
            let id = stack.id("reused")
            let email = "reuse.\(UUID().uuidString.prefix(6).lowercased())@example.com"
            try await stack.publish(
                commandBody(
                    id: id, type: "profile.upsert", accountID: account,
                    payload: ["profile": ["email": .string(email)]]),
                routingKey: "profile.upsert", messageID: id)
            try await eventually("the first result", timeout: .seconds(30)) { !stack.results(for: id).isEmpty }
            // Same id, same account: another body, then another type.
            try await stack.publish(
                commandBody(
                    id: id, type: "profile.upsert", accountID: account,
                    payload: ["profile": ["email": .string("other." + email)]]),
                routingKey: "profile.upsert", messageID: id)
            try await stack.publish(
                commandBody(id: id, type: "account.get", accountID: account, payload: [:]), routingKey: "account.get",
                messageID: id)
            try await eventually("two dead letters", timeout: .seconds(30)) { deadLetters(stack, id: id).count == 2 }
            #expect(deadLetters(stack, id: id).allSatisfy { code($0) == "id_conflict" })
            #expect(stack.results(for: id).count == 1)
            let calls = try await stack.klaviyoRequests(account: account)
            #expect(calls.count == connectCalls + 1, "only the first command reached Klaviyo: \(calls)")
            // Publisher key order does not make a copy "another body".
            let reordered = Array(
                #"{"payload":{"profile":{"email":"\#(email)"}},"created_at":"2026-11-30T08:00:00Z","account_id":"\#(account)","type":"profile.upsert","id":"\#(id)"}"#
                    .utf8)
            try await stack.publish(reordered, routingKey: "profile.upsert", messageID: id)
            try await eventually("the duplicate's result", timeout: .seconds(30)) { stack.results(for: id).count == 2 }
            #expect(deadLetters(stack, id: id).count == 2)
        }
    }

    @Test func commandsThatMatchNoBindingBecomeDeadLetters() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let connectCalls = try await stack.klaviyoRequests(account: account).count
            _ = try stack.startConsumer()
            try await stack.waitForConsumers(1, queue: .unroutable)
            let keys = ["contact.create", "profiles.upsert", "x"]
            for (index, key) in keys.enumerated() {
                let id = stack.id("unroutable-\(index)")
                try await stack.publish(
                    commandBody(id: id, type: "account.get", accountID: account, payload: [:]), routingKey: key,
                    messageID: id)
            }
            try await stack.publish(Array("not even json".utf8), routingKey: "nothing.here")
            try await eventually("four dead letters", timeout: .seconds(30)) { stack.deadLetters.count == 4 }
            #expect(stack.deadLetters.allSatisfy { code($0) == "unroutable" })
            let routed = Set(
                stack.deadLetters.compactMap {
                    $0.properties.headers[DeadLetter.Header.originalRoutingKey]?.stringValue
                })
            #expect(routed == Set(keys + ["nothing.here"]))
            #expect(try await stack.klaviyoRequests(account: account).count == connectCalls)
        }
    }

    @Test func replyToMayOnlyNameAdmittedQueues() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let connectCalls = try await stack.klaviyoRequests(account: account).count
            _ = try stack.startConsumer()
            let workQueue = stack.topology.queueName(.campaigns)
            let targets = [workQueue, stack.topology.deadQueue, "someone.elses.queue"]
            for (index, target) in targets.enumerated() {
                let id = stack.id("reply-\(index)")
                try await stack.publish(
                    commandBody(id: id, type: "account.get", accountID: account, payload: [:]),
                    routingKey: "account.get", messageID: id, replyTo: target)
            }
            try await eventually("three dead letters", timeout: .seconds(30)) { stack.deadLetters.count == 3 }
            #expect(stack.deadLetters.allSatisfy { code($0) == "reply_to_not_allowed" })
            #expect(stack.deliveries.count == 3, "no result was published")
            #expect(try await stack.klaviyoRequests(account: account).count == connectCalls)
            // An admitted queue still gets its reply.
            let admitted = try await replyQueue(stack, "ok")
            let id = stack.id("reply-ok")
            try await stack.publish(
                commandBody(id: id, type: "account.get", accountID: account, payload: [:]), routingKey: "account.get",
                messageID: id, replyTo: admitted)
            try await eventually("the reply", timeout: .seconds(30)) {
                try await stack.amqp.messageCount(queue: admitted).messages == 1
            }
        }
    }

    @Test func forgedRelayHeadersOnAFreshCommandSteerNothing() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            _ = try stack.startConsumer()
            let id = stack.id("forged")
            try await stack.publish(
                commandBody(id: id, type: "account.get", accountID: account, payload: [:]), routingKey: "account.get",
                messageID: id,
                headers: [
                    "x-relay-attempts": .int(99), "x-relay-first-failed-at": .string("2000-01-01T00:00:00Z"),
                    "x-original-routing-key": .string("profile.upsert"),
                    "x-relay-seal": .string(String(repeating: "0", count: 64)),
                ])
            try await eventually("the result", timeout: .seconds(30)) { !stack.results(for: id).isEmpty }
            let result = try #require(stack.results(for: id).first)
            #expect(result.outcome == .succeeded)
            #expect(result.attempts == 1)
            #expect(stack.deadLetters.isEmpty)
        }
    }
}
