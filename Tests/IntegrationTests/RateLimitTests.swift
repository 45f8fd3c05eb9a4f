import AMQP
import Foundation
import Klaviyo
import Relay
import Testing

/// The shared rate limiter end to end (needs RabbitMQ, Redis and klaviyo-sim, like the other integration
/// suites): a call the limiter holds back parks its command in a retry tier without counting an attempt.
@Suite("Rate limiter (end to end)", .timeLimit(.minutes(4)))
struct RateLimitEndToEndTests {
    @Test func heldBackCommandsAreRetriedWithoutConsumingAttempts() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            // create_or_update_profile is 75/s and 700/min in the spec: × 0.01 → 1/s and 7/min. With no inline
            // wait, every call beyond one per second is held back; with one attempt allowed, a held-back retry
            // that counted as an attempt would end in retries_exhausted or report attempts > 1.
            let consumer = try stack.startConsumer(
                concurrency: 8,
                environment: [
                    "RELAY_RATE_LIMIT": "spec", "RELAY_RATE_LIMIT_SHARE": "0.01", "RELAY_RATE_LIMIT_MAX_WAIT": "0",
                    "RELAY_MAX_ATTEMPTS": "1",
                ])
            try await stack.waitForConsumers(1)
            let commands = (0..<4).map { upsert(stack, "held-back-\($0)", account: account) }
            for command in commands {
                try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            }
            try await stack.waitForCollected(commands.count, timeout: .seconds(90))
            #expect(stack.deadLetters.isEmpty)
            for command in commands {
                let result = try #require(stack.results(for: command.id).first)
                #expect(result.outcome == .succeeded)
                #expect(result.attempts == 1, "held-back retries must not count as attempts")
            }
            let lines = consumer.log.split(separator: "\n").compactMap { try? JSONValue.parse(Array($0.utf8)) }
            let heldBack = lines.filter { $0["msg"]?.stringValue == "held back by the rate limiter; retry scheduled" }
            #expect(!heldBack.isEmpty, "four calls in a burst of 1/s must be held back")
            #expect(heldBack.allSatisfy { $0["level"]?.stringValue == "info" })
            #expect(heldBack.allSatisfy { $0["attempt"]?.stringValue == "0" })
            // One call per admitted slot (no call repeated), and the slots 1 s apart: four calls at 1/s span at
            // least 3 s, so the first and last results are at least ~2.5 s apart (minus one call's latency).
            let statuses = try await stack.klaviyoStatuses(account: account)
            #expect(statuses.count == commands.count && statuses.allSatisfy { (200..<300).contains($0) })
            let completed = commands.compactMap { command in
                stack.results(for: command.id).first.flatMap { Timestamp.parseMilliseconds($0.completedAt) }
            }.sorted()
            #expect(completed.count == commands.count)
            if let first = completed.first, let last = completed.last {
                #expect(last - first >= 2500, "4 calls at 1/s finished within \(last - first) ms")
            }
        }
    }

    /// A backlog the steady window holds back comes back when its slots free (not at the next coarse tier),
    /// in order, across several consume processes, and never more calls than the window allows. With
    /// create_or_update_profile × 0.005 (1/s, 3/min): three calls go at once, the next three exactly one
    /// (widened) window after them; the old limiter parked them in the 2m tier.
    @Test func aSteadyWindowBacklogGoesOutWhenItsSlotsFreeAcrossProcesses() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let environment = [
                "RELAY_RATE_LIMIT": "spec", "RELAY_RATE_LIMIT_SHARE": "0.005", "RELAY_MAX_ATTEMPTS": "1",
                "RELAY_COALESCE": "off",
            ]
            for _ in 0..<3 { _ = try stack.startConsumer(concurrency: 4, environment: environment) }
            try await stack.waitForConsumers(3)
            let commands = (0..<6).map { upsert(stack, "steady-\($0)", account: account) }
            for command in commands {
                try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            }
            try await stack.waitForCollected(commands.count, timeout: .seconds(150))
            #expect(stack.deadLetters.isEmpty)
            let completed = commands.compactMap { command -> Int64? in
                guard let result = stack.results(for: command.id).first else { return nil }
                #expect(result.outcome == .succeeded)
                #expect(result.attempts == 1, "a 429 or a counted hold-back would show as an attempt")
                return Timestamp.parseMilliseconds(result.completedAt)
            }.sorted()
            try #require(completed.count == 6)
            // Never a fourth call within a minute of three others (the limit is 3/min)...
            for index in 0..<3 {
                #expect(completed[index + 3] - completed[index] >= 59_500, "\(completed)")
            }
            // ... and the second three as soon as the window lets them, not a 2-minute tier later.
            #expect(completed[3] - completed[0] <= 66_000, "\(completed)")
            #expect(try await stack.klaviyoStatuses(account: account).count == 6, "each command called once")
        }
    }
}
