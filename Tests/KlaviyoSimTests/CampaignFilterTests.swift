import Foundation
import HTTPTypes
import Testing

@testable import KlaviyoSimCore

/// `GET /api/campaigns`' `filter`: the conditions and `and(…)` the spec allows for this endpoint are parsed and
/// applied; anything else is a 400 about the `filter` parameter, as on Klaviyo.
@Suite("Campaign filter")
struct CampaignFilterTests {
    /// The filter the relay sends to find the campaign an earlier attempt created.
    static let relayLookup =
        #"and(equals(messages.channel,'email'),contains(name,"Black \"Friday\" \\ Deals"),greater-or-equal(created_at,2026-11-29T11:50:00Z))"#

    @Test func theRelaysLookupParses() throws {
        let filter = try CampaignFilter(parsing: Self.relayLookup)
        let bound = try #require(KlaviyoSimulator.epochSeconds("2026-11-29T11:50:00Z"))
        #expect(
            filter.conditions == [
                .channel("email"), .nameContains(#"Black "Friday" \ Deals"#),
                .time(field: "created_at", comparison: .greaterOrEqual, seconds: bound),
            ])
    }

    @Test(arguments: [
        "equals(messages.channel,'email')",
        #"equals(messages.channel,"sms")"#,
        "and(equals(messages.channel,'email'),equals(status,'Draft'),equals(archived,false))",
        #"and(equals(messages.channel,'email'),any(status,["Draft","Sent"]),any(id,["01A"]))"#,
        "and(equals(messages.channel,'email'),less-than(updated_at,2026-11-29T12:00:00.123+01:00))",
        "and(equals(messages.channel,'email'),greater-than(scheduled_at,2026-11-29T12:00:00))",
        "and( equals(messages.channel,'email'), less-or-equal(created_at,2026-11-29T12:00:00Z) )",
    ])
    func allowedFiltersParse(_ text: String) throws {
        _ = try CampaignFilter(parsing: text)
    }

    @Test(arguments: [
        // The spec requires a channel condition.
        #"contains(name,"Sale")"#,
        #"and(contains(name,"Sale"),greater-or-equal(created_at,2026-11-29T11:50:00Z))"#,
        // Fields and operators the spec does not allow for campaigns.
        #"and(equals(messages.channel,'email'),equals(name,"Sale"))"#,
        "and(equals(messages.channel,'email'),equals(created_at,2026-11-29T11:50:00Z))",
        #"and(equals(messages.channel,'email'),contains(subject,"Sale"))"#,
        "any(messages.channel,['email','sms'])",
        // Quoted date-times are invalid on Klaviyo too; so are values that are no date-times.
        "and(equals(messages.channel,'email'),greater-or-equal(created_at,'2026-11-29T11:50:00Z'))",
        "and(equals(messages.channel,'email'),greater-or-equal(created_at,yesterday))",
        "and(equals(messages.channel,'email'),equals(archived,'false'))",
        // Syntax: or/not, nesting, a lone and, unbalanced or trailing text, an unterminated string.
        #"or(equals(messages.channel,'email'),equals(messages.channel,'sms'))"#,
        "and(equals(messages.channel,'email'),and(equals(status,'Draft'),equals(archived,false)))",
        "and(equals(messages.channel,'email'))",
        "and(equals(messages.channel,'email'),equals(status,'Draft')",
        "equals(messages.channel,'email'),equals(status,'Draft')",
        "equals(messages.channel,'email')x",
        #"and(equals(messages.channel,'email'),contains(name,"Sale))"#,
    ])
    func otherFiltersAreRejectedAsAFilterProblem(_ text: String) {
        do throws(KlaviyoAPIError) {
            let filter = try CampaignFilter(parsing: text)
            Issue.record("accepted \(text): \(filter)")
        } catch {
            #expect(error.status == 400)
            #expect(error.code == "invalid")
            guard case .parameter("filter") = error.source else {
                Issue.record("source \(String(describing: error.source)) for \(text)")
                return
            }
        }
    }

    static func encoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: CharacterSet.alphanumerics.union(.init(charactersIn: "-._~")))
            ?? text
    }

    static func create(_ c: SimClient, name: String, included: String = "L1") async throws -> String {
        let name = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let created = try await c.call(
            .post, "/api/campaigns",
            body:
                #"{"data":{"type":"campaign","attributes":{"name":"\#(name)","audiences":{"included":["\#(included)"]},"campaign-messages":{"data":[{"type":"campaign-message","attributes":{"definition":{"channel":"email","label":"Main","content":{"subject":"Hi","from_email":"s@example.com","from_label":"S"}}}}]}}}}"#
        )
        #expect(created.status == 201)
        return try #require(created.json?["data"]?["id"]?.stringValue)
    }

    func ids(_ c: SimClient, filter: String, sort: String? = nil) async throws -> [String] {
        let response = try await c.call(
            .get, "/api/campaigns?filter=\(Self.encoded(filter))" + (sort.map { "&sort=\(Self.encoded($0))" } ?? ""))
        #expect(response.status == 200, "\(filter): \(String(describing: response.json))")
        return response.json?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
    }

    @Test func theSimulatorAppliesEveryConditionAndSorts() async throws {
        try await SimHarness().run { c in
            let deals = try await Self.create(c, name: #"Black "Friday" \ Deals"#)
            let dealsAgain = try await Self.create(c, name: #"Black "Friday" \ Deals"#, included: "L2")
            let longer = try await Self.create(c, name: #"Black "Friday" \ Deals 2"#)
            let other = try await Self.create(c, name: "Cyber Monday")

            let past = "2020-01-01T00:00:00Z"
            let future = "2999-01-01T00:00:00Z"
            let named = #"contains(name,"Black \"Friday\" \\ Deals")"#
            #expect(
                try await ids(
                    c, filter: "and(equals(messages.channel,'email'),\(named),greater-or-equal(created_at,\(past)))")
                    == [deals, dealsAgain, longer], "name contains, in creation order")
            #expect(
                try await ids(
                    c, filter: "and(equals(messages.channel,'email'),\(named),greater-or-equal(created_at,\(future)))")
                    == [], "created before the bound")
            #expect(
                try await ids(c, filter: "and(equals(messages.channel,'email'),less-than(created_at,\(past)))") == [])
            #expect(try await ids(c, filter: "and(equals(messages.channel,'sms'),\(named))") == [])
            #expect(
                try await ids(c, filter: "and(equals(messages.channel,'email'),any(id,[\"\(other)\",\"\(deals)\"]))")
                    == [deals, other])
            #expect(
                try await ids(
                    c, filter: "and(equals(messages.channel,'email'),equals(status,'Draft'),equals(archived,false))"
                )
                .count == 4)
            #expect(try await ids(c, filter: "and(equals(messages.channel,'email'),equals(archived,true))") == [])
            // Creation order is the order of created_at (equal seconds keep it); descending reverses it.
            #expect(
                try await ids(c, filter: "equals(messages.channel,'email')", sort: "created_at")
                    == [deals, dealsAgain, longer, other])
            #expect(
                try await ids(c, filter: "equals(messages.channel,'email')", sort: "-created_at")
                    == [other, longer, dealsAgain, deals])
            #expect(
                try await ids(c, filter: "equals(messages.channel,'email')", sort: "-name").first == other)
        }
    }

    @Test func aFilterOrSortTheSpecDoesNotAllowIsA400AboutThatParameter() async throws {
        try await SimHarness().run { c in
            _ = try await Self.create(c, name: "Sale")
            for (query, parameter) in [
                ("filter=\(Self.encoded("and(equals(messages.channel,'email'),equals(name,\"Sale\"))"))", "filter"),
                (
                    "filter=\(Self.encoded("and(equals(messages.channel,'email'),greater-or-equal(created_at,'2020-01-01T00:00:00Z'))"))",
                    "filter"
                ),
                ("filter=\(Self.encoded("contains(name,\"Sale\")"))", "filter"),
                ("sort=created_at", "filter"),
                ("filter=\(Self.encoded("equals(messages.channel,'email')"))&sort=status", "sort"),
            ] {
                let response = try await c.call(.get, "/api/campaigns?\(query)")
                #expect(response.status == 400, "\(query)")
                #expect(response.firstError?["code"] == "invalid")
                #expect(response.firstError?["source"] == ["parameter": .string(parameter)], "\(query)")
            }
        }
    }
}
