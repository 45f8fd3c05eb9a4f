import HTTPTypes
import KlaviyoSimCore
import Testing

@Suite("Klaviyo API surface")
struct APISurfaceTests {
    @Test func missingRevisionIs400() async throws {
        try await SimHarness().run { c in
            let r = try await c.call(.get, "/api/accounts", headers: SimClient.klaviyoHeaders(revision: nil))
            #expect(r.status == 400)
            #expect(r.firstError?["code"] == "invalid")
            #expect(r.firstError?["source"]?["parameter"] == "revision")
            let bad = try await c.call(.get, "/api/accounts", headers: SimClient.klaviyoHeaders(revision: "latest"))
            #expect(bad.status == 400)
            let pre = try await c.call(
                .get, "/api/accounts", headers: SimClient.klaviyoHeaders(revision: "2026-01-15.pre"))
            #expect(pre.status == 200)
        }
    }

    @Test func authenticationFailures() async throws {
        try await SimHarness().run { c in
            let none = try await c.call(.get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: nil))
            #expect(none.status == 401)
            #expect(none.firstError?["code"] == "not_authenticated")
            #expect(
                none.firstError?["detail"] == "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.")
            let scheme = try await c.call(.get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: "Token pk_x"))
            #expect(scheme.status == 401)
            #expect(scheme.firstError?["code"] == "not_authenticated")
            let wrong = try await c.call(
                .get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: "Klaviyo-API-Key pk_wrong"))
            #expect(wrong.status == 401)
            #expect(wrong.firstError?["code"] == "authentication_failed")
            let bearer = try await c.call(.get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: "Bearer nope"))
            #expect(bearer.status == 401)
            #expect(bearer.firstError?["code"] == "authentication_failed")
        }
    }

    @Test func keyWithoutScopeIs403() async throws {
        try await SimHarness().run { c in
            let created = try await c.admin(
                .post, "/_sim/accounts",
                body: #"{"account_id":"acct_ro","api_key":"pk_readonly","name":"RO","scopes":["profiles:read"]}"#)
            #expect(created.status == 201)
            #expect(created.json?["klaviyo_account_id"]?.stringValue?.count == 6)
            let r = try await c.call(
                .get, "/api/accounts", headers: SimClient.klaviyoHeaders(auth: "Klaviyo-API-Key pk_readonly"))
            #expect(r.status == 403)
            #expect(r.firstError?["code"] == "permission_denied")
            let ok = try await c.call(
                .get, "/api/profiles", headers: SimClient.klaviyoHeaders(auth: "Klaviyo-API-Key pk_readonly"))
            #expect(ok.status == 200)
        }
    }

    @Test func accountsReturnsOneAccount() async throws {
        try await SimHarness().run { c in
            let r = try await c.call(.get, "/api/accounts")
            #expect(r.status == 200)
            #expect(r.headers[.contentType] == "application/vnd.api+json")
            let data = try #require(r.json?["data"]?.arrayValue)
            #expect(data.count == 1)
            #expect(data[0]["type"] == "account")
            #expect(data[0]["attributes"]?["public_api_key"]?.stringValue?.count == 6)
            #expect(data[0]["attributes"]?["contact_information"]?["organization_name"] == "Demo Store")
            let id = try #require(data[0]["id"]?.stringValue)
            #expect(data[0]["links"]?["self"]?.stringValue?.hasSuffix("/api/accounts/\(id)/") == true)
        }
    }

    @Test func unknownPathAndWrongMethod() async throws {
        try await SimHarness().run { c in
            let missing = try await c.call(.get, "/api/nothing-here")
            #expect(missing.status == 404)
            #expect(missing.firstError?["code"] == "not_found")
            let method = try await c.call(.delete, "/api/profile-import")
            #expect(method.status == 405)
        }
    }

    @Test func wrongContentTypeIs415() async throws {
        try await SimHarness().run { c in
            let r = try await c.call(
                .post, "/api/profile-import", body: SimHarness.profileBody,
                headers: SimClient.klaviyoHeaders(contentType: "text/plain"))
            #expect(r.status == 415)
            let json = try await c.call(
                .post, "/api/profile-import", body: SimHarness.profileBody,
                headers: SimClient.klaviyoHeaders(contentType: "application/json; charset=utf-8"))
            #expect(json.status == 201)
        }
    }

    @Test func schemaViolationsAre400WithPointer() async throws {
        try await SimHarness().run { c in
            let type = try await c.call(
                .post, "/api/profile-import", body: #"{"data":{"type":"list","attributes":{"email":"a@b.co"}}}"#)
            #expect(type.status == 400)
            #expect(type.firstError?["source"]?["pointer"] == "/data/type")
            let wrongType = try await c.call(
                .post, "/api/profile-import", body: #"{"data":{"type":"profile","attributes":{"first_name":5}}}"#)
            #expect(wrongType.firstError?["source"]?["pointer"] == "/data/attributes/first_name")
            let missing = try await c.call(.post, "/api/profile-import", body: #"{"data":{"type":"profile"}}"#)
            #expect(missing.firstError?["source"]?["pointer"] == "/data/attributes")
            let noId = try await c.call(
                .post, "/api/profile-import", body: #"{"data":{"type":"profile","attributes":{"first_name":"x"}}}"#)
            #expect(noId.status == 400)
            #expect(noId.firstError?["source"]?["pointer"] == "/data/attributes")
            let malformed = try await c.call(.post, "/api/profile-import", body: "{not json")
            #expect(malformed.status == 400)
        }
    }
}
