import AMQP
import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// `campaign.report` and `flow.report` end to end: real broker, Redis, klaviyo-sim and a `klaviyo-relay consume`
/// process. The numbers in the results are the simulator's, and the conversions come from an event tracked
/// through the relay first; an invalid report is a dead letter that never reaches Klaviyo.
@Suite("Report commands end to end", .timeLimit(.minutes(3)))
struct ReportCommandsTests {
    /// Publishes one command and waits for its result (or dead letter).
    func publishAndWait(
        _ stack: RelayStack, _ account: String, _ type: String, id: String, _ payload: JSONValue
    )
        async throws
    {
        try await stack.publish(
            commandBody(id: id, type: type, accountID: account, payload: payload), routingKey: type, messageID: id)
        try await eventually("the outcome of \(id)", timeout: .seconds(30)) {
            !stack.results(for: id).isEmpty || stack.deadLetters.contains { $0.properties.messageID == id }
        }
    }

    func succeeded(
        _ stack: RelayStack, _ account: String, _ type: String, id: String, _ payload: JSONValue
    ) async throws -> CommandResult {
        try await publishAndWait(stack, account, type, id: id, payload)
        if let dead = stack.deadLetters.first(where: { $0.properties.messageID == id }) {
            Issue.record(
                "\(type) was dead-lettered: \(dead.properties.headers[DeadLetter.Header.errorDetail].map { "\($0)" } ?? "")"
            )
        }
        let result = try #require(stack.results(for: id).first)
        let delivery = try #require(stack.deliveries.first { $0.properties.messageID == id })
        try ContractValidator.validateResult(try JSONValue.parse(delivery.body))
        #expect(result.outcome == .succeeded, "\(type): \(result)")
        return result
    }

    @Test func campaignAndFlowReportsCarryKlaviyosNumbers() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            _ = try stack.startConsumer()
            for queue in RelayQueue.allCases { try await stack.waitForConsumers(1, queue: queue) }

            // A conversion, tracked through the relay: Klaviyo creates the Placed Order metric.
            let email = "rep.\(UUID().uuidString.prefix(6).lowercased())@example.com"
            _ = try await succeeded(
                stack, account, "event.track", id: stack.id("order"),
                [
                    "metric": "Placed Order", "profile": ["email": .string(email)], "value": 42.5,
                    "unique_id": "order-1", "time": .string(Timestamp.now()),
                ])
            let metrics = try await stack.simAdmin(.GET, "/_sim/accounts/\(account)/metrics")["metrics"]?.arrayValue
            let metricID = try #require(metrics?.first { $0["name"] == "Placed Order" }?["id"]?.stringValue)

            // A sent campaign to report on.
            let list = try await succeeded(stack, account, "list.create", id: stack.id("list"), ["name": "Buyers"])
            let created = try await succeeded(
                stack, account, "campaign.create", id: stack.id("campaign"),
                [
                    "name": "Winter sale", "audiences": ["included": [.string(try #require(list.klaviyo?.ids.first))]],
                    "message": ["subject": "Sale", "from_email": "store@example.com", "from_label": "Store"],
                ])
            let campaignID = try #require(created.klaviyo?.ids.first)
            _ = try await succeeded(
                stack, account, "campaign.send", id: stack.id("send"), ["campaign_id": .string(campaignID)])

            let campaignReport = try await succeeded(
                stack, account, "campaign.report", id: stack.id("campaign-report"),
                [
                    "statistics": ["recipients", "delivered", "open_rate", "conversions", "conversion_value"],
                    "timeframe": ["key": "last_30_days"], "conversion_metric_id": .string(metricID),
                    "filter": .string(#"equals(campaign_id,"\#(campaignID)")"#),
                ])
            #expect(campaignReport.klaviyo?.ids == [campaignID])
            let data = try #require(campaignReport.klaviyo?.data)
            #expect(data["report"] == "campaign")
            #expect(data["conversion_metric_id"] == .string(metricID))
            let row = try #require(data["results"]?.arrayValue?.first)
            #expect(data["results"]?.arrayValue?.count == 1)
            #expect(row["groupings"]?["campaign_id"] == .string(campaignID))
            #expect(row["statistics"]?["conversions"] == 1)
            #expect(row["statistics"]?["conversion_value"] == 42.5)
            let recipients = row["statistics"]?["recipients"]?.doubleValue ?? 0
            #expect(recipients >= 200, "the simulator's derived numbers: \(row)")
            #expect(row["statistics"]?.objectValue?.count == 5)

            // flow.report: a flow set live through the relay.
            let flows = try await succeeded(stack, account, "flow.list", id: stack.id("flows"), [:])
            let flowID = try #require(flows.klaviyo?.ids.first)
            _ = try await succeeded(
                stack, account, "flow.update_status", id: stack.id("live"),
                ["flow_id": .string(flowID), "status": "live"])
            let flowReport = try await succeeded(
                stack, account, "flow.report", id: stack.id("flow-report"),
                [
                    "statistics": ["opens", "click_rate"],
                    "timeframe": ["start": "2026-01-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"],
                    "conversion_metric_id": .string(metricID), "group_by": ["flow_id", "flow_message_id"],
                ])
            #expect(flowReport.klaviyo?.ids == [flowID])
            let flowRow = try #require(flowReport.klaviyo?.data?["results"]?.arrayValue?.first)
            #expect(flowRow["groupings"]?["flow_id"] == .string(flowID))
            #expect(flowRow["groupings"]?["send_channel"] == nil)
            #expect(flowRow["statistics"]?["opens"]?.doubleValue != nil)

            // What Klaviyo received: the spec's request bodies at the report endpoints.
            let requests = try await stack.klaviyoRequests(account: account)
            let reports = requests.filter { ($0["path"]?.stringValue ?? "").hasSuffix("-values-reports") }
            #expect(reports.count == 2)
            #expect(reports.allSatisfy { $0["status"] == 200 })
        }
    }

    @Test func anInvalidReportIsADeadLetterAndNeverReachesKlaviyo() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            _ = try stack.startConsumer()
            try await stack.waitForConsumers(1, queue: .campaigns)
            let id = stack.id("bad-report")
            try await publishAndWait(
                stack, account, "flow.report", id: id,
                [
                    "statistics": ["opens"], "timeframe": ["key": "last_30_days"], "conversion_metric_id": "RESQ6t",
                    "filter": #"or(equals(flow_id,"a"),equals(flow_id,"b"))"#,
                ])
            let dead = try #require(stack.deadLetters.first { $0.properties.messageID == id })
            #expect(dead.properties.headers[DeadLetter.Header.errorCode]?.stringValue == "schema_invalid")
            let detail = dead.properties.headers[DeadLetter.Header.errorDetail].map { "\($0)" } ?? ""
            #expect(detail.contains("/payload/filter: only and(…) may combine filters"), "\(detail)")
            let requests = try await stack.klaviyoRequests(account: account)
            #expect(!requests.contains { ($0["path"]?.stringValue ?? "").hasSuffix("-values-reports") })
        }
    }

    /// Klaviyo allows each account 225 reports a day. With the day's 225 already spent (recorded in the account's
    /// schedule, as the relay's own calls would have left them: hours ago, so only the daily window binds), the
    /// next report is held back in the longest retry tier, never sent to be refused; other accounts report on.
    @Test func aReportBeyondTheDailyCapIsHeldBackNotSentToKlaviyo() async throws {
        try await withRelayStack { stack in
            let (capped, _) = try await stack.connectAccount()
            let (other, _) = try await stack.connectAccount()
            let operation = "query_campaign_values"
            let daily = try #require(KlaviyoRateLimits.table[operation]?.daily)
            #expect(daily == 225)
            // The day's calls, between three and two hours ago.
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            var add = ["ZADD", RedisKeys.rateLimit(capped, bucket: operation)]
            for call in 0..<daily {
                add += [String(now - 3 * 3_600_000 + Int64(call) * 10_000), "earlier-call-\(call)"]
            }
            _ = try await stack.redis.send(add)
            _ = try await stack.redis.send(["PEXPIRE", RedisKeys.rateLimit(capped, bucket: operation), "90000000"])

            let consumer = try stack.startConsumer()
            for queue in RelayQueue.allCases { try await stack.waitForConsumers(1, queue: queue) }
            // Each account's conversion metric, created by an event tracked through the relay.
            var reports: [String: JSONValue] = [:]
            for account in [capped, other] {
                _ = try await succeeded(
                    stack, account, "event.track", id: stack.id("order-\(account)"),
                    [
                        "metric": "Placed Order", "profile": ["email": "buyer@example.com"], "value": 10,
                        "time": .string(Timestamp.now()),
                    ])
                let metrics = try await stack.simAdmin(.GET, "/_sim/accounts/\(account)/metrics")["metrics"]?.arrayValue
                let metricID = try #require(metrics?.first { $0["name"] == "Placed Order" }?["id"]?.stringValue)
                reports[account] = [
                    "statistics": ["opens"], "timeframe": ["key": "last_30_days"],
                    "conversion_metric_id": .string(metricID),
                ]
            }
            let held = stack.id("over-the-cap")
            try await stack.publish(
                commandBody(
                    id: held, type: "campaign.report", accountID: capped, payload: try #require(reports[capped])),
                routingKey: "campaign.report", messageID: held)
            _ = try await succeeded(
                stack, other, "campaign.report", id: stack.id("other-account"), try #require(reports[other]))

            let retry1h = stack.topology.retryQueueName("1h")
            try await eventually("the report parked in the 1h tier", timeout: .seconds(30)) {
                try await stack.amqp.messageCount(queue: retry1h).messages == 1
            }
            let lines = consumer.log.split(separator: "\n").compactMap { try? JSONValue.parse(Array($0.utf8)) }
            let heldBack = try #require(
                lines.first { $0["msg"]?.stringValue == "held back by the rate limiter; retry scheduled" })
            #expect(heldBack["klaviyo.operation"]?.stringValue == operation)
            #expect(heldBack["retry_tier"]?.stringValue == "1h")
            // The cap frees when the first of the day's calls is a day old: 21 hours from now. Beyond the limiter's
            // horizon nothing is reserved, so the wait is shortened by up to 20 % (never lengthened).
            let wanted = Int64(heldBack["retry_wanted_ms"]?.stringValue ?? "") ?? 0
            #expect(wanted >= 16 * 3_600_000 && wanted <= 21 * 3_600_000 + 1000, "wanted \(wanted) ms")
            // Not sent, not refused, not dead-lettered: Klaviyo saw only the other account's report.
            let requests = try await stack.klaviyoRequests(account: capped)
            #expect(!requests.contains { ($0["path"]?.stringValue ?? "").hasSuffix("-values-reports") })
            #expect(stack.results(for: held).isEmpty)
            #expect(!stack.deadLetters.contains { $0.properties.messageID == held })
            let count = try await stack.redis.send(["ZCARD", RedisKeys.rateLimit(capped, bucket: operation)])
            #expect(count.int == Int64(daily), "a held-back report reserves nothing beyond the horizon")
        }
    }
}
