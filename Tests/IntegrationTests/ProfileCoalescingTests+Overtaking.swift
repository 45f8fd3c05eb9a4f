import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

extension ProfileCoalescingTests {
    /// An upsert that cannot be coalesced (here: it clears a field with a `null`) of a profile whose earlier
    /// upsert waits in a batch goes out singly at once and overtakes it: the batch's job then applies the older
    /// upsert over the newer one (measured: `first_name` ends "First"). A KNOWN ISSUE, not fixed yet: the single
    /// path (`CommandExecutor.upsertProfile`) never asks the coalescer, and a fix that only waited for the
    /// identifiers' batches would let later coalesced upserts of the profile overtake it instead; it must take
    /// its place in the identifiers' order of batches (a barrier). Remove `withKnownIssue` once it does.
    @Test func anUncoalescableUpsertDoesNotOvertakeAnEarlierBatchedOne() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            _ = try stack.startConsumer(environment: Self.coalescing)
            try await stack.waitForConsumers(1)
            let email = "overtake.\(UUID().uuidString.prefix(6).lowercased())@example.com"
            let firstID = stack.id("overtake-1")
            let secondID = stack.id("overtake-2")
            try await publishUpsert(
                stack, account: account, id: firstID, profile: ["email": .string(email), "first_name": "First"])
            try await eventually("the first upsert joined a batch", timeout: .seconds(20)) {
                try await stack.redis.send(["EXISTS", RedisKeys.coalescing(account) + "member:" + firstID]).int == 1
            }
            try await publishUpsert(
                stack, account: account, id: secondID,
                profile: ["email": .string(email), "first_name": "Second", "last_name": .null])
            try await stack.waitForCollected(2, timeout: .seconds(60))
            let profiles = try await stack.simAdmin(.GET, "/_sim/accounts/\(account)/profiles")
            #expect(profiles["count"] == 1)
            withKnownIssue("an uncoalescable upsert overtakes an earlier batched upsert of its profile") {
                #expect(profiles["profiles"]?.arrayValue?.first?["attributes"]?["first_name"] == "Second")
            }
        }
    }
}
