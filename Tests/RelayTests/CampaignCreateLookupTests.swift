import Klaviyo
import Logging
import Testing

@testable import Relay

/// `campaign.create` after an attempt that may have reached Klaviyo: the lookup of the campaign that attempt
/// created (its exact request, which candidates are adopted, the result's shape), against a scripted transport.
@Suite("Campaign create lookup")
struct CampaignCreateLookupTests {
    let types = CommandTypeTests()

    static let payload: JSONValue = [
        "name": "Black Friday", "audiences": ["included": ["Y6nRLr", "L2"], "excluded": ["X1"]],
        "message": ["subject": "Hi", "from_email": "store@example.com", "from_label": "Store"],
    ]

    func execute(
        _ command: CommandEnvelope, _ transport: ScriptedTransport, mayHaveSent: Bool
    ) async throws -> CommandExecution {
        let client = KlaviyoClient(
            baseURL: "https://a.klaviyo.com", transport: transport, userAgent: "test", logger: Logger(label: "test"))
        return try await CommandExecutor(klaviyo: client).execute(
            command, credential: .apiKey("pk_test"), mayHaveSent: mayHaveSent)
    }

    /// A get_campaigns item.
    static func campaign(
        _ id: String, name: String = "Black Friday", included: [String] = ["Y6nRLr", "L2"],
        excluded: JSONValue = ["X1"], createdAt: String, message: String
    ) -> JSONValue {
        [
            "type": "campaign", "id": .string(id),
            "attributes": [
                "name": .string(name), "status": "Draft", "created_at": .string(createdAt),
                "audiences": ["included": .array(included.map { .string($0) }), "excluded": excluded],
            ],
            "relationships": ["campaign-messages": ["data": [["type": "campaign-message", "id": .string(message)]]]],
        ]
    }

    static func page(_ campaigns: [JSONValue]) -> KlaviyoHTTPResponse {
        ScriptedTransport.reply(
            200, String(decoding: JSONValue.object(["data": .array(campaigns)]).jsonBytes(), as: UTF8.self))
    }

    static let created =
        #"{"data":{"type":"campaign","id":"C9","attributes":{"name":"Black Friday","status":"Draft"},"relationships":{"campaign-messages":{"data":[{"type":"campaign-message","id":"M9"}]}}}}"#

    @Test func campaignCreateIsIdempotentBecauseItLooksFirst() throws {
        let command = try types.decode("campaign.create", Self.payload)
        #expect(CommandExecutor.isIdempotent(command.payload))
    }

    @Test func afterAnAmbiguousAttemptTheEarliestExactMatchIsAdoptedAndNothingIsPosted() async throws {
        let command = try types.decode("campaign.create", createdAt: "2020-01-01T00:00:00Z", Self.payload)
        let transport = ScriptedTransport { _ in
            Self.page([
                // Name contains the payload's but is not it.
                Self.campaign("C1", name: "Black Friday 2", createdAt: "2020-01-01T00:00:01+00:00", message: "M1"),
                // Other audiences: included differs, then excluded differs, then excluded missing.
                Self.campaign("C2", included: ["Y6nRLr"], createdAt: "2020-01-01T00:00:01+00:00", message: "M2"),
                Self.campaign("C3", excluded: [], createdAt: "2020-01-01T00:00:01+00:00", message: "M3"),
                Self.campaign("C4", excluded: .null, createdAt: "2020-01-01T00:00:01+00:00", message: "M4"),
                // Two exact matches (audiences in another order): the earlier created one wins, not the first listed.
                Self.campaign("C5", createdAt: "2020-01-01T00:00:09+00:00", message: "M5"),
                Self.campaign("C6", included: ["L2", "Y6nRLr"], createdAt: "2020-01-01T00:00:03+00:00", message: "M6"),
            ])
        }
        let execution = try await execute(command, transport, mayHaveSent: true)
        #expect(transport.all.map(\.method) == ["GET"], "found: nothing is posted")
        let filter =
            #"and(equals(messages.channel,'email'),contains(name,"Black Friday"),greater-or-equal(created_at,2019-12-31T23:50:00Z))"#
        #expect(
            transport.all.first?.url
                == "https://a.klaviyo.com/api/campaigns?filter=\(KlaviyoRequest.percentEncode(filter))&sort=created_at")
        #expect(execution.outcome == .succeeded)
        #expect(execution.klaviyo.status == 200)
        #expect(execution.klaviyo.ids == ["C6"])
        #expect(
            execution.klaviyo.data == ["status": "Draft", "message_ids": ["M6"], "found_after_ambiguous_create": true])
    }

    @Test func afterAnAmbiguousAttemptWithoutAMatchTheCampaignIsCreated() async throws {
        let command = try types.decode("campaign.create", createdAt: "2020-01-01T00:00:00Z", Self.payload)
        let transport = ScriptedTransport { request in
            request.method == "GET"
                ? Self.page([
                    Self.campaign("C1", name: "black friday", createdAt: "2020-01-01T00:00:01Z", message: "M1")
                ])
                : ScriptedTransport.reply(201, Self.created)
        }
        let execution = try await execute(command, transport, mayHaveSent: true)
        #expect(transport.all.map(\.method) == ["GET", "POST"])
        #expect(transport.all.last?.url == "https://a.klaviyo.com/api/campaigns")
        #expect(execution.klaviyo.status == 201)
        #expect(execution.klaviyo.ids == ["C9"])
        #expect(execution.klaviyo.data == ["status": "Draft", "message_ids": ["M9"]])
    }

    @Test func aFirstAttemptPostsWithoutLooking() async throws {
        let command = try types.decode("campaign.create", Self.payload)
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(201, Self.created) }
        let execution = try await execute(command, transport, mayHaveSent: false)
        #expect(transport.all.map(\.method) == ["POST"])
        #expect(execution.klaviyo.data?["found_after_ambiguous_create"] == nil)
    }

    @Test func aFailedLookupFailsTheAttemptInsteadOfPosting() async throws {
        let command = try types.decode("campaign.create", Self.payload)
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(503) }
        await #expect(throws: KlaviyoError.self) { try await execute(command, transport, mayHaveSent: true) }
        #expect(transport.all.map(\.method) == ["GET"], "never posts blind after an ambiguous attempt")
    }

    @Test func theLookupGoesBackTenMinutesFromTheEarlierOfCreatedAtAndNow() throws {
        let now = try #require(Timestamp.epochSeconds(rfc3339: "2026-11-29T13:00:00Z"))
        #expect(CommandExecutor.campaignLookupSkew == .seconds(600))
        #expect(
            CommandExecutor.campaignLookupBound(createdAt: "2026-11-29T12:00:00Z", nowSeconds: now)
                == "2026-11-29T11:50:00Z")
        #expect(
            CommandExecutor.campaignLookupBound(createdAt: "2026-11-29T12:00:00.999Z", nowSeconds: now)
                == "2026-11-29T11:50:00Z", "whole seconds, rounded down")
        #expect(
            CommandExecutor.campaignLookupBound(createdAt: "2026-11-29T14:00:00+01:00", nowSeconds: now)
                == "2026-11-29T12:50:00Z", "offsets count")
        // A publisher's clock running ahead: the bound is taken from now, so it cannot pass the campaign.
        #expect(
            CommandExecutor.campaignLookupBound(createdAt: "2026-11-29T18:00:00Z", nowSeconds: now)
                == "2026-11-29T12:50:00Z")
    }

}
