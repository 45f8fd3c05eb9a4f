import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// SIGTERM stops taking work, finishes or hands back what is in flight, and exits 0; nothing is lost.
@Suite("Graceful shutdown", .timeLimit(.minutes(3)))
struct ShutdownTests {
    @Test func sigtermMidStreamExitsCleanlyAndLosesNothing() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let ids = (0..<600).map { stack.id("drain-\($0)") }
            for (index, id) in ids.enumerated() {
                try await stack.publish(
                    commandBody(
                        id: id, type: "profile.upsert", accountID: account,
                        payload: ["profile": ["external_id": .string("drain-\(index)")]]),
                    routingKey: "profile.upsert", messageID: id)
            }
            // The backlog is queued before the consumer starts, so it is stopped in the middle of it.
            let first = try stack.startConsumer(concurrency: 8)
            // Stop the consumer while it is working through the backlog.
            try await eventually("the consumer to be busy", timeout: .seconds(30)) { stack.deliveries.count >= 20 }
            first.process.terminate()
            let ending = try await first.waitForExit()
            #expect(ending.reason == .exit && ending.status == 0, "SIGTERM must end in a clean exit")
            #expect(first.log.contains("consumer stopped cleanly"))
            let doneByFirst = stack.deliveries.count
            #expect(doneByFirst < ids.count, "the test must stop the consumer mid-stream")
            // The sync status is written in batches: what the stopped process finished was written before it
            // exited (nothing else writes it now), one count per command whose result it published.
            let synced = Int(try await stack.redis.hashGetAll(RedisKeys.sync(account))["succeeded"] ?? "0") ?? 0
            #expect(synced > 0)
            try await eventually("the first consumer's results to equal its sync count", timeout: .seconds(10)) {
                ids.filter { !stack.results(for: $0).isEmpty }.count == synced
            }

            _ = try stack.startConsumer(concurrency: 8)
            try await stack.waitForCollected(ids.count, timeout: .seconds(90))
            for id in ids { #expect(stack.results(for: id).count == 1, "\(id): exactly one result") }
            #expect(stack.deadLetters.isEmpty)
        }
    }
}
