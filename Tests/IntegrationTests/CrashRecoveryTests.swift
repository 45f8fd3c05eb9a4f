import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// A consumer killed with SIGKILL in the middle of a command loses nothing and yields exactly one result.
@Suite("Crash recovery", .timeLimit(.minutes(3)))
struct CrashRecoveryTests {
    func crashEnvironment(_ stage: String, commandID: String) -> [String: String] {
        ["RELAY_ENABLE_FAULT_INJECTION": "1", "RELAY_FAULT_CRASH_AT": stage, "RELAY_FAULT_CRASH_COMMAND_ID": commandID]
    }

    func klaviyoCalls(_ stack: RelayStack, account: String, email: String) async throws -> Int {
        return try await stack.klaviyoRequests(account: account).filter {
            $0["path"]?.stringValue == "/api/profile-import"
                && $0["body"]?["data"]?["attributes"]?["email"]?.stringValue == email
        }.count
    }

    /// Connects an account, starts a consumer that SIGKILLs itself at `stage` on one upsert, publishes that
    /// upsert and waits for the crash.
    func crashOnce(_ stack: RelayStack, at stage: String) async throws -> (account: String, id: String, email: String) {
        let (account, _) = try await stack.connectAccount()
        let id = stack.id("crash-\(stage)")
        let email = "\(id)@example.com".lowercased()
        let doomed = try stack.startConsumer(environment: crashEnvironment(stage, commandID: id))
        try await stack.waitForConsumers(1)
        try await stack.publish(
            commandBody(
                id: id, type: "profile.upsert", accountID: account, payload: ["profile": ["email": .string(email)]]),
            routingKey: "profile.upsert", messageID: id)
        let ending = try await doomed.waitForExit()
        #expect(ending.reason == .uncaughtSignal && ending.status == SIGKILL)
        return (account, id, email)
    }

    /// Killed after the result was published and confirmed but before the ack: the redelivery is recognised
    /// from the done marker, acked without calling Klaviyo, and no second result appears.
    @Test func killedAfterPublishingBeforeAckYieldsExactlyOneResult() async throws {
        try await withRelayStack { stack in
            let (account, id, email) = try await crashOnce(stack, at: "after_result_published")
            try await stack.waitForCollected(1)

            let survivor = try stack.startConsumer()
            try await eventually("the redelivered duplicate to be acked", timeout: .seconds(60)) {
                survivor.log.contains("duplicate command: not sent to Klaviyo again") && survivor.log.contains(id)
            }
            #expect(try await stack.amqp.messageCount(queue: stack.topology.queueName(.profiles)).messages == 0)
            #expect(stack.results(for: id).count == 1)
            #expect(try await klaviyoCalls(stack, account: account, email: email) == 1)
        }
    }

    /// Killed after the result was published and confirmed, before its published mark was written (the mark rides
    /// along with a later Redis round trip) and before the ack: the redelivery cannot tell the result went out, so it
    /// publishes the stored result again — the same document, under the same command id (results are
    /// at-least-once; publishers deduplicate by `command_id`) — and Klaviyo is not called again.
    @Test func killedBeforeThePublishedMarkRepublishesTheSameResult() async throws {
        try await withRelayStack { stack in
            let (account, id, email) = try await crashOnce(stack, at: "after_result_published_before_mark")
            try await stack.waitForCollected(1)
            #expect(
                try await stack.redis.hashGetAll(RedisKeys.idempotency(account, id))["published"] == "0",
                "the mark was still queued when the consumer died")

            _ = try stack.startConsumer()
            try await stack.waitForCollected(2)
            let bodies = stack.deliveries.map(\.body)
            #expect(bodies.count == 2 && bodies[0] == bodies[1], "the stored result, byte for byte")
            #expect(stack.results(for: id).count == 2)
            #expect(try await klaviyoCalls(stack, account: account, email: email) == 1)
            try await eventually("the done marker says published", timeout: .seconds(20)) {
                try await stack.redis.hashGetAll(RedisKeys.idempotency(account, id))["published"] == "1"
            }
            #expect(try await stack.amqp.messageCount(queue: stack.topology.queueName(.profiles)).messages == 0)
        }
    }

    /// Killed right after Klaviyo answered, before anything was recorded: the redelivery calls Klaviyo again
    /// (an upsert is idempotent), one profile exists and exactly one result is published.
    @Test func killedAfterTheKlaviyoCallYieldsExactlyOneResult() async throws {
        try await withRelayStack { stack in
            let (account, id, email) = try await crashOnce(stack, at: "after_klaviyo_call")
            #expect(stack.deliveries.isEmpty, "nothing was published before the crash")

            _ = try stack.startConsumer()
            try await stack.waitForCollected(1)
            let result = try #require(stack.results(for: id).first)
            #expect(result.outcome == .succeeded)
            #expect(result.klaviyo?.status == 200, "the profile already existed from the first call")
            #expect(try await klaviyoCalls(stack, account: account, email: email) == 2)
            let profiles = try await stack.simAdmin(.GET, "/_sim/accounts/\(account)/profiles")
            #expect(profiles["count"] == .int(1))
            // A later command proves the consumer finished the redelivery (FIFO is not guaranteed, so wait on
            // the marker instead): the done marker exists and says published.
            try await eventually("the done marker says published", timeout: .seconds(20)) {
                try await stack.redis.hashGetAll(RedisKeys.idempotency(account, id))["published"] == "1"
            }
            #expect(stack.results(for: id).count == 1)
        }
    }

    /// Killed after the result was recorded in Redis but before it was published: the redelivery publishes
    /// the stored result without calling Klaviyo again.
    @Test func killedAfterRecordingPublishesTheStoredResult() async throws {
        try await withRelayStack { stack in
            let (account, id, email) = try await crashOnce(stack, at: "after_result_recorded")
            _ = try stack.startConsumer()
            try await stack.waitForCollected(1)
            let result = try #require(stack.results(for: id).first)
            #expect(result.klaviyo?.status == 201, "the stored result of the first (creating) call")
            #expect(try await klaviyoCalls(stack, account: account, email: email) == 1)
        }
    }
}
