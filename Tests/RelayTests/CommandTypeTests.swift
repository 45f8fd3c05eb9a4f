import Klaviyo
import Logging
import Relay
import Synchronization
import Testing

/// Answers every call with a fixed status (and optional body per path) and records the requests.
final class ScriptedTransport: KlaviyoTransport {
    let requests = Mutex<[KlaviyoHTTPRequest]>([])
    let answer: @Sendable (KlaviyoHTTPRequest) -> KlaviyoHTTPResponse

    init(answer: @escaping @Sendable (KlaviyoHTTPRequest) -> KlaviyoHTTPResponse) {
        self.answer = answer
    }

    func send(_ request: KlaviyoHTTPRequest) async throws(KlaviyoTransportFailure) -> KlaviyoHTTPResponse {
        requests.withLock { $0.append(request) }
        return answer(request)
    }

    var all: [KlaviyoHTTPRequest] { requests.withLock { $0 } }

    static func reply(_ status: Int, _ body: String = "") -> KlaviyoHTTPResponse {
        KlaviyoHTTPResponse(
            status: status, headers: [("Content-Type", "application/vnd.api+json")], body: Array(body.utf8))
    }
}

/// Validation, limits, splitting and the exact Klaviyo calls of the event, list, subscription, account and
/// flow commands (through the decoder and the executor, against a scripted transport).
@Suite("Command types")
struct CommandTypeTests {
    let decoder = CommandDecoder()

    func body(
        _ type: String, id: String = "cmd-1", createdAt: String = "2026-11-29T12:00:00Z", _ payload: JSONValue
    )
        -> [UInt8]
    {
        JSONValue.object([
            "id": .string(id), "type": .string(type), "account_id": "org_42", "created_at": .string(createdAt),
            "payload": payload,
        ]).jsonBytes()
    }

    func decode(
        _ type: String, id: String = "cmd-1", createdAt: String = "2026-11-29T12:00:00Z", _ payload: JSONValue
    )
        throws -> CommandEnvelope
    {
        switch decoder.decode(body(type, id: id, createdAt: createdAt, payload)) {
        case .success(let command): return command
        case .failure(let rejection):
            Issue.record("rejected: \(rejection.detail)")
            throw rejection
        }
    }

    func rejection(_ type: String, _ payload: JSONValue) -> String? {
        if case .failure(let rejection) = decoder.decode(body(type, payload)) {
            #expect(rejection.code == .schemaInvalid)
            return rejection.detail
        }
        return nil
    }

    func execute(_ command: CommandEnvelope, _ transport: ScriptedTransport) async throws -> CommandExecution {
        let client = KlaviyoClient(
            baseURL: "https://a.klaviyo.com", transport: transport, userAgent: "test", logger: Logger(label: "test"))
        return try await CommandExecutor(klaviyo: client).execute(command, credential: .apiKey("pk_test"))
    }

    func bodies(_ transport: ScriptedTransport) throws -> [JSONValue] {
        try transport.all.map { try JSONValue.parse(try #require($0.body)) }
    }

    static func events(_ count: Int) -> JSONValue {
        .array(
            (0..<count).map { index in
                ["metric": "Viewed Product", "profile": ["email": .string("p\(index % 7)@example.com")]]
            })
    }

    // MARK: event.track

    @Test func eventTrackSendsADerivedUniqueIDAndTheCreationTimeToTheSecond() async throws {
        let command = try decode(
            "event.track", id: "cmd-42", createdAt: "2026-11-29T12:00:00.750+01:00",
            ["metric": "Placed Order", "profile": ["email": "a@example.com"], "value": 9.5])
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let execution = try await execute(command, transport)
        #expect(execution.outcome == .succeeded)
        #expect(execution.klaviyo.status == 202)
        let request = try #require(transport.all.first)
        #expect(transport.all.count == 1)
        #expect(request.method == "POST")
        #expect(request.url == "https://a.klaviyo.com/api/events")
        let attributes = try #require(try bodies(transport).first?["data"]?["attributes"])
        #expect(attributes["unique_id"] == "relay-cmd-42")
        #expect(attributes["time"] == "2026-11-29T11:00:00Z")
        #expect(attributes["value"] == 9.5)
        #expect(attributes["properties"] == JSONValue.object([:]))
        #expect(attributes["metric"]?["data"]?["attributes"]?["name"] == "Placed Order")
        #expect(attributes["profile"]?["data"]?["attributes"]?["email"] == "a@example.com")
        #expect(execution.klaviyo.data?["unique_id"] == "relay-cmd-42")
    }

    @Test func eventTrackKeepsThePayloadsUniqueIDAndTime() async throws {
        let command = try decode(
            "event.track",
            [
                "metric": "Placed Order", "profile": ["external_id": "c-1"], "unique_id": "order-1",
                "time": "2026-11-28T23:30:15.999-02:00", "value_currency": "EUR", "value": 3,
            ])
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        _ = try await execute(command, transport)
        let attributes = try #require(try bodies(transport).first?["data"]?["attributes"])
        #expect(attributes["unique_id"] == "order-1")
        #expect(attributes["time"] == "2026-11-29T01:30:15Z")
        #expect(attributes["value_currency"] == "EUR")
    }

    @Test func eventTrackEnforcesKlaviyosLimitsBeforeAnyCall() {
        let profile: JSONValue = ["email": "a@example.com"]
        let many = JSONValue.object(
            Dictionary(uniqueKeysWithValues: (0...400).map { ("p\($0)", JSONValue.int(Int64($0))) }))
        #expect(
            rejection("event.track", ["metric": "M", "profile": profile, "properties": many])
                == "/payload/properties: has 401 properties; Klaviyo accepts at most 400")
        #expect(
            rejection("event.track", ["metric": "M", "profile": profile, "time": "1999-12-31T23:59:59Z"])
                == "/payload/time: must be after 2000-01-01 (Klaviyo)")
        #expect(
            rejection("event.track", ["metric": "M", "profile": profile, "time": "2999-01-01T00:00:00Z"])
                == "/payload/time: must be at most one year in the future (Klaviyo)")
        let long = String(repeating: "x", count: 100 * 1024 + 1)
        #expect(
            rejection("event.track", ["metric": "M", "profile": profile, "properties": ["note": .string(long)]])
                == "/payload: contains a string longer than Klaviyo's 100 KB limit")
        #expect(
            rejection("event.track", ["metric": "M", "profile": [:]])
                == "/payload/profile: needs at least one of email, phone_number or external_id")
        #expect(
            rejection("event.track", ["metric": "M", "profile": profile, "extra": 1])?.hasPrefix("/payload/extra:")
                == true)
        #expect(
            rejection("event.track", ["metric": "M", "profile": ["email": "a@example.com", "first_name": "A"]])?
                .hasPrefix("/payload/profile/first_name:") == true)
    }

    // MARK: event.bulk_track

    @Test func bulkTrackSplitsIntoJobsOfAtMostAThousandGroupedByProfile() async throws {
        let command = try decode("event.bulk_track", id: "bulk-1", ["events": Self.events(2500)])
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let execution = try await execute(command, transport)
        #expect(execution.klaviyo.data?["calls"] == 3)
        #expect(execution.klaviyo.data?["events"] == 2500)
        #expect(transport.all.allSatisfy { $0.url == "https://a.klaviyo.com/api/event-bulk-create-jobs" })
        var uniqueIDs: [String] = []
        var counts: [Int] = []
        for body in try bodies(transport) {
            let groups = try #require(body["data"]?["attributes"]?["events-bulk-create"]?["data"]?.arrayValue)
            #expect(groups.count == 7, "one group per profile")
            var count = 0
            for group in groups {
                let email = try #require(group["attributes"]?["profile"]?["data"]?["attributes"]?["email"]?.stringValue)
                for event in group["attributes"]?["events"]?["data"]?.arrayValue ?? [] {
                    let id = try #require(event["attributes"]?["unique_id"]?.stringValue)
                    let index = try #require(Int(id.dropFirst("relay-bulk-1-".count)))
                    #expect(email == "p\(index % 7)@example.com", "event \(index) is in its profile's group")
                    #expect(event["attributes"]?["time"] == "2026-11-29T12:00:00Z")
                    uniqueIDs.append(id)
                    count += 1
                }
            }
            counts.append(count)
        }
        #expect(counts == [1000, 1000, 500])
        #expect(Set(uniqueIDs) == Set((0..<2500).map { "relay-bulk-1-\($0)" }))
    }

    @Test func bulkTrackRejectsMoreThanTenThousandEvents() {
        #expect(
            rejection("event.bulk_track", ["events": Self.events(10_001)])
                == "/payload/events: has 10001 items; at most 10000 per command (split it)")
        #expect(
            rejection("event.bulk_track", ["events": [["metric": "M", "profile": ["email": "bad"]]]])
                == "/payload/events/0/profile/email: is not a valid email address")
    }

    // MARK: lists

    @Test func listCreateLooksUpFirstAndCreatesOnlyWhenAbsent() async throws {
        let command = try decode("list.create", ["name": #"VIP "Gold""#])
        let existing = ScriptedTransport { _ in
            ScriptedTransport.reply(
                200, #"{"data":[{"type":"list","id":"L1","attributes":{"name":"VIP \"Gold\""}}],"links":{}}"#)
        }
        let found = try await execute(command, existing)
        #expect(existing.all.count == 1)
        #expect(existing.all.first?.method == "GET")
        #expect(
            existing.all.first?.url
                == "https://a.klaviyo.com/api/lists?filter="
                + KlaviyoRequest.percentEncode(#"equals(name,"VIP \"Gold\"")"#))
        #expect(found.klaviyo.ids == ["L1"])
        #expect(found.klaviyo.data?["created"] == false)

        let absent = ScriptedTransport { request in
            request.method == "GET"
                ? ScriptedTransport.reply(200, #"{"data":[],"links":{}}"#)
                : ScriptedTransport.reply(
                    201, #"{"data":{"type":"list","id":"L2","attributes":{"name":"VIP \"Gold\""}}}"#)
        }
        let created = try await execute(command, absent)
        #expect(absent.all.map(\.method) == ["GET", "POST"])
        #expect(
            try JSONValue.parse(try #require(absent.all.last?.body)) == [
                "data": ["type": "list", "attributes": ["name": #"VIP "Gold""#]]
            ])
        #expect(created.klaviyo.ids == ["L2"])
        #expect(created.klaviyo.data?["created"] == true)
        #expect(CommandExecutor.isIdempotent(command.payload))
    }

    @Test func listMembershipIsSplitIntoCallsOfAtMostAThousand() async throws {
        let ids = JSONValue.array((0..<2001).map { .string("p\($0)") })
        for (type, method) in [("list.add_profiles", "POST"), ("list.remove_profiles", "DELETE")] {
            let command = try decode(type, ["list_id": "Y6nRLr", "profile_ids": ids])
            let transport = ScriptedTransport { _ in ScriptedTransport.reply(204) }
            let execution = try await execute(command, transport)
            #expect(execution.klaviyo.ids == ["Y6nRLr"])
            #expect(
                transport.all.allSatisfy {
                    $0.method == method && $0.url == "https://a.klaviyo.com/api/lists/Y6nRLr/relationships/profiles"
                })
            let sent = try bodies(transport).map { $0["data"]?.arrayValue ?? [] }
            #expect(sent.map(\.count) == [1000, 1000, 1])
            #expect(sent.joined().map { $0["id"]?.stringValue ?? "" } == (0..<2001).map { "p\($0)" })
            #expect(sent.joined().allSatisfy { $0["type"] == "profile" })
        }
        #expect(
            rejection(
                "list.add_profiles", ["list_id": "L", "profile_ids": .array((0...10_000).map { .string("p\($0)") })])
                == "/payload/profile_ids: has 10001 items; at most 10000 per command (split it)")
        #expect(
            rejection("list.remove_profiles", ["list_id": "L", "profile_ids": ["a", "b", "a"]])
                == "/payload/profile_ids/2: repeats profile id a")
    }

    // MARK: subscriptions

    @Test func subscribeSendsConsentPerChannelInJobsOfAtMostAThousand() async throws {
        var profiles: [JSONValue] = (0..<1500).map { ["email": .string("s\($0)@example.com")] }
        profiles[3] = ["email": "both@example.com", "phone_number": "+15005550006"]
        profiles[4] = ["phone_number": "+15005550007"]
        let command = try decode(
            "subscription.subscribe", ["list_id": "Y6nRLr", "custom_source": "Checkout", "profiles": .array(profiles)])
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let execution = try await execute(command, transport)
        #expect(execution.klaviyo.data?["calls"] == 2)
        let sent = try bodies(transport)
        #expect(sent.map { $0["data"]?["attributes"]?["profiles"]?["data"]?.arrayValue?.count } == [1000, 500])
        #expect(sent.allSatisfy { $0["data"]?["relationships"]?["list"]?["data"]?["id"] == "Y6nRLr" })
        #expect(sent.allSatisfy { $0["data"]?["type"] == "profile-subscription-bulk-create-job" })
        let rows = try #require(sent.first?["data"]?["attributes"]?["profiles"]?["data"]?.arrayValue)
        #expect(
            rows[3]["attributes"]?["subscriptions"]
                == [
                    "email": ["marketing": ["consent": "SUBSCRIBED"]], "sms": ["marketing": ["consent": "SUBSCRIBED"]],
                ])
        #expect(rows[4]["attributes"]?["subscriptions"] == ["sms": ["marketing": ["consent": "SUBSCRIBED"]]])
        #expect(rows[0]["attributes"]?["subscriptions"] == ["email": ["marketing": ["consent": "SUBSCRIBED"]]])
        #expect(sent.first?["data"]?["attributes"]?["custom_source"] == "Checkout")
        #expect(sent.first?["data"]?["attributes"]?["historical_import"] == nil)
    }

    @Test func historicalImportCarriesConsentedAt() async throws {
        let command = try decode(
            "subscription.subscribe",
            [
                "historical_import": true,
                "profiles": [["email": "h@example.com", "consented_at": "2024-03-01T09:00:00Z"]],
            ])
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        _ = try await execute(command, transport)
        let data = try #require(try bodies(transport).first?["data"])
        #expect(data["attributes"]?["historical_import"] == true)
        #expect(data["relationships"] == nil)
        #expect(
            data["attributes"]?["profiles"]?["data"]?.arrayValue?.first?["attributes"]?["subscriptions"]?["email"]?[
                "marketing"]
                == ["consent": "SUBSCRIBED", "consented_at": "2024-03-01T09:00:00Z"])
        #expect(
            rejection("subscription.subscribe", ["historical_import": true, "profiles": [["email": "h@example.com"]]])
                == "/payload/profiles/0/consented_at: is required with historical_import: true")
        #expect(
            rejection(
                "subscription.subscribe",
                [
                    "historical_import": true,
                    "profiles": [["email": "h@example.com", "consented_at": "2999-01-01T00:00:00Z"]],
                ])
                == "/payload/profiles/0/consented_at: must be in the past")
    }

    @Test func unsubscribeNeedsAListUnlessGlobalIsExplicitAndSplitsByAHundred() async throws {
        let profiles = JSONValue.array((0..<250).map { ["email": .string("u\($0)@example.com")] })
        #expect(
            rejection("subscription.unsubscribe", ["profiles": profiles])
                == "/payload/list_id: is required unless \"global\": true (without a list Klaviyo unsubscribes globally)"
        )
        #expect(
            rejection("subscription.unsubscribe", ["global": false, "profiles": profiles])?.hasPrefix(
                "/payload/global:") == true)
        #expect(
            rejection("subscription.unsubscribe", ["global": true, "list_id": "L", "profiles": profiles])
                == "/payload/global: cannot be combined with list_id")

        let fromList = try decode("subscription.unsubscribe", ["list_id": "Y6nRLr", "profiles": profiles])
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let execution = try await execute(fromList, transport)
        #expect(execution.klaviyo.data?["global"] == false)
        let sent = try bodies(transport)
        #expect(
            transport.all.allSatisfy { $0.url == "https://a.klaviyo.com/api/profile-subscription-bulk-delete-jobs" })
        #expect(sent.map { $0["data"]?["attributes"]?["profiles"]?["data"]?.arrayValue?.count } == [100, 100, 50])
        #expect(sent.allSatisfy { $0["data"]?["relationships"]?["list"]?["data"] == ["type": "list", "id": "Y6nRLr"] })
        #expect(
            sent.first?["data"]?["attributes"]?["profiles"]?["data"]?.arrayValue?.first?["attributes"]?["subscriptions"]
                == ["email": ["marketing": ["consent": "UNSUBSCRIBED"]]])

        let global = try decode("subscription.unsubscribe", ["global": true, "profiles": [["email": "g@example.com"]]])
        let globalTransport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let globalExecution = try await execute(global, globalTransport)
        #expect(try bodies(globalTransport).first?["data"]?["relationships"] == nil)
        #expect(globalExecution.klaviyo.data?["global"] == true)
    }

    // MARK: account and flows

    @Test func accountGetReportsTheAccount() async throws {
        let command = try decode("account.get", [:])
        #expect(rejection("account.get", ["fields": 1])?.hasPrefix("/payload/fields:") == true)
        let transport = ScriptedTransport { _ in
            ScriptedTransport.reply(
                200,
                #"{"data":[{"type":"account","id":"AbC123","attributes":{"contact_information":{"organization_name":"Demo"},"timezone":"Europe/Berlin","preferred_currency":"EUR","public_api_key":"AbC123"}}]}"#
            )
        }
        let execution = try await execute(command, transport)
        #expect(transport.all.first?.url == "https://a.klaviyo.com/api/accounts")
        #expect(execution.klaviyo.ids == ["AbC123"])
        #expect(
            execution.klaviyo.data
                == [
                    "id": "AbC123", "organization_name": "Demo", "timezone": "Europe/Berlin", "currency": "EUR",
                    "public_api_key": "AbC123",
                ])
    }

    @Test func flowListFollowsEveryPage() async throws {
        let command = try decode("flow.list", ["status": "live"])
        let transport = ScriptedTransport { request in
            if request.url.contains("page%5Bcursor%5D=two") {
                return ScriptedTransport.reply(
                    200,
                    #"{"data":[{"type":"flow","id":"F3","attributes":{"name":"C","status":"live"}}],"links":{"next":null}}"#
                )
            }
            return ScriptedTransport.reply(
                200,
                #"{"data":[{"type":"flow","id":"F1","attributes":{"name":"A","status":"live"}},{"type":"flow","id":"F2","attributes":{"name":"B","status":"draft"}}],"links":{"next":"https://a.klaviyo.com/api/flows/?filter=equals%28status%2C%22live%22%29&page%5Bcursor%5D=two"}}"#
            )
        }
        let execution = try await execute(command, transport)
        #expect(transport.all.count == 2)
        #expect(
            transport.all.first?.url
                == "https://a.klaviyo.com/api/flows?filter=" + KlaviyoRequest.percentEncode(#"equals(status,"live")"#))
        #expect(
            transport.all.last?.url
                == "https://a.klaviyo.com/api/flows/?filter=equals%28status%2C%22live%22%29&page%5Bcursor%5D=two")
        #expect(execution.klaviyo.ids == ["F1", "F3"], "both pages, only live flows")
        #expect(execution.klaviyo.data?["flows"]?.arrayValue?.last?["name"] == "C")
    }

    @Test func flowUpdateStatusPatchesTheFlow() async throws {
        let command = try decode("flow.update_status", ["flow_id": "XVTP5Q", "status": "manual"])
        #expect(
            rejection("flow.update_status", ["flow_id": "XVTP5Q", "status": "paused"])
                == "/payload/status: must be draft, manual or live")
        let transport = ScriptedTransport { _ in
            ScriptedTransport.reply(
                200, #"{"data":{"type":"flow","id":"XVTP5Q","attributes":{"name":"Welcome","status":"manual"}}}"#)
        }
        let execution = try await execute(command, transport)
        #expect(transport.all.first?.method == "PATCH")
        #expect(transport.all.first?.url == "https://a.klaviyo.com/api/flows/XVTP5Q")
        #expect(
            try bodies(transport).first == [
                "data": ["type": "flow", "id": "XVTP5Q", "attributes": ["status": "manual"]]
            ])
        #expect(execution.klaviyo.data?["flow"]?["status"] == "manual")
    }

    // MARK: campaigns

    @Test func campaignCreateSendsKlaviyosBody() async throws {
        let command = try decode(
            "campaign.create",
            [
                "name": "Black Friday", "audiences": ["included": ["Y6nRLr"]],
                "send_strategy": ["method": "static", "datetime": "2026-12-01T09:00:00Z", "is_local": true],
                "message": ["subject": "Hi", "from_email": "store@example.com", "from_label": "Store"],
            ])
        let transport = ScriptedTransport { _ in
            ScriptedTransport.reply(
                201,
                #"{"data":{"type":"campaign","id":"C1","attributes":{"name":"Black Friday","status":"Draft"},"relationships":{"campaign-messages":{"data":[{"type":"campaign-message","id":"M1"}]}}}}"#
            )
        }
        let execution = try await execute(command, transport)
        #expect(transport.all.first?.url == "https://a.klaviyo.com/api/campaigns")
        #expect(
            try bodies(transport).first
                == [
                    "data": [
                        "type": "campaign",
                        "attributes": [
                            "name": "Black Friday", "audiences": ["included": ["Y6nRLr"]],
                            "send_strategy": [
                                "method": "static", "datetime": "2026-12-01T09:00:00Z", "options": ["is_local": true],
                            ],
                            "campaign-messages": [
                                "data": [
                                    [
                                        "type": "campaign-message",
                                        "attributes": [
                                            "definition": [
                                                "channel": "email", "label": "Black Friday",
                                                "content": [
                                                    "subject": "Hi", "from_email": "store@example.com",
                                                    "from_label": "Store",
                                                ],
                                            ]
                                        ],
                                    ]
                                ]
                            ],
                        ],
                    ]
                ])
        #expect(execution.klaviyo.ids == ["C1"])
        #expect(execution.klaviyo.data == ["status": "Draft", "message_ids": ["M1"]])
    }

    @Test func campaignCancelSendPatchesTheSendJob() async throws {
        let command = try decode("campaign.cancel_send", ["campaign_id": "C1", "action": "revert"])
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(204) }
        let execution = try await execute(command, transport)
        #expect(transport.all.first?.method == "PATCH")
        #expect(transport.all.first?.url == "https://a.klaviyo.com/api/campaign-send-jobs/C1")
        #expect(
            try bodies(transport).first
                == ["data": ["type": "campaign-send-job", "id": "C1", "attributes": ["action": "revert"]]])
        #expect(execution.klaviyo.status == 204)
        #expect(
            rejection("campaign.cancel_send", ["campaign_id": "C1", "action": "pause"])
                == "/payload/action: must be cancel or revert")
    }

    @Test func createdAtUsedAsEventTimeMustMeetKlaviyosRules() {
        let event: JSONValue = ["metric": "M", "profile": ["email": "a@example.com"]]
        let old = decoder.decode(body("event.track", createdAt: "1999-06-01T00:00:00Z", event))
        guard case .failure(let rejection) = old else {
            Issue.record("a 1999 created_at must not become an event time")
            return
        }
        #expect(rejection.detail.hasPrefix("/created_at: is the time of events without their own time"))
        var timed = event
        if case .object(var members) = timed {
            members["time"] = "2026-11-01T00:00:00Z"
            timed = .object(members)
        }
        guard case .success = decoder.decode(body("event.track", createdAt: "1999-06-01T00:00:00Z", timed)) else {
            Issue.record("an event with its own valid time does not use created_at")
            return
        }
    }

    @Test func bulkTrackAlsoSplitsByRequestSize() async throws {
        // Two events of about 2.5 MB each (25 strings of 100,000 bytes): together above Klaviyo's 5 MB.
        let big = JSONValue.object(
            Dictionary(
                uniqueKeysWithValues: (0..<25).map {
                    ("p\($0)", JSONValue.string(String(repeating: "x", count: 100_000)))
                }))
        let events: JSONValue = [
            ["metric": "M", "profile": ["email": "a@example.com"], "properties": big],
            ["metric": "M", "profile": ["email": "a@example.com"], "properties": big],
        ]
        let command = try decode("event.bulk_track", ["events": events])
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let execution = try await execute(command, transport)
        #expect(execution.klaviyo.data?["calls"] == 2)
        #expect(transport.all.count == 2)
        #expect(transport.all.allSatisfy { ($0.body?.count ?? 0) < 5 * 1024 * 1024 })
    }
}
