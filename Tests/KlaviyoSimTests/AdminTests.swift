import HTTPTypes
import KlaviyoSimCore
import Testing

@Suite("Admin API, faults and recording")
struct AdminTests {
    @Test func injectedErrorChangesNothing() async throws {
        try await SimHarness().run { c in
            let set = try await c.admin(.put, "/_sim/faults", body: #"{"error_rate":1.0,"error_statuses":[503]}"#)
            #expect(set.status == 200)
            let r = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody)
            #expect(r.status == 503)
            #expect(r.firstError?["code"] == "service_unavailable")
            let listed = try await c.admin(.get, "/_sim/accounts/acct_1/profiles")
            #expect(listed.json?["count"] == 0)
            _ = try await c.admin(.delete, "/_sim/faults")
            let ok = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody)
            #expect(ok.status == 201)
        }
    }

    @Test func faultsScopedToOtherAccountDoNotApply() async throws {
        try await SimHarness().run { c in
            _ = try await c.admin(.put, "/_sim/faults", body: #"{"error_rate":1.0,"account_id":"acct_other"}"#)
            let r = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody)
            #expect(r.status == 201)
            _ = try await c.admin(.put, "/_sim/faults", body: #"{"error_rate":1.0,"paths":["/api/accounts"]}"#)
            let p = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody)
            #expect(p.status == 200)
            let a = try await c.call(.get, "/api/accounts")
            #expect(a.status >= 500)
        }
    }

    @Test func failAfterApplyChangesStateThenFails() async throws {
        try await SimHarness().run { c in
            _ = try await c.admin(.put, "/_sim/faults", body: #"{"fail_after_apply_rate":1.0}"#)
            let r = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody)
            #expect(r.status == 500)
            let listed = try await c.admin(.get, "/_sim/accounts/acct_1/profiles")
            #expect(listed.json?["count"] == 1)
        }
    }

    @Test func throttleFaultIs429WithRetryAfter() async throws {
        try await SimHarness().run { c in
            _ = try await c.admin(.put, "/_sim/faults", body: #"{"throttle_rate":1.0,"retry_after_seconds":7}"#)
            let r = try await c.call(.get, "/api/accounts")
            #expect(r.status == 429)
            #expect(r.headers[HTTPField.Name("Retry-After")!] == "7")
            #expect(r.firstError?["code"] == "throttled")
            #expect(r.firstError?["detail"] == "Request was throttled. Expected available in 7 seconds.")
            let read = try await c.admin(.get, "/_sim/faults")
            #expect(read.json?["throttle_rate"] == 1.0)
        }
    }

    @Test func badFaultConfigIsRejected() async throws {
        try await SimHarness().run { c in
            let r = try await c.admin(.put, "/_sim/faults", body: #"{"error_rate":2}"#)
            #expect(r.status == 400)
            let typo = try await c.admin(.put, "/_sim/faults", body: #"{"eror_rate":0.5}"#)
            #expect(typo.status == 400)
        }
    }

    @Test func recordsRequestsWithRedactedAuthorization() async throws {
        try await SimHarness().run { c in
            _ = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody)
            _ = try await c.call(.get, "/api/accounts")
            let rec = try await c.admin(.get, "/_sim/requests?since=0&limit=10")
            let items = try #require(rec.json?["requests"]?.arrayValue)
            #expect(items.count == 2)
            #expect(items[0]["seq"] == 1)
            #expect(items[0]["method"] == "POST")
            #expect(items[0]["path"] == "/api/profile-import")
            #expect(items[0]["status"] == 201)
            #expect(items[0]["account_id"] == "acct_1")
            #expect(items[0]["body"]?["data"]?["attributes"]?["email"] == "sarah.mason@example.com")
            #expect(items[0]["headers"]?["revision"] == "2025-10-15")
            let auth = try #require(items[0]["headers"]?["authorization"]?.stringValue)
            #expect(auth.hasPrefix("Klaviyo-API-Key "))
            #expect(!auth.contains(SimHarness.apiKey))
            #expect(rec.json?["next_seq"] == 2)
            let later = try await c.admin(.get, "/_sim/requests?since=1")
            #expect(later.json?["requests"]?.arrayValue?.count == 1)
        }
    }

    @Test func statsCountByOperationAndReset() async throws {
        try await SimHarness().run { c in
            _ = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody)
            _ = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody)
            _ = try await c.call(.get, "/api/accounts")
            let stats = try await c.admin(.get, "/_sim/stats")
            #expect(stats.json?["requests_total"] == 3)
            #expect(stats.json?["by_operation"]?["POST /api/profile-import"] == 2)
            #expect(stats.json?["by_operation"]?["GET /api/accounts"] == 1)
            #expect(stats.json?["by_status"]?["201"] == 1)
            #expect(stats.json?["by_status"]?["200"] == 2)
            let reset = try await c.admin(.post, "/_sim/reset")
            #expect(reset.status == 200)
            let after = try await c.admin(.get, "/_sim/stats")
            #expect(after.json?["requests_total"] == 0)
            let gone = try await c.call(.get, "/api/accounts")
            #expect(gone.status == 401)
        }
    }

    @Test func accountRepostIsIdempotent() async throws {
        try await SimHarness(seed: false).run { c in
            let a = try await c.admin(
                .post, "/_sim/accounts", body: #"{"account_id":"acct_9","api_key":"pk_one","name":"N"}"#)
            let b = try await c.admin(
                .post, "/_sim/accounts", body: #"{"account_id":"acct_9","api_key":"pk_two","name":"N"}"#)
            #expect(a.json?["klaviyo_account_id"] == b.json?["klaviyo_account_id"])
            let old = try await c.call(
                .get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: "Klaviyo-API-Key pk_one"))
            #expect(old.status == 401)
            let new = try await c.call(
                .get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: "Klaviyo-API-Key pk_two"))
            #expect(new.status == 200)
        }
    }

    @Test func resetFaultDropsConnection() async throws {
        try await SimHarness().run(.live) { c in
            _ = try await c.admin(.put, "/_sim/faults", body: #"{"reset_rate":1.0,"paths":["/api/"]}"#)
            await #expect(throws: (any Error).self) {
                _ = try await c.call(.get, "/api/accounts")
            }
        }
    }
}
