import Klaviyo
import Logging
import Testing

/// The JSON:API bodies of the event, list, subscription and flow calls, and the campaign lookup's query, as they
/// go over the wire.
@Suite("Klaviyo command requests")
struct CommandRequestTests {
    func client(_ transport: RecordingTransport) -> KlaviyoClient {
        KlaviyoClient(
            baseURL: "https://a.klaviyo.com", transport: transport, userAgent: "test", logger: Logger(label: "test"))
    }

    func sentBody(_ transport: RecordingTransport) throws -> JSONValue {
        try JSONValue.parse(try #require(transport.last?.body))
    }

    let event = KlaviyoEvent(
        metric: "Placed Order", profile: ["email": "a@example.com"], properties: ["OrderId": "1234"],
        time: "2026-11-29T12:00:00Z", uniqueID: "relay-cmd-1", value: 9.99, valueCurrency: "USD")

    @Test func createEventBodyMatchesKlaviyosMinimalBody() async throws {
        let transport = RecordingTransport { _ in RecordingTransport.json(202, "") }
        #expect(try await client(transport).createEvent(event, credential: .apiKey("pk_x")) == 202)
        #expect(transport.last?.url == "https://a.klaviyo.com/api/events")
        #expect(
            try sentBody(transport)
                == [
                    "data": [
                        "type": "event",
                        "attributes": [
                            "properties": ["OrderId": "1234"], "time": "2026-11-29T12:00:00Z", "value": 9.99,
                            "value_currency": "USD", "unique_id": "relay-cmd-1",
                            "metric": ["data": ["type": "metric", "attributes": ["name": "Placed Order"]]],
                            "profile": ["data": ["type": "profile", "attributes": ["email": "a@example.com"]]],
                        ],
                    ]
                ])
        #expect(KlaviyoClient.createEventRequest(event).isIdempotent)
    }

    @Test func bulkEventsAreGroupedByProfileInOrderOfFirstAppearance() async throws {
        var second = event
        second.profile = ["phone_number": "+15005550006"]
        second.uniqueID = "relay-cmd-1-1"
        var third = event
        third.uniqueID = "relay-cmd-1-2"
        let transport = RecordingTransport { _ in RecordingTransport.json(202, "") }
        _ = try await client(transport).bulkCreateEvents([event, second, third], credential: .apiKey("pk_x"))
        #expect(transport.last?.url == "https://a.klaviyo.com/api/event-bulk-create-jobs")
        let body = try sentBody(transport)
        #expect(body["data"]?["type"] == "event-bulk-create-job")
        let groups = try #require(body["data"]?["attributes"]?["events-bulk-create"]?["data"]?.arrayValue)
        #expect(groups.count == 2)
        #expect(groups.allSatisfy { $0["type"] == "event-bulk-create" })
        #expect(groups[0]["attributes"]?["profile"]?["data"]?["attributes"] == ["email": "a@example.com"])
        #expect(
            groups[0]["attributes"]?["events"]?["data"]?.arrayValue?.map { $0["attributes"]?["unique_id"] }
                == ["relay-cmd-1", "relay-cmd-1-2"])
        #expect(groups[1]["attributes"]?["profile"]?["data"]?["attributes"] == ["phone_number": "+15005550006"])
        let firstEvent = try #require(groups[0]["attributes"]?["events"]?["data"]?.arrayValue?.first)
        #expect(firstEvent["type"] == "event")
        #expect(firstEvent["attributes"]?["profile"] == nil, "the profile is the group's, not the event's")
        #expect(firstEvent["attributes"]?["time"] == "2026-11-29T12:00:00Z")
    }

    @Test func unsubscribeCarriesTheListRelationshipOnlyWhenGiven() throws {
        let profiles = [KlaviyoSubscriber(email: "a@example.com"), KlaviyoSubscriber(phoneNumber: "+15005550006")]
        let withList = try #require(KlaviyoClient.unsubscribeProfilesRequest(profiles, listID: "Y6nRLr").body)
        #expect(withList["data"]?["relationships"] == ["list": ["data": ["type": "list", "id": "Y6nRLr"]]])
        #expect(withList["data"]?["type"] == "profile-subscription-bulk-delete-job")
        #expect(
            withList["data"]?["attributes"]?["profiles"]?["data"]
                == [
                    [
                        "type": "profile",
                        "attributes": [
                            "email": "a@example.com",
                            "subscriptions": ["email": ["marketing": ["consent": "UNSUBSCRIBED"]]],
                        ],
                    ],
                    [
                        "type": "profile",
                        "attributes": [
                            "phone_number": "+15005550006",
                            "subscriptions": ["sms": ["marketing": ["consent": "UNSUBSCRIBED"]]],
                        ],
                    ],
                ])
        let global = try #require(KlaviyoClient.unsubscribeProfilesRequest(profiles, listID: nil).body)
        #expect(global["data"]?["relationships"] == nil)
    }

    @Test func listCallsUseProfileIDsOnly() async throws {
        let transport = RecordingTransport { _ in RecordingTransport.json(204, "") }
        _ = try await client(transport).changeListProfiles(
            listID: "Y6nRLr", profileIDs: ["p1", "p2"], add: false, credential: .apiKey("pk_x"))
        #expect(transport.last?.method == "DELETE")
        #expect(transport.last?.url == "https://a.klaviyo.com/api/lists/Y6nRLr/relationships/profiles")
        #expect(
            try sentBody(transport) == ["data": [["type": "profile", "id": "p1"], ["type": "profile", "id": "p2"]]])
        #expect(
            KlaviyoClient.createListRequest(name: "News", optInProcess: "double_opt_in").body
                == ["data": ["type": "list", "attributes": ["name": "News", "opt_in_process": "double_opt_in"]]])
        #expect(!KlaviyoClient.createListRequest(name: "News").isIdempotent)
    }

    @Test func campaignLookupEscapesTheNameAndLeavesTheDateTimeUnquoted() async throws {
        let request = KlaviyoClient.findCampaignsRequest(
            name: #"Say "hi" \ bye"#, createdAtOrAfter: "2026-11-29T11:50:00Z")
        #expect(request.operationID == "get_campaigns" && request.method == "GET" && request.isIdempotent)
        #expect(request.query.map(\.name) == ["filter", "sort"])
        #expect(
            request.query.first?.value
                == #"and(equals(messages.channel,'email'),contains(name,"Say \"hi\" \\ bye"),greater-or-equal(created_at,2026-11-29T11:50:00Z))"#
        )
        #expect(request.query.last?.value == "created_at")
        // Every page is read: the items of both, the second asked for with the link's cursor.
        let transport = RecordingTransport { request in
            if request.url.contains("cursor") {
                return RecordingTransport.json(200, #"{"data":[{"type":"campaign","id":"C2"}],"links":{}}"#)
            }
            return RecordingTransport.json(
                200,
                #"{"data":[{"type":"campaign","id":"C1"}],"links":{"next":"https://a.klaviyo.com/api/campaigns/?page%5Bcursor%5D=two"}}"#
            )
        }
        let campaigns = try await client(transport).findCampaigns(
            name: "Sale", createdAtOrAfter: "2026-11-29T11:50:00Z", credential: .apiKey("pk_x"))
        #expect(campaigns.map { $0["id"]?.stringValue } == ["C1", "C2"])
        #expect(
            transport.requests.withLock { $0.first?.url }
                == "https://a.klaviyo.com/api/campaigns?filter=and%28equals%28messages.channel%2C%27email%27%29%2C"
                + "contains%28name%2C%22Sale%22%29%2Cgreater-or-equal%28created_at%2C2026-11-29T11%3A50%3A00Z%29%29"
                + "&sort=created_at")
    }

    @Test func flowPagesAreFollowedUntilNextIsAbsent() async throws {
        let transport = RecordingTransport { request in
            if request.url.contains("cursor") {
                return RecordingTransport.json(200, #"{"data":[{"type":"flow","id":"F2"}],"links":{}}"#)
            }
            return RecordingTransport.json(
                200,
                #"{"data":[{"type":"flow","id":"F1"}],"links":{"next":"https://a.klaviyo.com/api/flows/?page%5Bcursor%5D=b%2Bc"}}"#
            )
        }
        let flows = try await client(transport).allFlows(credential: .apiKey("pk_x"))
        #expect(flows.map { $0["id"]?.stringValue } == ["F1", "F2"])
        #expect(
            transport.requests.withLock { $0.map(\.url) } == [
                "https://a.klaviyo.com/api/flows", "https://a.klaviyo.com/api/flows/?page%5Bcursor%5D=b%2Bc",
            ])
    }
}
