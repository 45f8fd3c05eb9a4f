import AMQP
import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// `profile.bulk_import` and `campaign.send` end to end: the job is submitted once, its id kept in Redis, and
/// the command polled through the delay tiers (never waiting in a consumer) until klaviyo-sim reports the job
/// final (about a second); a consumer killed while the command waits does not make the next one submit again.
@Suite("Job commands end to end", .timeLimit(.minutes(3)))
struct JobCommandsTests {
    let commands = CommandTypesTests()

    func posts(_ stack: RelayStack, account: String, path: String) async throws -> Int {
        try await stack.klaviyoRequests(account: account).filter {
            $0["method"]?.stringValue == "POST" && $0["path"]?.stringValue == path
        }.count
    }

    @Test func bulkImportReportsTheFinishedJobAfterPollingThroughTheDelayTiers() async throws {
        try await withRelayStack { stack in
            let account = try await commands.startStack(stack)
            let list = try await commands.run(
                stack, account, "list.create", id: stack.id("bi-list"), ["name": "Imported"])
            let listID = try #require(list.klaviyo?.ids.first)
            let tag = UUID().uuidString.prefix(6).lowercased()
            let profiles: [JSONValue] = (0..<3).map { ["email": .string("bi\($0).\(tag)@example.com")] }
            let id = stack.id("bulk-import")
            let result = try await commands.run(
                stack, account, "profile.bulk_import", id: id,
                ["list_id": .string(listID), "profiles": .array(profiles)])
            let data = try #require(result.klaviyo?.data)
            #expect(data["status"] == "complete")
            #expect(data["total_count"] == 3)
            #expect(data["completed_count"] == 3)
            #expect(data["failed_count"] == 0)
            #expect(data["import_errors"] == [])
            #expect(try await posts(stack, account: account, path: "/api/profile-bulk-import-jobs") == 1)
            // The result came from polls of the job after the submit (the first one a delay tier later).
            let jobID = try #require(result.klaviyo?.ids.first)
            let requests = try await stack.klaviyoRequests(account: account).compactMap { $0["path"]?.stringValue }
            let submit = try #require(requests.firstIndex(of: "/api/profile-bulk-import-jobs"))
            let polls = requests.indices.filter { requests[$0] == "/api/profile-bulk-import-jobs/\(jobID)" }
            #expect(!polls.isEmpty && polls.allSatisfy { $0 > submit })
            #expect(data["polls"] == .int(Int64(polls.count)), "\(data)")
            let stored = try await stack.redis.send(["GET", RedisKeys.job(account, id)]).string
            #expect(stored?.contains(jobID) == true)
        }
    }

    @Test func campaignSendReportsTheSendJobsFinalStatus() async throws {
        try await withRelayStack { stack in
            let account = try await commands.startStack(stack)
            let list = try await commands.run(
                stack, account, "list.create", id: stack.id("cs-list"), ["name": "Audience"])
            let listID = try #require(list.klaviyo?.ids.first)
            let created = try await commands.run(
                stack, account, "campaign.create", id: stack.id("cs-create"),
                [
                    "name": "Launch", "audiences": ["included": [.string(listID)]],
                    "message": ["subject": "Hello", "from_email": "store@example.com", "from_label": "Store"],
                ])
            let campaignID = try #require(created.klaviyo?.ids.first)

            let sent = try await commands.run(
                stack, account, "campaign.send", id: stack.id("cs-send"), ["campaign_id": .string(campaignID)])
            #expect(sent.klaviyo?.data?["status"] == "complete")
            #expect(sent.klaviyo?.ids == [campaignID])
            #expect(try await posts(stack, account: account, path: "/api/campaign-send-jobs") == 1)
            let after = try await commands.run(
                stack, account, "campaign.get", id: stack.id("cs-get"), ["campaign_id": .string(campaignID)])
            #expect(after.klaviyo?.data?["campaign"]?["status"] != "Draft")
        }
    }

    @Test func aConsumerKilledWhileTheJobRunsDoesNotMakeTheNextOneSubmitAgain() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let first = try stack.startConsumer()
            try await stack.waitForConsumers(1, queue: .profiles)
            let id = stack.id("bulk-kill")
            let tag = UUID().uuidString.prefix(6).lowercased()
            try await stack.publish(
                commandBody(
                    id: id, type: "profile.bulk_import", accountID: account,
                    payload: ["profiles": [["email": .string("k.\(tag)@example.com")]]]),
                routingKey: "profile.bulk_import", messageID: id)
            // The job is submitted and recorded; the command now waits in a delay tier, not in the consumer.
            try await eventually("the job id recorded", timeout: .seconds(20)) {
                try await stack.redis.send(["GET", RedisKeys.job(account, id)]).string != nil
            }
            first.kill9()
            _ = try stack.startConsumer()
            try await eventually("the result", timeout: .seconds(30)) { !stack.results(for: id).isEmpty }
            let result = try #require(stack.results(for: id).first)
            #expect(result.outcome == .succeeded)
            #expect(result.klaviyo?.data?["status"] == "complete")
            #expect(try await posts(stack, account: account, path: "/api/profile-bulk-import-jobs") == 1)
        }
    }

    @Test func connectionValidateReportsMissingScopes() async throws {
        try await withRelayStack { stack in
            let (account, key) = try await stack.connectAccount()
            // Narrow the key's scopes in klaviyo-sim (an upsert of the same account).
            try await stack.simAdmin(
                .POST, "/_sim/accounts",
                [
                    "account_id": .string(account), "api_key": .string(key), "name": "Scoped Store",
                    "scopes": ["accounts:read", "profiles:read", "lists:read"],
                ])
            _ = try stack.startConsumer()
            try await stack.waitForConsumers(1, queue: .campaigns)
            let result = try await commands.run(stack, account, "connection.validate", id: stack.id("validate"), [:])
            let data = try #require(result.klaviyo?.data)
            #expect(data["ok"] == false)
            #expect(data["missing_scopes"] == ["campaigns:read", "flows:read"], "\(data)")
            #expect(
                data["checks"]?.arrayValue?.filter { $0["ok"] == true }.compactMap { $0["scope"]?.stringValue }
                    == ["accounts:read", "profiles:read", "lists:read"])
        }
    }
}
