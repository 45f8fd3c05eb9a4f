import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

extension ProfileCoalescingTests {
    /// An upsert that cannot be coalesced (here: it clears a field with a `null`) of a profile whose earlier
    /// upsert waits in a batch waits for that batch's job, then goes out singly: the older upsert never lands
    /// after it. (It went out at once and the job applied the older upsert over it: `first_name` ended "First".)
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
            #expect(outcomes(stack)[firstID] == ["succeeded"])
            #expect(outcomes(stack)[secondID] == ["succeeded"])
            let profiles = try await stack.simAdmin(.GET, "/_sim/accounts/\(account)/profiles")
            #expect(profiles["count"] == 1)
            #expect(profiles["profiles"]?.arrayValue?.first?["attributes"]?["first_name"] == "Second")
        }
    }

    /// The waiting upsert keeps its place for newer ones too: a coalescable upsert published while it waits joins
    /// a batch that is submitted only after the waiting upsert's single call has its outcome (a barrier that
    /// only waited, without taking the identifiers, would let that newer batch go first and the older single call
    /// land over it: `first_name` "Second").
    @Test func aNewerUpsertDoesNotOvertakeAWaitingUncoalescableOne() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            _ = try stack.startConsumer(environment: Self.coalescing)
            try await stack.waitForConsumers(1)
            let email = "barrier.\(UUID().uuidString.prefix(6).lowercased())@example.com"
            let ids = (1...3).map { stack.id("barrier-\($0)") }
            let member = { (id: String) in RedisKeys.coalescing(account) + "member:" + id }
            try await publishUpsert(
                stack, account: account, id: ids[0], profile: ["email": .string(email), "first_name": "First"])
            try await eventually("the first upsert joined a batch", timeout: .seconds(20)) {
                try await stack.redis.send(["EXISTS", member(ids[0])]).int == 1
            }
            try await publishUpsert(
                stack, account: account, id: ids[1],
                profile: ["email": .string(email), "first_name": "Second", "last_name": .null])
            try await eventually("the uncoalescable upsert waits in a barrier", timeout: .seconds(20)) {
                try await stack.redis.send(["EXISTS", member(ids[1])]).int == 1
            }
            try await publishUpsert(
                stack, account: account, id: ids[2], profile: ["email": .string(email), "first_name": "Third"])
            try await stack.waitForCollected(3, timeout: .seconds(90))
            let byID = outcomes(stack)
            #expect(ids.allSatisfy { byID[$0] == ["succeeded"] }, "\(byID)")
            let profiles = try await stack.simAdmin(.GET, "/_sim/accounts/\(account)/profiles")
            #expect(profiles["count"] == 1)
            #expect(profiles["profiles"]?.arrayValue?.first?["attributes"]?["first_name"] == "Third")
            // The newer upsert went through a bulk import job, not singly ahead of the barrier.
            #expect(try await stack.redis.send(["EXISTS", member(ids[2])]).int == 1)
        }
    }
}
