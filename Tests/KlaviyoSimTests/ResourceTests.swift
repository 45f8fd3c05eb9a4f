import HTTPTypes
import KlaviyoSimCore
import Testing

@Suite("Lists, events, bulk jobs, campaigns, flows, subscriptions")
struct ResourceTests {
    static func createProfile(_ c: SimClient, _ email: String) async throws -> String {
        let r = try await c.call(
            .post, "/api/profile-import", body: #"{"data":{"type":"profile","attributes":{"email":"\#(email)"}}}"#)
        return try #require(r.json?["data"]?["id"]?.stringValue)
    }

    static func createList(_ c: SimClient, _ name: String = "Newsletter") async throws -> String {
        let r = try await c.call(
            .post, "/api/lists", body: #"{"data":{"type":"list","attributes":{"name":"\#(name)"}}}"#)
        #expect(r.status == 201)
        #expect(r.json?["data"]?["attributes"]?["name"]?.stringValue == name)
        let id = try #require(r.json?["data"]?["id"]?.stringValue)
        #expect(id.count == 6)
        return id
    }

    @Test func listsAndMembership() async throws {
        try await SimHarness().run { c in
            let listId = try await Self.createList(c)
            let p = try await Self.createProfile(c, "a@example.com")
            let body = #"{"data":[{"type":"profile","id":"\#(p)"}]}"#
            #expect(try await c.call(.post, "/api/lists/\(listId)/relationships/profiles", body: body).status == 204)
            #expect(try await c.call(.post, "/api/lists/\(listId)/relationships/profiles", body: body).status == 204)
            var lists = try await c.admin(.get, "/_sim/accounts/acct_1/lists")
            #expect(lists.json?["lists"]?.arrayValue?.first?["count"] == 1)
            let unknown = try await c.call(
                .post, "/api/lists/\(listId)/relationships/profiles",
                body: #"{"data":[{"type":"profile","id":"NOPE"}]}"#)
            #expect(unknown.status == 400)
            #expect(unknown.firstError?["source"]?["pointer"] == "/data/0/id")
            #expect(try await c.call(.delete, "/api/lists/\(listId)/relationships/profiles", body: body).status == 204)
            lists = try await c.admin(.get, "/_sim/accounts/acct_1/lists")
            #expect(lists.json?["lists"]?.arrayValue?.first?["count"] == 0)
            let filtered = try await c.call(.get, "/api/lists?filter=equals(name,%22Newsletter%22)")
            #expect(filtered.json?["data"]?.arrayValue?.count == 1)
            #expect(try await c.call(.get, "/api/lists/\(listId)").status == 200)
            #expect(try await c.call(.get, "/api/lists/XXXXXX").status == 404)
        }
    }

    @Test func eventsDeduplicateByUniqueId() async throws {
        try await SimHarness().run { c in
            let body =
                #"{"data":{"type":"event","attributes":{"properties":{"OrderId":"1"},"unique_id":"order-1","metric":{"data":{"type":"metric","attributes":{"name":"Placed Order"}}},"profile":{"data":{"type":"profile","attributes":{"email":"buyer@example.com"}}}}}}"#
            let first = try await c.call(.post, "/api/events", body: body)
            #expect(first.status == 202)
            #expect(first.json == nil)
            #expect(try await c.call(.post, "/api/events", body: body).status == 202)
            let events = try await c.admin(.get, "/_sim/accounts/acct_1/events")
            #expect(events.json?["count"] == 1)
            #expect(events.json?["events"]?.arrayValue?.first?["metric"] == "Placed Order")
            let profiles = try await c.admin(.get, "/_sim/accounts/acct_1/profiles")
            #expect(profiles.json?["count"] == 1)
            let missingMetric = try await c.call(
                .post, "/api/events",
                body:
                    #"{"data":{"type":"event","attributes":{"properties":{},"profile":{"data":{"type":"profile","attributes":{"email":"x@example.com"}}}}}}"#
            )
            #expect(missingMetric.status == 400)
            #expect(missingMetric.firstError?["source"]?["pointer"] == "/data/attributes/metric")
            let bulk =
                #"{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[{"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","attributes":{"email":"buyer@example.com"}}},"events":{"data":[{"type":"event","attributes":{"properties":{},"unique_id":"order-1","metric":{"data":{"type":"metric","attributes":{"name":"Placed Order"}}}}},{"type":"event","attributes":{"properties":{},"unique_id":"view-1","metric":{"data":{"type":"metric","attributes":{"name":"Viewed Product"}}}}}]}}}]}}}}"#
            #expect(try await c.call(.post, "/api/event-bulk-create-jobs", body: bulk).status == 202)
            let after = try await c.admin(.get, "/_sim/accounts/acct_1/events")
            #expect(after.json?["count"] == 2)
            let uniqueIDs = after.json?["events"]?.arrayValue?.compactMap { $0["unique_id"]?.stringValue }
            #expect(uniqueIDs == ["order-1", "view-1"], "events created in bulk are listed with their unique_id")
        }
    }

    @Test func aRefusedBulkEventRequestRecordsNothing() async throws {
        try await SimHarness().run { c in
            // The second group names a profile id that does not exist: the request is refused as a whole.
            let bulk =
                #"{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[{"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","attributes":{"email":"ok@example.com"}}},"events":{"data":[{"type":"event","attributes":{"properties":{},"unique_id":"ok-1","metric":{"data":{"type":"metric","attributes":{"name":"Placed Order"}}}}}]}}},{"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","id":"NOPE","attributes":{"email":"gone@example.com"}}},"events":{"data":[{"type":"event","attributes":{"properties":{},"unique_id":"bad-1","metric":{"data":{"type":"metric","attributes":{"name":"Placed Order"}}}}}]}}}]}}}}"#
            let refused = try await c.call(.post, "/api/event-bulk-create-jobs", body: bulk)
            #expect(refused.status >= 400 && refused.status < 500)
            let events = try await c.admin(.get, "/_sim/accounts/acct_1/events")
            #expect(events.json?["count"] == 0)
            let profiles = try await c.admin(.get, "/_sim/accounts/acct_1/profiles")
            #expect(profiles.json?["count"] == 0)
        }
    }

    @Test func bulkImportJobLifecycle() async throws {
        try await SimHarness().run { c in
            let listId = try await Self.createList(c)
            let body =
                #"{"data":{"type":"profile-bulk-import-job","attributes":{"profiles":{"data":[{"type":"profile","attributes":{"email":"a@example.com"}},{"type":"profile","attributes":{"email":"broken"}}]}},"relationships":{"lists":{"data":[{"type":"list","id":"\#(listId)"}]}}}}"#
            let created = try await c.call(.post, "/api/profile-bulk-import-jobs", body: body)
            #expect(created.status == 202)
            #expect(created.json?["data"]?["attributes"]?["status"] == "queued")
            #expect(created.json?["data"]?["attributes"]?["total_count"] == 2)
            let jobId = try #require(created.json?["data"]?["id"]?.stringValue)
            // The job moves queued → processing → complete with its age: poll until it completes.
            var done = try await c.call(.get, "/api/profile-bulk-import-jobs/\(jobId)")
            let deadline = ContinuousClock.now + .seconds(10)
            while done.json?["data"]?["attributes"]?["status"] != "complete", ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                done = try await c.call(.get, "/api/profile-bulk-import-jobs/\(jobId)")
            }
            #expect(done.json?["data"]?["attributes"]?["status"] == "complete")
            #expect(done.json?["data"]?["attributes"]?["completed_count"] == 1)
            #expect(done.json?["data"]?["attributes"]?["failed_count"] == 1)
            let errors = try await c.call(.get, "/api/profile-bulk-import-jobs/\(jobId)/import-errors")
            #expect(errors.json?["data"]?.arrayValue?.count == 1)
            let lists = try await c.admin(.get, "/_sim/accounts/acct_1/lists")
            #expect(lists.json?["lists"]?.arrayValue?.first?["count"] == 1)
        }
    }

    @Test func campaignsSendAndCancel() async throws {
        try await SimHarness().run { c in
            let body =
                #"{"data":{"type":"campaign","attributes":{"name":"Launch","audiences":{"included":["Y6nRLr"]},"send_strategy":{"method":"immediate"},"campaign-messages":{"data":[{"type":"campaign-message","attributes":{"definition":{"channel":"email","label":"Main","content":{"subject":"Hi","from_email":"s@example.com","from_label":"S"}}}}]}}}}"#
            let created = try await c.call(.post, "/api/campaigns", body: body)
            #expect(created.status == 201)
            #expect(created.json?["data"]?["attributes"]?["status"] == "Draft")
            let id = try #require(created.json?["data"]?["id"]?.stringValue)
            #expect(try await c.call(.get, "/api/campaigns").status == 400)
            let listed = try await c.call(.get, "/api/campaigns?filter=equals(messages.channel,'email')")
            #expect(listed.json?["data"]?.arrayValue?.count == 1)
            let sms = try await c.call(.get, "/api/campaigns?filter=equals(messages.channel,'sms')")
            #expect(sms.json?["data"]?.arrayValue?.count == 0)
            let send = #"{"data":{"type":"campaign-send-job","id":"\#(id)"}}"#
            let sent = try await c.call(.post, "/api/campaign-send-jobs", body: send)
            #expect(sent.status == 202)
            #expect(sent.json?["data"]?["attributes"]?["status"] == "queued")
            #expect(try await c.call(.post, "/api/campaign-send-jobs", body: send).status == 400)
            let cancel = try await c.call(
                .patch, "/api/campaign-send-jobs/\(id)",
                body: #"{"data":{"type":"campaign-send-job","id":"\#(id)","attributes":{"action":"cancel"}}}"#)
            #expect(cancel.status == 204)
            let job = try await c.call(.get, "/api/campaign-send-jobs/\(id)")
            #expect(job.json?["data"]?["attributes"]?["status"] == "cancelled")
            let campaign = try await c.call(.get, "/api/campaigns/\(id)")
            #expect(campaign.json?["data"]?["attributes"]?["status"] == "Cancelled")
        }
    }

    @Test func flowsStatusUpdate() async throws {
        try await SimHarness().run { c in
            let flows = try await c.call(.get, "/api/flows")
            let list = try #require(flows.json?["data"]?.arrayValue)
            #expect(list.count == 3)
            let id = try #require(list.first?["id"]?.stringValue)
            let patched = try await c.call(
                .patch, "/api/flows/\(id)",
                body: #"{"data":{"type":"flow","id":"\#(id)","attributes":{"status":"live"}}}"#)
            #expect(patched.status == 200)
            #expect(patched.json?["data"]?["attributes"]?["status"] == "live")
            let bad = try await c.call(
                .patch, "/api/flows/\(id)",
                body: #"{"data":{"type":"flow","id":"\#(id)","attributes":{"status":"paused"}}}"#)
            #expect(bad.status == 400)
        }
    }

    @Test func subscribeAndUnsubscribe() async throws {
        try await SimHarness().run { c in
            let listId = try await Self.createList(c)
            let noList =
                #"{"data":{"type":"profile-subscription-bulk-create-job","attributes":{"profiles":{"data":[{"type":"profile","attributes":{"email":"new@example.com","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}}}}}]}}}}"#
            #expect(try await c.call(.post, "/api/profile-subscription-bulk-create-jobs", body: noList).status == 202)
            #expect(try await c.admin(.get, "/_sim/accounts/acct_1/profiles").json?["count"] == 0)
            let withList =
                #"{"data":{"type":"profile-subscription-bulk-create-job","attributes":{"profiles":{"data":[{"type":"profile","attributes":{"email":"new@example.com","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}}}}}]}},"relationships":{"list":{"data":{"type":"list","id":"\#(listId)"}}}}}"#
            #expect(try await c.call(.post, "/api/profile-subscription-bulk-create-jobs", body: withList).status == 202)
            #expect(try await c.admin(.get, "/_sim/accounts/acct_1/profiles").json?["count"] == 1)
            let subs = try await c.admin(.get, "/_sim/accounts/acct_1/subscriptions")
            #expect(subs.json?["subscriptions"]?.arrayValue?.first?["channels"]?["email"] == "SUBSCRIBED")
            let unsub =
                #"{"data":{"type":"profile-subscription-bulk-delete-job","attributes":{"profiles":{"data":[{"type":"profile","attributes":{"email":"new@example.com","subscriptions":{"email":{"marketing":{"consent":"UNSUBSCRIBED"}}}}}]}}}}"#
            #expect(try await c.call(.post, "/api/profile-subscription-bulk-delete-jobs", body: unsub).status == 202)
            let after = try await c.admin(.get, "/_sim/accounts/acct_1/subscriptions")
            #expect(after.json?["subscriptions"]?.arrayValue?.first?["channels"]?["email"] == "UNSUBSCRIBED")
            let effects = try await c.admin(.get, "/_sim/accounts/acct_1/side-effects")
            #expect(effects.json?["side-effects"]?.arrayValue?.last?["global"] == true)
        }
    }
}
