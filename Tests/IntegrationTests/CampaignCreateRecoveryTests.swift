import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// `campaign.create` is not idempotent at Klaviyo (a second POST is a second campaign), yet duplicates must be
/// harmless: an attempt after one that may have reached Klaviyo looks for the campaign that attempt created and
/// adopts it. A first attempt never looks, so two commands asking for the same campaign get one each.
@Suite("Campaign create after an ambiguous attempt", .timeLimit(.minutes(3)))
struct CampaignCreateRecoveryTests {
    /// Killed right after Klaviyo created the campaign, before anything was recorded: the redelivery finds that
    /// campaign, creates no second one, and publishes exactly one result that names it.
    @Test func killedAfterTheKlaviyoCallAdoptsTheCampaignInsteadOfCreatingASecond() async throws {
        try await withRelayStack { stack in
            let (account, apiKey) = try await stack.connectAccount()
            let id = stack.id("cc-crash")
            let name = "Crash \(id)"
            let doomed = try stack.startConsumer(
                environment: CrashRecoveryTests().crashEnvironment("after_klaviyo_call", commandID: id))
            try await stack.waitForConsumers(1, queue: .campaigns)
            try await stack.publish(
                campaignCreateBody(id: id, accountID: account, name: name), routingKey: "campaign.create",
                messageID: id)
            let ending = try await doomed.waitForExit()
            #expect(ending.reason == .uncaughtSignal && ending.status == SIGKILL)
            #expect(stack.deliveries.isEmpty, "nothing was published before the crash")
            let created = try await stack.campaigns(named: name, apiKey: apiKey)
            #expect(created.count == 1, "Klaviyo created the campaign before the crash")
            let campaignID = try #require(created.first?["id"]?.stringValue)

            _ = try stack.startConsumer()
            try await stack.waitForCollected(1)
            let result = try #require(stack.results(for: id).first)
            #expect(result.outcome == .succeeded)
            #expect(result.klaviyo?.ids == [campaignID])
            #expect(result.klaviyo?.data?["found_after_ambiguous_create"] == true)
            #expect(result.klaviyo?.data?["status"] == "Draft")
            let messageIDs =
                (created.first?["relationships"]?["campaign-messages"]?["data"]?.arrayValue ?? []).compactMap {
                    $0["id"]
                }
            #expect(messageIDs.count == 1)
            #expect(result.klaviyo?.data?["message_ids"] == .array(messageIDs))
            #expect(try await stack.campaigns(named: name, apiKey: apiKey).count == 1, "no second campaign")
            let calls = try await stack.relayCampaignCalls(account: account)
            #expect(calls.filter { $0 == "POST" }.count == 1)
            #expect(calls.filter { $0 == "GET" }.count >= 1, "the redelivery looked first")
            // The redelivery finished (its done marker says published) and no second result followed.
            try await eventually("the done marker says published", timeout: .seconds(20)) {
                try await stack.redis.hashGetAll(RedisKeys.idempotency(account, id))["published"] == "1"
            }
            #expect(stack.results(for: id).count == 1)
        }
    }

    /// The lookup happens only after an attempt that may have reached Klaviyo: two fresh commands asking for a
    /// campaign of the same name and audiences create two campaigns, without looking.
    @Test func freshCommandsWithTheSameNameCreateOneCampaignEach() async throws {
        try await withRelayStack { stack in
            let (account, apiKey) = try await stack.connectAccount()
            _ = try stack.startConsumer()
            try await stack.waitForConsumers(1, queue: .campaigns)
            let name = "Twice \(stack.id("cc-fresh"))"
            let ids = [stack.id("cc-fresh-1"), stack.id("cc-fresh-2")]
            // One after the other: a lookup by the second would find the first one's campaign.
            for (index, id) in ids.enumerated() {
                try await stack.publish(
                    campaignCreateBody(id: id, accountID: account, name: name), routingKey: "campaign.create",
                    messageID: id)
                try await stack.waitForCollected(index + 1)
            }
            let results = ids.compactMap { stack.results(for: $0).first }
            #expect(results.count == 2)
            #expect(results.allSatisfy { $0.outcome == .succeeded && $0.klaviyo?.status == 201 })
            #expect(results.allSatisfy { $0.klaviyo?.data?["found_after_ambiguous_create"] == nil })
            let campaigns = try await stack.campaigns(named: name, apiKey: apiKey)
            #expect(campaigns.count == 2)
            #expect(
                Set(results.flatMap { $0.klaviyo?.ids ?? [] }) == Set(campaigns.compactMap { $0["id"]?.stringValue }))
            #expect(try await stack.relayCampaignCalls(account: account) == ["POST", "POST"], "no lookup")
        }
    }
}

extension RetryTierTests {
    /// Klaviyo created the campaign but answered 500 (an ambiguous failure): the command is retried through a
    /// tier (campaign.create counts as idempotent since it looks first), the retry finds the campaign and adopts
    /// it. Before the lookup, this ended as a dead letter. Here, with the suite's other fault tests, because
    /// klaviyo-sim has one fault configuration.
    @Test func anAmbiguousFailureOfCampaignCreateIsRetriedAndAdoptsTheCampaign() async throws {
        try await withRelayStack { stack in
            let (account, apiKey) = try await stack.connectAccount()
            _ = try stack.startConsumer(environment: fastRetries)
            try await stack.waitForConsumers(1, queue: .campaigns)
            try await stack.setFaults([
                "fail_after_apply_rate": 1.0, "account_id": .string(account), "paths": ["/api/campaigns"],
            ])
            let id = stack.id("cc-500")
            let name = "Ambiguous \(id)"
            try await stack.publish(
                campaignCreateBody(id: id, accountID: account, name: name), routingKey: "campaign.create",
                messageID: id)
            try await eventually("the create answered 500 after it was applied", timeout: .seconds(30)) {
                try await stack.klaviyoRequests(account: account).contains {
                    $0["method"] == "POST" && $0["path"] == "/api/campaigns" && $0["status"] == 500
                }
            }
            try await stack.clearFaults()
            try await stack.waitForCollected(1)
            #expect(stack.deadLetters.isEmpty, "retried, not dead-lettered")
            let result = try #require(stack.results(for: id).first)
            #expect(result.outcome == .succeeded)
            #expect(result.attempts >= 2)
            #expect(result.klaviyo?.data?["found_after_ambiguous_create"] == true)
            let campaigns = try await stack.campaigns(named: name, apiKey: apiKey)
            #expect(campaigns.count == 1, "no second campaign")
            #expect(result.klaviyo?.ids == campaigns.compactMap { $0["id"]?.stringValue })
            #expect(try await stack.relayCampaignCalls(account: account).filter { $0 == "POST" }.count == 1)
        }
    }
}

extension RetryTierTests {
    /// The same ambiguous 500, with no retry left: the command is dead-lettered; replayed (`dlq replay`, which
    /// marks the replay with `x-replay-id`), it looks first and adopts the campaign instead of creating another.
    @Test func aReplayedCampaignCreateAdoptsTheCampaignItsDeadLetteredAttemptCreated() async throws {
        try await withRelayStack { stack in
            let (account, apiKey) = try await stack.connectAccount()
            var environment = fastRetries
            environment["RELAY_MAX_ATTEMPTS"] = "1"
            _ = try stack.startConsumer(environment: environment)
            try await stack.waitForConsumers(1, queue: .campaigns)
            try await stack.setFaults([
                "fail_after_apply_rate": 1.0, "account_id": .string(account), "paths": ["/api/campaigns"],
            ])
            let id = stack.id("cc-replay")
            let name = "Replayed \(id)"
            try await stack.publish(
                campaignCreateBody(id: id, accountID: account, name: name), routingKey: "campaign.create",
                messageID: id)
            try await stack.waitForCollected(1)
            try await stack.clearFaults()
            #expect(stack.deadLetters.first?.properties.headers["x-relay-error-code"] == .string("retries_exhausted"))
            #expect(try await stack.campaigns(named: name, apiKey: apiKey).count == 1, "the attempt created it")

            let replay = try await stack.run(["dlq", "replay", "--id", id])
            #expect(replay.status == 0, "\(replay.stdout) \(replay.stderr)")
            try await stack.waitForCollected(2)
            let result = try #require(stack.results(for: id).first)
            #expect(result.outcome == .succeeded)
            #expect(result.klaviyo?.data?["found_after_ambiguous_create"] == true)
            let campaigns = try await stack.campaigns(named: name, apiKey: apiKey)
            #expect(campaigns.count == 1, "no second campaign")
            #expect(result.klaviyo?.ids == campaigns.compactMap { $0["id"]?.stringValue })
        }
    }
}

/// A `campaign.create` command created now (its `created_at` bounds the lookup).
func campaignCreateBody(id: String, accountID: String, name: String) -> [UInt8] {
    JSONValue.object([
        "id": .string(id), "type": "campaign.create", "account_id": .string(accountID),
        "created_at": .string(Timestamp.now()),
        "payload": [
            "name": .string(name), "audiences": ["included": ["Y6nRLr"]],
            "message": ["subject": "Deals", "from_email": "store@example.com", "from_label": "Store"],
        ],
    ]).jsonBytes()
}

extension RelayStack {
    /// The account's email campaigns named exactly `name`, read from klaviyo-sim with the account's key.
    func campaigns(named name: String, apiKey: String) async throws -> [JSONValue] {
        let klaviyo = KlaviyoClient(
            baseURL: IntegrationEnvironment.simURL, transport: http, userAgent: "integration-tests",
            logger: IntegrationEnvironment.logger)
        let response = try await klaviyo.send(
            KlaviyoRequest(
                operationID: "get_campaigns", method: "GET", path: "/api/campaigns",
                query: [("filter", "equals(messages.channel,'email')")], isIdempotent: true),
            credential: .apiKey(apiKey))
        return (response.data?.arrayValue ?? []).filter { $0["attributes"]?["name"]?.stringValue == name }
    }

    /// The methods of the relay's calls to `/api/campaigns` for the account, in order (the tests' own reads left
    /// out).
    func relayCampaignCalls(account: String) async throws -> [String] {
        try await klaviyoRequests(account: account).filter {
            $0["path"] == "/api/campaigns"
                && $0["headers"]?["user-agent"]?.stringValue?.hasPrefix("klaviyo-relay") == true
        }.compactMap { $0["method"]?.stringValue }
    }
}
