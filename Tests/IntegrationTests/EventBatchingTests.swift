import AMQP
import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// `event.track` batching end to end (docs/operations.md, "Batching"): a burst of commands of one account reaches
/// klaviyo-sim in far fewer calls, every command still gets its own result, and the simulator holds each event once.
@Suite("Event batching end to end", .timeLimit(.minutes(3)))
struct EventBatchingTests {
    static let count = 300

    /// Queues `count` event.track commands of one account, then starts a consumer and waits for all results. Returns the
    /// account and the Klaviyo calls the simulator recorded for it.
    func burst(
        _ stack: RelayStack, environment: [String: String]
    ) async throws -> (account: String, ids: [String], calls: [JSONValue]) {
        let (account, _) = try await stack.connectAccount()
        let ids = (0..<Self.count).map { stack.id("burst-\($0)") }
        for (index, id) in ids.enumerated() {
            let payload: JSONValue = [
                "metric": "Viewed Product", "profile": ["email": .string("burst\(index % 20)@example.com")],
                "properties": ["index": .int(Int64(index))],
            ]
            try await stack.publish(
                commandBody(id: id, type: "event.track", accountID: account, payload: payload),
                routingKey: "event.track", messageID: id)
        }
        // The burst is queued before the consumer starts, so it arrives 64 at a time however slowly this
        // machine publishes (a loaded machine would otherwise trickle them in, one window each).
        _ = try stack.startConsumer(concurrency: 64, environment: environment)
        try await eventually("\(Self.count) results", timeout: .seconds(90)) {
            stack.deliveries.filter { $0.routingKey.hasPrefix("event.track.") }.count >= Self.count
                || !stack.deadLetters.isEmpty
        }
        #expect(stack.deadLetters.isEmpty, "no command may be dead-lettered")
        let byCommand = stack.resultsByCommand()
        for id in ids {
            let results = byCommand[id] ?? []
            #expect(results.count == 1, "\(id): one result")
            let result = try #require(results.first)
            #expect(result.outcome == .succeeded)
            #expect(result.klaviyo?.status == 202)
            #expect(result.klaviyo?.data?["unique_id"] == .string("relay-\(id)"))
        }
        for delivery in stack.deliveries where delivery.routingKey.hasPrefix("event.track.") {
            try ContractValidator.validateResult(try JSONValue.parse(delivery.body))
        }
        let events = try await stack.simAdmin(.GET, "/_sim/accounts/\(account)/events")["events"]?.arrayValue ?? []
        #expect(events.count == Self.count, "one event per command")
        #expect(Set(events.compactMap { $0["unique_id"]?.stringValue }) == Set(ids.map { "relay-\($0)" }))
        let calls = try await stack.klaviyoRequests(account: account).filter {
            $0["method"] == "POST"
                && ["/api/events", "/api/event-bulk-create-jobs"].contains($0["path"]?.stringValue ?? "")
        }
        return (account, ids, calls)
    }

    @Test func aBurstOfOneAccountsEventsIsCoalescedIntoBulkCalls() async throws {
        try await withRelayStack { stack in
            let (_, ids, calls) = try await burst(stack, environment: ["RELAY_BATCH_WINDOW": "100ms"])
            let bulk = calls.filter { $0["path"] == "/api/event-bulk-create-jobs" }.count
            let single = calls.filter { $0["path"] == "/api/events" }.count
            print("event batching: \(ids.count) event.track commands -> \(bulk) bulk + \(single) single calls")
            #expect(bulk >= 1)
            #expect(bulk + single <= ids.count / 5, "\(bulk) bulk + \(single) single calls for \(ids.count) events")
            let byCommand = stack.resultsByCommand()
            let batched = ids.compactMap { byCommand[$0]?.first?.klaviyo?.data?["batched"] }
            #expect(batched.count + single == ids.count, "every command sent in bulk says so")
        }
    }

    @Test func withoutABatchWindowEveryEventIsItsOwnCall() async throws {
        try await withRelayStack { stack in
            let (_, ids, calls) = try await burst(stack, environment: ["RELAY_BATCH_WINDOW": "0"])
            #expect(calls.count == ids.count)
            #expect(calls.allSatisfy { $0["path"] == "/api/events" })
            #expect(ids.allSatisfy { stack.results(for: $0).first?.klaviyo?.data?["batched"] == nil })
        }
    }
}
