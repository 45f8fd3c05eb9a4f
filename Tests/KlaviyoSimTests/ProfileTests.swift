import Foundation
import HTTPTypes
import KlaviyoSimCore
import Testing

@Suite("Profiles")
struct ProfileTests {
    @Test func importCreatesThenUpdates() async throws {
        try await SimHarness().run { c in
            let first = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody)
            #expect(first.status == 201)
            let id = try #require(first.json?["data"]?["id"]?.stringValue)
            #expect(id.count == 26)
            #expect(first.json?["data"]?["attributes"]?["properties"]?["plan"] == "pro")
            let second = try await c.call(
                .post, "/api/profile-import",
                body:
                    #"{"data":{"type":"profile","attributes":{"email":"SARAH.mason@example.com","last_name":"Mason","first_name":null,"properties":{"plan":null,"tier":2}}}}"#
            )
            #expect(second.status == 200)
            #expect(second.json?["data"]?["id"]?.stringValue == id)
            let attrs = second.json?["data"]?["attributes"]
            #expect(attrs?["last_name"] == "Mason")
            #expect(attrs?["first_name"] == .null)
            #expect(attrs?["properties"] == ["tier": 2])
            let listed = try await c.admin(.get, "/_sim/accounts/acct_1/profiles")
            #expect(listed.json?["count"] == 1)
        }
    }

    @Test func invalidEmailAndPhoneAre400() async throws {
        try await SimHarness().run { c in
            let email = try await c.call(
                .post, "/api/profile-import",
                body: #"{"data":{"type":"profile","attributes":{"email":"not-an-email"}}}"#)
            #expect(email.status == 400)
            #expect(email.firstError?["code"] == "invalid")
            #expect(email.firstError?["source"]?["pointer"] == "/data/attributes/email")
            let phone = try await c.call(
                .post, "/api/profile-import",
                body: #"{"data":{"type":"profile","attributes":{"phone_number":"555-1234"}}}"#)
            #expect(phone.firstError?["source"]?["pointer"] == "/data/attributes/phone_number")
            let listed = try await c.admin(.get, "/_sim/accounts/acct_1/profiles")
            #expect(listed.json?["count"] == 0)
        }
    }

    @Test func filterFindsAndMisses() async throws {
        try await SimHarness().run { c in
            _ = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody)
            let found = try await c.call(.get, "/api/profiles?filter=equals(email,%22sarah.mason@example.com%22)")
            #expect(found.status == 200)
            #expect(found.json?["data"]?.arrayValue?.count == 1)
            let missing = try await c.call(.get, "/api/profiles?filter=equals(email,'nobody@example.com')")
            #expect(missing.json?["data"]?.arrayValue?.count == 0)
            let any = try await c.call(
                .get, "/api/profiles?filter=any(email,%5B%22x@example.com%22,%22sarah.mason@example.com%22%5D)")
            #expect(any.json?["data"]?.arrayValue?.count == 1)
            let bad = try await c.call(.get, "/api/profiles?filter=contains(email,%22x%22)")
            #expect(bad.status == 400)
            #expect(bad.firstError?["source"]?["parameter"] == "filter")
        }
    }

    @Test func pagination() async throws {
        try await SimHarness().run { c in
            for i in 0..<5 {
                let r = try await c.call(
                    .post, "/api/profiles",
                    body: #"{"data":{"type":"profile","attributes":{"external_id":"ext-\#(i)"}}}"#)
                #expect(r.status == 201)
            }
            let page1 = try await c.call(.get, "/api/profiles?page%5Bsize%5D=2")
            #expect(page1.json?["data"]?.arrayValue?.count == 2)
            let next = try #require(page1.json?["links"]?["next"]?.stringValue)
            let path = "/api/" + (next.components(separatedBy: "/api/").last ?? "")
            let page2 = try await c.call(.get, path)
            #expect(page2.json?["data"]?.arrayValue?.count == 2)
            #expect(page2.json?["data"]?.arrayValue?.first?["attributes"]?["external_id"] == "ext-2")
            let tooBig = try await c.call(.get, "/api/profiles?page%5Bsize%5D=101")
            #expect(tooBig.status == 400)
        }
    }

    @Test func getAndPatch() async throws {
        try await SimHarness().run { c in
            let created = try await c.call(.post, "/api/profile-import", body: SimHarness.profileBody)
            let id = try #require(created.json?["data"]?["id"]?.stringValue)
            let got = try await c.call(.get, "/api/profiles/\(id)/")
            #expect(got.status == 200)
            #expect(got.json?["data"]?["attributes"]?["email"] == "sarah.mason@example.com")
            let patched = try await c.call(
                .patch, "/api/profiles/\(id)",
                body: #"{"data":{"type":"profile","id":"\#(id)","attributes":{"first_name":"Sally"}}}"#)
            #expect(patched.status == 200)
            #expect(patched.json?["data"]?["attributes"]?["first_name"] == "Sally")
            let unknown = try await c.call(
                .patch, "/api/profiles/01HZZZZZZZZZZZZZZZZZZZZZZZ",
                body: #"{"data":{"type":"profile","id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","attributes":{"first_name":"x"}}}"#)
            #expect(unknown.status == 404)
            let mismatch = try await c.call(
                .patch, "/api/profiles/\(id)",
                body: #"{"data":{"type":"profile","id":"OTHER","attributes":{"first_name":"x"}}}"#)
            #expect(mismatch.status == 409)
            let missing = try await c.call(.get, "/api/profiles/01HZZZZZZZZZZZZZZZZZZZZZZZ")
            #expect(missing.status == 404)
        }
    }

    @Test func createDuplicateIs409WithExistingId() async throws {
        try await SimHarness().run { c in
            let first = try await c.call(.post, "/api/profiles", body: SimHarness.profileBody)
            #expect(first.status == 201)
            let id = try #require(first.json?["data"]?["id"]?.stringValue)
            let dup = try await c.call(.post, "/api/profiles", body: SimHarness.profileBody)
            #expect(dup.status == 409)
            #expect(dup.firstError?["code"] == "duplicate_profile")
            #expect(dup.firstError?["meta"]?["duplicate_profile_id"]?.stringValue == id)
            // PATCH another profile onto the same email collides too.
            let other = try await c.call(
                .post, "/api/profiles", body: #"{"data":{"type":"profile","attributes":{"external_id":"x1"}}}"#)
            let otherId = try #require(other.json?["data"]?["id"]?.stringValue)
            let collide = try await c.call(
                .patch, "/api/profiles/\(otherId)",
                body:
                    #"{"data":{"type":"profile","id":"\#(otherId)","attributes":{"email":"sarah.mason@example.com"}}}"#)
            #expect(collide.status == 409)
            #expect(collide.firstError?["meta"]?["duplicate_profile_id"]?.stringValue == id)
        }
    }
}
