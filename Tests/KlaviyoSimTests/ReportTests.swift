import Foundation
import HTTPTypes
import KlaviyoSimCore
import Testing

/// The Reporting API's values reports: rows for sent campaigns and live flows, numbers stable across calls,
/// conversions from the account's recorded events, and the 400/404 answers the spec describes.
@Suite("Values reports")
struct ReportTests {
    static func report(
        _ kind: String, statistics: [String], metric: String, timeframe: String = #"{"key":"last_30_days"}"#,
        extra: String = ""
    ) -> String {
        let list = statistics.map { "\"\($0)\"" }.joined(separator: ",")
        return
            #"{"data":{"type":"\#(kind)-values-report","attributes":{"statistics":[\#(list)],"timeframe":\#(timeframe),"conversion_metric_id":"\#(metric)"\#(extra)}}}"#
    }

    /// Tracks a Placed Order event of `value` now and returns the metric's id (from the admin API).
    static func placeOrder(_ c: SimClient, email: String, value: Double, uniqueID: String) async throws -> String {
        let event = try await c.call(
            .post, "/api/events",
            body:
                #"{"data":{"type":"event","attributes":{"properties":{},"value":\#(value),"unique_id":"\#(uniqueID)","metric":{"data":{"type":"metric","attributes":{"name":"Placed Order"}}},"profile":{"data":{"type":"profile","attributes":{"email":"\#(email)"}}}}}}"#
        )
        #expect(event.status == 202)
        let metrics = try await c.admin(.get, "/_sim/accounts/acct_1/metrics")
        let metric = try #require(metrics.json?["metrics"]?.arrayValue?.first { $0["name"] == "Placed Order" })
        return try #require(metric["id"]?.stringValue)
    }

    /// Creates and sends a campaign; returns its id and its message's id.
    static func sentCampaign(_ c: SimClient) async throws -> (String, String) {
        let created = try await c.call(
            .post, "/api/campaigns",
            body:
                #"{"data":{"type":"campaign","attributes":{"name":"Sale","audiences":{"included":["L1"]},"send_strategy":{"method":"immediate"},"campaign-messages":{"data":[{"type":"campaign-message","attributes":{"definition":{"channel":"email","label":"Main","content":{"subject":"Hi","from_email":"s@example.com","from_label":"S"}}}}]}}}}"#
        )
        #expect(created.status == 201)
        let id = try #require(created.json?["data"]?["id"]?.stringValue)
        let message = try #require(
            created.json?["data"]?["relationships"]?["campaign-messages"]?["data"]?.arrayValue?.first?["id"]?
                .stringValue)
        let sent = try await c.call(
            .post, "/api/campaign-send-jobs", body: #"{"data":{"type":"campaign-send-job","id":"\#(id)"}}"#)
        #expect(sent.status == 202)
        return (id, message)
    }

    @Test func campaignReportCoversSentCampaignsWithStableNumbersAndRecordedConversions() async throws {
        try await SimHarness().run { c in
            let metric = try await Self.placeOrder(c, email: "a@example.com", value: 30, uniqueID: "o1")
            _ = try await Self.placeOrder(c, email: "b@example.com", value: 12.5, uniqueID: "o2")
            let (campaign, message) = try await Self.sentCampaign(c)
            // A draft campaign is not reported (nothing was sent).
            let draft = try await c.call(
                .post, "/api/campaigns",
                body:
                    #"{"data":{"type":"campaign","attributes":{"name":"Draft","audiences":{"included":["L1"]},"campaign-messages":{"data":[{"type":"campaign-message","attributes":{"definition":{"channel":"email","label":"D","content":{"subject":"D","from_email":"s@example.com","from_label":"S"}}}}]}}}}"#
            )
            #expect(draft.status == 201)
            let body = Self.report(
                "campaign",
                statistics: [
                    "recipients", "delivered", "opens_unique", "open_rate", "conversions", "conversion_value",
                    "conversion_uniques",
                ], metric: metric)
            let first = try await c.call(.post, "/api/campaign-values-reports", body: body)
            #expect(first.status == 200)
            #expect(first.json?["data"]?["type"] == "campaign-values-report")
            let results = try #require(first.json?["data"]?["attributes"]?["results"]?.arrayValue)
            #expect(results.count == 1)
            let row = try #require(results.first)
            #expect(
                row["groupings"] == [
                    "campaign_id": .string(campaign), "campaign_message_id": .string(message), "send_channel": "email",
                ])
            let statistics = try #require(row["statistics"]?.objectValue)
            #expect(statistics.count == 7, "exactly the statistics asked for")
            let recipients = try #require(statistics["recipients"]?.intValue)
            let delivered = try #require(statistics["delivered"]?.intValue)
            let opens = try #require(statistics["opens_unique"]?.intValue)
            #expect(recipients >= 200 && delivered <= recipients && opens <= delivered)
            guard case .double(let openRate)? = statistics["open_rate"] else {
                Issue.record("open_rate is not a fraction: \(String(describing: statistics["open_rate"]))")
                return
            }
            #expect(abs(openRate - Double(opens) / Double(delivered)) < 0.0001)
            #expect(statistics["conversions"] == 2, "both orders, the only row gets both")
            #expect(statistics["conversion_value"] == .double(42.5))
            #expect(statistics["conversion_uniques"] == 2)
            #expect(
                first.json?["data"]?["relationships"]?["campaigns"]?["data"]
                    == [["type": "campaign", "id": .string(campaign)]])
            let second = try await c.call(.post, "/api/campaign-values-reports", body: body)
            #expect(second.json == first.json, "the same numbers on every call")

            // Orders outside a custom timeframe are not conversions.
            let past = try await c.call(
                .post, "/api/campaign-values-reports",
                body: Self.report(
                    "campaign", statistics: ["conversions"], metric: metric,
                    timeframe: #"{"start":"2020-01-01T00:00:00Z","end":"2020-02-01T00:00:00Z"}"#))
            #expect(
                past.json?["data"]?["attributes"]?["results"]?.arrayValue?.first?["statistics"] == ["conversions": 0])
        }
    }

    @Test func filtersAndGroupingsNarrowTheRows() async throws {
        try await SimHarness().run { c in
            let metric = try await Self.placeOrder(c, email: "a@example.com", value: 1, uniqueID: "o1")
            let (first, _) = try await Self.sentCampaign(c)
            let (second, _) = try await Self.sentCampaign(c)
            let all = try await c.call(
                .post, "/api/campaign-values-reports",
                body: Self.report("campaign", statistics: ["opens"], metric: metric))
            #expect(all.json?["data"]?["attributes"]?["results"]?.arrayValue?.count == 2)
            let one = try await c.call(
                .post, "/api/campaign-values-reports",
                body: Self.report(
                    "campaign", statistics: ["opens"], metric: metric,
                    extra:
                        #","filter":"and(equals(campaign_id,\"\#(second)\"),contains-any(send_channel,[\"email\",\"sms\"]))","group_by":["campaign_id","campaign_message_id"]"#
                ))
            #expect(one.status == 200)
            let rows = one.json?["data"]?["attributes"]?["results"]?.arrayValue ?? []
            #expect(rows.count == 1)
            #expect(rows.first?["groupings"]?["campaign_id"] == .string(second))
            #expect(rows.first?["groupings"]?["send_channel"] == nil, "not grouped by channel")
            #expect(rows.first?["groupings"]?["campaign_id"] != .string(first))
            let sms = try await c.call(
                .post, "/api/campaign-values-reports",
                body: Self.report(
                    "campaign", statistics: ["opens"], metric: metric,
                    extra: #","filter":"equals(send_channel,\"sms\")""#))
            #expect(sms.json?["data"]?["attributes"]?["results"] == [])
        }
    }

    @Test func flowReportCoversLiveFlowsOnly() async throws {
        try await SimHarness().run { c in
            let metric = try await Self.placeOrder(c, email: "a@example.com", value: 5, uniqueID: "o1")
            let body = Self.report("flow", statistics: ["recipients", "click_rate"], metric: metric)
            let none = try await c.call(.post, "/api/flow-values-reports", body: body)
            #expect(none.status == 200)
            #expect(none.json?["data"]?["attributes"]?["results"] == [], "the seeded flows are drafts")
            let flows = try await c.call(.get, "/api/flows")
            let flow = try #require(flows.json?["data"]?.arrayValue?.first?["id"]?.stringValue)
            let patched = try await c.call(
                .patch, "/api/flows/\(flow)",
                body: #"{"data":{"type":"flow","id":"\#(flow)","attributes":{"status":"live"}}}"#)
            #expect(patched.status == 200)
            let live = try await c.call(.post, "/api/flow-values-reports", body: body)
            let rows = live.json?["data"]?["attributes"]?["results"]?.arrayValue ?? []
            #expect(rows.count == 1)
            #expect(rows.first?["groupings"]?["flow_id"] == .string(flow))
            let messageID = try #require(rows.first?["groupings"]?["flow_message_id"]?.stringValue)
            #expect(
                live.json?["data"]?["relationships"]?["flow-messages"]?["data"]
                    == [["type": "flow-message", "id": .string(messageID)]])
            #expect(rows.first?["statistics"]?["recipients"]?.intValue ?? 0 >= 200)
        }
    }

    @Test func invalidReportsAreRefusedAsTheSpecDescribes() async throws {
        try await SimHarness().run { c in
            let metric = try await Self.placeOrder(c, email: "a@example.com", value: 5, uniqueID: "o1")
            let cases: [(String, String, Int, String?)] = [
                (
                    "/api/campaign-values-reports", Self.report("campaign", statistics: ["revenue"], metric: metric),
                    400,
                    nil
                ),
                (
                    "/api/campaign-values-reports", Self.report("campaign", statistics: [], metric: metric), 400,
                    "/data/attributes/statistics"
                ),
                (
                    "/api/flow-values-reports",
                    Self.report("flow", statistics: ["opens"], metric: metric, timeframe: #"{"key":"last_2_days"}"#),
                    400,
                    nil
                ),
                (
                    "/api/flow-values-reports",
                    Self.report(
                        "flow", statistics: ["opens"], metric: metric,
                        timeframe: #"{"start":"2026-02-01T00:00:00Z","end":"2026-01-01T00:00:00Z"}"#), 400,
                    "/data/attributes/timeframe"
                ),
                (
                    "/api/flow-values-reports",
                    Self.report(
                        "flow", statistics: ["opens"], metric: metric,
                        timeframe: #"{"start":"2020-01-01T00:00:00Z","end":"2026-01-01T00:00:00Z"}"#), 400,
                    "/data/attributes/timeframe"
                ),
                (
                    "/api/flow-values-reports",
                    Self.report(
                        "flow", statistics: ["opens"], metric: metric, extra: #","filter":"equals(campaign_id,\"x\")""#),
                    400, "/data/attributes/filter"
                ),
                (
                    "/api/flow-values-reports",
                    Self.report(
                        "flow", statistics: ["opens"], metric: metric,
                        extra: #","filter":"or(equals(flow_id,\"a\"),equals(flow_id,\"b\"))""#), 400,
                    "/data/attributes/filter"
                ),
                (
                    "/api/campaign-values-reports",
                    Self.report(
                        "campaign", statistics: ["opens"], metric: metric, extra: #","group_by":["campaign_id"]"#), 400,
                    "/data/attributes/group_by"
                ),
                (
                    "/api/campaign-values-reports", Self.report("campaign", statistics: ["opens"], metric: "NOPE42"),
                    404,
                    nil
                ),
            ]
            for (path, body, status, pointer) in cases {
                let response = try await c.call(.post, path, body: body)
                #expect(response.status == status, "\(body)")
                if let pointer {
                    #expect(response.firstError?["source"]?["pointer"]?.stringValue == pointer, "\(body)")
                }
            }
        }
    }
}
