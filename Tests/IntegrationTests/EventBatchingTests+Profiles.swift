import Klaviyo
import Relay
import Testing

/// A bulk event job carries each profile once, with its events under it. Swift's `String` equality is Unicode
/// canonical equivalence, so grouping by the profile dictionary put two commands whose identifiers differ only in
/// normalization (`café` precomposed, `cafe` + U+0301) under ONE profile: the second command's event went to
/// Klaviyo, which compares identifiers as they are written, as an event of the first command's profile.
extension EventBatchingTests {
    @Test func eventsOfProfilesThatDifferOnlyInNormalizationStayWithTheirOwnProfile() async throws {
        try await withRelayStack { stack in
            let (account, apiKey) = try await stack.connectAccount()
            let klaviyo = KlaviyoClient(
                baseURL: IntegrationEnvironment.simURL, transport: stack.http, userAgent: "integration-tests",
                logger: IntegrationEnvironment.logger)
            let batcher = EventBatcher(window: .milliseconds(200), pace: nil, logger: IntegrationEnvironment.logger)
            let composed = "caf\u{E9}-\(stack.prefix)"
            let decomposed = "cafe\u{301}-\(stack.prefix)"
            #expect(composed == decomposed, "Swift compares them as equal")
            #expect(Array(composed.utf8) != Array(decomposed.utf8), "their bytes differ")
            let now = String(Timestamp.format(seconds: Int(Timestamp.nowSeconds())).prefix(19)) + "Z"
            let events = [
                KlaviyoEvent(
                    metric: "Viewed Product", profile: ["external_id": .string(composed)], properties: [:],
                    time: now, uniqueID: "composed-\(stack.prefix)"),
                KlaviyoEvent(
                    metric: "Viewed Product", profile: ["external_id": .string(decomposed)], properties: [:],
                    time: now, uniqueID: "decomposed-\(stack.prefix)"),
            ]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for event in events {
                    group.addTask {
                        let delivery = try await batcher.submit(
                            event, accountID: account, credential: .apiKey(apiKey), client: klaviyo)
                        guard case .batched(202, 2) = delivery else {
                            Issue.record("both events in one bulk call: \(delivery)")
                            return
                        }
                    }
                }
                try await group.waitForAll()
            }
            let bulk = try #require(
                try await stack.klaviyoRequests(account: account).first {
                    $0["path"] == "/api/event-bulk-create-jobs"
                })
            let groups =
                bulk["body"]?["data"]?["attributes"]?["events-bulk-create"]?["data"]?.arrayValue ?? []
            var profileBytesOfEvent: [String: [UInt8]] = [:]
            for group in groups {
                let attributes = group["attributes"]
                let externalID = attributes?["profile"]?["data"]?["attributes"]?["external_id"]?.stringValue ?? ""
                for event in attributes?["events"]?["data"]?.arrayValue ?? [] {
                    let uniqueID = event["attributes"]?["unique_id"]?.stringValue ?? ""
                    profileBytesOfEvent[uniqueID] = Array(externalID.utf8)
                }
            }
            #expect(groups.count == 2, "one group per profile as written")
            #expect(profileBytesOfEvent["composed-\(stack.prefix)"] == Array(composed.utf8))
            #expect(profileBytesOfEvent["decomposed-\(stack.prefix)"] == Array(decomposed.utf8))
        }
    }
}
