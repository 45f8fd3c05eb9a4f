import Klaviyo
import Logging
import Relay
import Testing

/// `campaign.report` and `flow.report`: what the decoder refuses (each a clear `schema_invalid` naming the
/// member), the exact request sent to Klaviyo's Reporting API, pagination and the result's shape.
@Suite("Report commands")
struct ReportCommandTests {
    let decoder = CommandDecoder()

    func body(_ type: String, _ payload: JSONValue) -> [UInt8] {
        JSONValue.object([
            "id": "rep-1", "type": .string(type), "account_id": "org_42", "created_at": "2026-11-29T12:00:00Z",
            "payload": payload,
        ]).jsonBytes()
    }

    func decode(_ type: String, _ payload: JSONValue) throws -> CommandEnvelope {
        switch decoder.decode(body(type, payload)) {
        case .success(let command): return command
        case .failure(let rejection):
            Issue.record("rejected: \(rejection.detail)")
            throw rejection
        }
    }

    /// The rejection detail (the code must be schema_invalid), or nil when accepted.
    func rejection(_ type: String, _ payload: JSONValue) -> String? {
        if case .failure(let rejection) = decoder.decode(body(type, payload)) {
            #expect(rejection.code == .schemaInvalid)
            #expect(rejection.commandID == "rep-1")
            return rejection.detail
        }
        return nil
    }

    static let minimal: JSONValue = [
        "statistics": ["opens", "open_rate"], "timeframe": ["key": "last_30_days"], "conversion_metric_id": "RESQ6t",
    ]

    static func with(_ key: String, _ value: JSONValue) -> JSONValue {
        var members = minimal.objectValue ?? [:]
        members[key] = value
        return .object(members)
    }

    func execute(_ command: CommandEnvelope, _ transport: ScriptedTransport) async throws -> CommandExecution {
        let client = KlaviyoClient(
            baseURL: "https://a.klaviyo.com", transport: transport, userAgent: "test", logger: Logger(label: "test"))
        return try await CommandExecutor(klaviyo: client).execute(command, credential: .apiKey("pk_test"))
    }

    @Test func bothTypesRouteToTheCampaignsQueueAndNameTheirOperation() {
        #expect(CommandType.campaignReport.queue == .campaigns)
        #expect(CommandType.flowReport.queue == .campaigns)
        #expect(CommandType.campaignReport.reportOperationID == "query_campaign_values")
        #expect(CommandType.flowReport.reportOperationID == "query_flow_values")
        #expect(CommandType.campaignGet.reportOperationID == nil)
        // The operation ids name the spec's buckets: 1/s burst, 2/min steady (and the daily cap).
        for operation in ["query_campaign_values", "query_flow_values"] {
            #expect(KlaviyoRateLimits.table[operation]?.burst == 1)
            #expect(KlaviyoRateLimits.table[operation]?.steady == 2)
        }
    }

    @Test func decoderRefusesWhatKlaviyoWouldRefuse() {
        let cases: [(String, JSONValue, String)] = [
            (
                "campaign.report", Self.with("statistics", ["opens", "revenue"]),
                "/payload/statistics/1: \"revenue\" is not a statistic Klaviyo reports"
            ),
            ("campaign.report", Self.with("statistics", []), "/payload/statistics: needs at least 1 item"),
            ("campaign.report", Self.with("statistics", ["opens", "opens"]), "/payload/statistics/1: repeats opens"),
            ("flow.report", Self.with("timeframe", ["key": "last_2_days"]), "/payload/timeframe/key: must be one of"),
            (
                "flow.report", Self.with("timeframe", ["start": "2026-11-01T00:00:00Z"]),
                "/payload/timeframe/end: is required"
            ),
            (
                "flow.report",
                Self.with("timeframe", ["start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"]),
                "/payload/timeframe/end: must be after start"
            ),
            (
                "flow.report",
                Self.with("timeframe", ["start": "2024-11-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"]),
                "/payload/timeframe: spans more than a year"
            ),
            (
                "flow.report", Self.with("timeframe", ["key": "today", "end": "2026-11-01T00:00:00Z"]),
                "/payload/timeframe/end: is not an allowed member"
            ),
            (
                "campaign.report", ["statistics": ["opens"], "timeframe": ["key": "today"]],
                "/payload/conversion_metric_id: is required"
            ),
            (
                "campaign.report", Self.with("filter", #"equals(flow_id,"X")"#),
                "/payload/filter: cannot filter on \"flow_id\" (allowed: campaign_id, campaign_message_id, send_channel)"
            ),
            (
                "flow.report", Self.with("filter", #"or(equals(flow_id,"a"),equals(flow_id,"b"))"#),
                "/payload/filter: only and(…) may combine filters"
            ),
            (
                "flow.report", Self.with("filter", #"and(equals(flow_id,"a"),equals(flow_id,"b"))"#),
                "/payload/filter: filters flow_id more than once"
            ),
            (
                "flow.report", Self.with("filter", #"contains-any(send_channel,["email","fax"])"#),
                "/payload/filter: send_channel \"fax\" is not one of email, sms, push-notification"
            ),
            ("flow.report", Self.with("filter", #"equals(flow_id,"a""#), "/payload/filter: expected ')'"),
            (
                "flow.report", Self.with("filter", #"equals(flow_id,"a") junk"#),
                "/payload/filter: unexpected text after the filter"
            ),
            (
                "campaign.report", Self.with("group_by", ["campaign_id", "send_channel"]),
                "/payload/group_by: must include campaign_message_id"
            ),
            ("campaign.report", Self.with("group_by", ["flow_id"]), "/payload/group_by/0: must be one of"),
            ("campaign.report", Self.with("value_statistics", ["x"]), "/payload/value_statistics: is not an allowed"),
        ]
        for (type, payload, expected) in cases {
            let detail = rejection(type, payload)
            #expect(detail?.hasPrefix(expected) == true, "\(type) \(payload): \(detail ?? "accepted")")
        }
        let hundredAndOne = JSONValue.array((0...100).map { .string("\"m\($0)\"") })
        let list = (hundredAndOne.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ",")
        #expect(
            rejection("campaign.report", Self.with("filter", .string("contains-any(campaign_id,[\(list)])")))
                == "/payload/filter: contains-any on campaign_id has 101 values; at most 100")
    }

    @Test func decoderAcceptsTheSpecsFilterForms() throws {
        let filters = [
            #"equals(campaign_id,"01GMRWDSA0ARTAKE1SFX8JGXAY")"#,
            #"contains-any(send_channel,["email","sms","push-notification"])"#,
            #"and(equals(campaign_id,"abc123"),contains-any(send_channel,["email","sms"]))"#,
            #"and( equals(campaign_id, "a") , equals(campaign_message_id,"b"), equals(send_channel,"sms") )"#,
        ]
        for filter in filters {
            #expect(rejection("campaign.report", Self.with("filter", .string(filter))) == nil, "\(filter)")
        }
    }

    @Test func campaignReportSendsTheSpecsRequestAndCarriesKlaviyosNumbers() async throws {
        let command = try decode(
            "campaign.report",
            [
                "statistics": ["opens", "open_rate", "conversion_value"],
                "timeframe": ["start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"],
                "conversion_metric_id": "RESQ6t", "filter": #"equals(send_channel,"email")"#,
                "group_by": ["campaign_id", "campaign_message_id"],
            ])
        #expect(CommandExecutor.isIdempotent(command.payload))
        let transport = ScriptedTransport { _ in
            ScriptedTransport.reply(
                200,
                #"""
                {"data":{"type":"campaign-values-report","attributes":{"results":[
                {"groupings":{"campaign_id":"C1","campaign_message_id":"M1"},"statistics":{"opens":123,"open_rate":0.8253,"conversion_value":19.5},"extra":1},
                {"groupings":{"campaign_id":"C2","campaign_message_id":"M2"},"statistics":{"opens":97,"open_rate":0.7562,"conversion_value":0}},
                {"groupings":{"campaign_id":"C1","campaign_message_id":"M3"},"statistics":{"opens":1,"open_rate":1.0,"conversion_value":0}}]}}}
                """#)
        }
        let execution = try await execute(command, transport)
        let request = try #require(transport.all.first)
        #expect(transport.all.count == 1)
        #expect(request.method == "POST")
        #expect(request.url == "https://a.klaviyo.com/api/campaign-values-reports")
        let sent = try JSONValue.parse(try #require(request.body))
        #expect(
            sent == [
                "data": [
                    "type": "campaign-values-report",
                    "attributes": [
                        "statistics": ["opens", "open_rate", "conversion_value"],
                        "timeframe": ["start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"],
                        "conversion_metric_id": "RESQ6t", "filter": #"equals(send_channel,"email")"#,
                        "group_by": ["campaign_id", "campaign_message_id"],
                    ],
                ]
            ])
        #expect(execution.outcome == .succeeded)
        #expect(execution.klaviyo.ids == ["C1", "C2"], "each campaign once, in result order")
        let data = try #require(execution.klaviyo.data)
        #expect(data["report"] == "campaign")
        #expect(data["conversion_metric_id"] == "RESQ6t")
        #expect(data["statistics"] == ["opens", "open_rate", "conversion_value"])
        let results = try #require(data["results"]?.arrayValue)
        #expect(results.count == 3)
        #expect(
            results.first == [
                "groupings": ["campaign_id": "C1", "campaign_message_id": "M1"],
                "statistics": ["opens": 123, "open_rate": 0.8253, "conversion_value": 19.5],
            ], "only groupings and statistics are kept")
    }

    @Test func flowReportFollowsLinksNextWithTheSameBody() async throws {
        let command = try decode("flow.report", Self.minimal)
        let transport = ScriptedTransport { request in
            if request.url.contains("page_cursor") {
                return ScriptedTransport.reply(
                    200,
                    #"{"data":{"type":"flow-values-report","attributes":{"results":[{"groupings":{"flow_id":"F2","flow_message_id":"M2","send_channel":"sms"},"statistics":{"opens":2,"open_rate":0.5}}]}},"links":{"next":null}}"#
                )
            }
            return ScriptedTransport.reply(
                200,
                #"{"data":{"type":"flow-values-report","attributes":{"results":[{"groupings":{"flow_id":"F1","flow_message_id":"M1","send_channel":"email"},"statistics":{"opens":5,"open_rate":0.25}}]}},"links":{"next":"https://a.klaviyo.com/api/flow-values-reports/?page_cursor=abc"}}"#
            )
        }
        let execution = try await execute(command, transport)
        #expect(transport.all.count == 2)
        #expect(transport.all.last?.url == "https://a.klaviyo.com/api/flow-values-reports/?page_cursor=abc")
        #expect(transport.all.first?.body == transport.all.last?.body, "the next page is asked with the same query")
        #expect(execution.klaviyo.ids == ["F1", "F2"])
        #expect(execution.klaviyo.data?["report"] == "flow")
        #expect(execution.klaviyo.data?["timeframe"] == ["key": "last_30_days"])
        #expect(execution.klaviyo.data?["results"]?.arrayValue?.count == 2)
    }

    @Test func aResponseWithoutResultsIsAnInvalidResponse() async throws {
        let command = try decode("flow.report", Self.minimal)
        let transport = ScriptedTransport { _ in
            ScriptedTransport.reply(200, #"{"data":{"type":"flow-values-report"}}"#)
        }
        await #expect(throws: KlaviyoError.self) { try await execute(command, transport) }
        let refused = ScriptedTransport { _ in
            ScriptedTransport.reply(
                400,
                #"{"errors":[{"id":"e1","status":400,"code":"invalid","title":"Invalid input.","detail":"bad"}]}"#)
        }
        do {
            _ = try await execute(command, refused)
            Issue.record("a 400 must throw")
        } catch let error as KlaviyoError {
            #expect(error.status == 400)
            #expect(error.operationID == "query_flow_values")
        }
    }
}
