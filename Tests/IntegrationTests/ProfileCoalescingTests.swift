import AMQP
import Foundation
import Klaviyo
import Relay
import RelayTestSupport
import Testing

/// `profile.upsert` coalescing into profile bulk import jobs (issue #8 item 2), end to end: real `consume`
/// processes, RabbitMQ, Redis and klaviyo-sim (whose rate limits count every call; a fresh account each test).
/// `RELAY_COALESCE_THRESHOLD=0` makes every eligible upsert coalesce, so the tests do not depend on timing.
@Suite("Profile coalescing end to end", .timeLimit(.minutes(5)))
struct ProfileCoalescingTests {
    static let coalescing = [
        "RELAY_COALESCE": "on", "RELAY_COALESCE_THRESHOLD": "0", "RELAY_COALESCE_WINDOW": "1s",
        "RELAY_COALESCE_LOCK_TTL": "2s",
    ]

    func count(_ stack: RelayStack, account: String, _ method: String, _ path: String) async throws -> Int {
        try await stack.klaviyoRequests(account: account).filter {
            $0["method"]?.stringValue == method && $0["path"]?.stringValue == path
        }.count
    }

    func publishUpsert(_ stack: RelayStack, account: String, id: String, profile: JSONValue) async throws {
        try await stack.publish(
            commandBody(id: id, type: "profile.upsert", accountID: account, payload: ["profile": profile]),
            routingKey: "profile.upsert", messageID: id)
    }

    /// Every command id with its outcomes: results (`succeeded`/`failed`) and dead letters (`dead:<code>`).
    func outcomes(_ stack: RelayStack) -> [String: [String]] {
        var byID: [String: [String]] = [:]
        for delivery in stack.deliveries {
            guard let body = try? JSONValue.parse(delivery.body) else { continue }
            if let code = delivery.properties.headers[DeadLetter.Header.errorCode]?.stringValue {
                if let id = body["id"]?.stringValue { byID[id, default: []].append("dead:\(code)") }
            } else if let id = body["command_id"]?.stringValue, let outcome = body["outcome"]?.stringValue {
                byID[id, default: []].append(outcome)
            }
        }
        return byID
    }

    @Test func everyCoalescedUpsertGetsExactlyItsOwnOutcome() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            _ = try stack.startConsumer(concurrency: 64, environment: Self.coalescing)
            try await stack.waitForConsumers(1)
            let tag = UUID().uuidString.prefix(6).lowercased()
            // Klaviyo refuses an email with a comma; the relay's schema does not, so only the job can say so.
            let invalid = Set((0..<20).map { $0 * 100 + 37 })
            var ids: [String] = []
            for index in 0..<2000 {
                let id = stack.id("co-\(index)")
                ids.append(id)
                let email =
                    invalid.contains(index) ? "bad,\(index).\(tag)@example.com" : "u\(index).\(tag)@example.com"
                try await publishUpsert(
                    stack, account: account, id: id,
                    profile: ["email": .string(email), "properties": ["n": .int(Int64(index))]])
            }
            try await stack.waitForCollected(2000, timeout: .seconds(180))
            let byID = outcomes(stack)
            for (index, id) in ids.enumerated() {
                let expected = invalid.contains(index) ? "dead:klaviyo_rejected" : "succeeded"
                #expect(byID[id] == [expected], "command \(index): \(byID[id] ?? [])")
            }
            #expect(byID.count == 2000)
            // Each success names its job; a row error carries Klaviyo's reason for that row.
            let result = try #require(stack.results(for: ids[1]).first)
            #expect(result.klaviyo?.status == 202)
            #expect(result.klaviyo?.data?["coalesced"] == true)
            let jobID = try #require(result.klaviyo?.ids.first)
            #expect(result.klaviyo?.job?["id"] == .string(jobID))
            let dead = try #require(
                stack.deadLetters.first { (try? JSONValue.parse($0.body))?["id"]?.stringValue == ids[37] })
            let detail = dead.properties.headers[DeadLetter.Header.errorDetail]?.stringValue ?? ""
            #expect(detail.contains("Invalid email address"), "\(detail)")
            // Nothing went out singly; each batch was submitted once, and batches carried many rows each (how
            // many depends on how fast the consumer joins them within the 1 s window).
            #expect(try await count(stack, account: account, "POST", "/api/profile-import") == 0)
            let jobs = try await count(stack, account: account, "POST", "/api/profile-bulk-import-jobs")
            let byCommand = stack.resultsByCommand()
            let jobIDs = Set(ids.compactMap { byCommand[$0]?.first?.klaviyo?.ids.first })
            #expect(jobs == jobIDs.count, "\(jobs) submits for \(jobIDs.count) jobs")
            #expect(jobs <= 40, "\(jobs) jobs for 2,000 rows")
            let profiles = try await stack.simAdmin(.GET, "/_sim/accounts/\(account)/profiles")
            #expect(profiles["count"] == 1980)
        }
    }

    @Test func aConsumerKilledRightAfterSubmittingDoesNotMakeTheJobRunTwice() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            var crashing = Self.coalescing
            crashing["RELAY_COALESCE_WINDOW"] = "3s"
            crashing["RELAY_ENABLE_FAULT_INJECTION"] = "1"
            crashing["RELAY_FAULT_CRASH_AT"] = CrashPoint.Stage.afterBulkSubmit.rawValue
            let first = try stack.startConsumer(environment: crashing)
            try await stack.waitForConsumers(1)
            let tag = UUID().uuidString.prefix(6).lowercased()
            let ids = (0..<50).map { stack.id("crash-\($0)") }
            for (index, id) in ids.enumerated() {
                try await publishUpsert(
                    stack, account: account, id: id, profile: ["email": .string("c\(index).\(tag)@example.com")])
            }
            // The submitter kills itself once Klaviyo accepted the job, before its id is recorded.
            let ending = try await first.waitForExit(timeout: .seconds(60))
            #expect(ending.reason == .uncaughtSignal && ending.status == 9, "\(first.exitDescription)")
            #expect(try await count(stack, account: account, "POST", "/api/profile-bulk-import-jobs") == 1)
            var restarted = Self.coalescing
            restarted["RELAY_COALESCE_WINDOW"] = "3s"
            _ = try stack.startConsumer(environment: restarted)
            // Distinct commands, not deliveries: a re-published stored result is a second delivery of one id.
            try await eventually("every command's outcome", timeout: .seconds(90)) {
                let byCommand = stack.resultsByCommand()
                return ids.allSatisfy { byCommand[$0] != nil }
            }
            // Every command ended once: a copy redelivered from the killed consumer may re-publish the stored
            // result (results are at-least-once), but never a second, different outcome or job.
            let byID = outcomes(stack)
            let byCommand = stack.resultsByCommand()
            for id in ids {
                let seen = byID[id] ?? []
                #expect(!seen.isEmpty && seen.allSatisfy { $0 == "succeeded" }, "\(id): \(seen)")
                let jobs = Set((byCommand[id] ?? []).compactMap { $0.klaviyo?.ids.first })
                #expect(jobs.count == 1, "\(id) ended in \(jobs.count) jobs")
            }
            // The next consumer found the job in Klaviyo's job list and adopted it: every batch was submitted
            // exactly once (one job per batch, the crashed one included), and nothing went out singly.
            let jobIDs = Set(ids.compactMap { byCommand[$0]?.first?.klaviyo?.ids.first })
            let posts = try await count(stack, account: account, "POST", "/api/profile-bulk-import-jobs")
            #expect(posts == jobIDs.count, "\(posts) submits for \(jobIDs.count) jobs")
            #expect(try await count(stack, account: account, "GET", "/api/profile-bulk-import-jobs") >= 1)
            #expect(try await count(stack, account: account, "POST", "/api/profile-import") == 0)
        }
    }

    @Test func upsertsWhoseMeaningDiffersInBulkGoSingly() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            _ = try stack.startConsumer(environment: Self.coalescing)
            try await stack.waitForConsumers(1)
            let tag = UUID().uuidString.prefix(6).lowercased()
            // A null clears a field with profile-import; bulk import does not document that: sent singly.
            let clearing = stack.id("clears")
            try await publishUpsert(
                stack, account: account, id: clearing,
                profile: ["email": .string("n.\(tag)@example.com"), "first_name": .null])
            try await stack.waitForCollected(1)
            let created = try #require(stack.results(for: clearing).first)
            #expect(created.outcome == .succeeded)
            #expect(created.klaviyo?.status == 201)
            let profileID = try #require(created.klaviyo?.ids.first)
            // An upsert by Klaviyo profile id: sent singly too.
            let byID = stack.id("by-id")
            try await stack.publish(
                commandBody(
                    id: byID, type: "profile.upsert", accountID: account,
                    payload: [
                        "profile_id": .string(profileID),
                        "profile": ["email": .string("n.\(tag)@example.com"), "first_name": "Ada"],
                    ]),
                routingKey: "profile.upsert", messageID: byID)
            try await stack.waitForCollected(2)
            #expect(stack.results(for: byID).first?.klaviyo?.status == 200)
            #expect(try await count(stack, account: account, "POST", "/api/profile-import") == 2)
            #expect(try await count(stack, account: account, "POST", "/api/profile-bulk-import-jobs") == 0)
        }
    }

    @Test func aCancelledJobSendsEveryUpsertSingly() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            _ = try await stack.simAdmin(
                .PUT, "/_sim/accounts/\(account)/bulk-import-jobs", ["cancel_new_jobs": true])
            _ = try stack.startConsumer(environment: Self.coalescing)
            try await stack.waitForConsumers(1)
            let tag = UUID().uuidString.prefix(6).lowercased()
            let ids = (0..<10).map { stack.id("cancel-\($0)") }
            for (index, id) in ids.enumerated() {
                try await publishUpsert(
                    stack, account: account, id: id, profile: ["email": .string("x\(index).\(tag)@example.com")])
            }
            try await stack.waitForCollected(10, timeout: .seconds(60))
            let byID = outcomes(stack)
            for id in ids {
                #expect(byID[id] == ["succeeded"], "\(id): \(byID[id] ?? [])")
                #expect(stack.results(for: id).first?.klaviyo?.status == 201)
            }
            // One job (two when a loaded machine closes the window early), every one cancelled: all ten singly.
            #expect((1...2).contains(try await count(stack, account: account, "POST", "/api/profile-bulk-import-jobs")))
            #expect(try await count(stack, account: account, "POST", "/api/profile-import") == 10)
        }
    }

    @Test func twoUpsertsOfOneEmailLandInOrderInSeparateJobs() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            _ = try stack.startConsumer(environment: Self.coalescing)
            try await stack.waitForConsumers(1)
            let email = "order.\(UUID().uuidString.prefix(6).lowercased())@example.com"
            let firstID = stack.id("order-1")
            let secondID = stack.id("order-2")
            try await publishUpsert(
                stack, account: account, id: firstID, profile: ["email": .string(email), "first_name": "First"])
            try await eventually("the first upsert joined a batch", timeout: .seconds(20)) {
                try await stack.redis.send(["EXISTS", RedisKeys.coalescing(account) + "member:" + firstID]).int == 1
            }
            try await publishUpsert(
                stack, account: account, id: secondID, profile: ["email": .string(email), "first_name": "Second"])
            try await stack.waitForCollected(2, timeout: .seconds(60))
            let first = try #require(stack.results(for: firstID).first?.klaviyo?.ids.first)
            let second = try #require(stack.results(for: secondID).first?.klaviyo?.ids.first)
            #expect(first != second)
            #expect(try await count(stack, account: account, "POST", "/api/profile-bulk-import-jobs") == 2)
            let profiles = try await stack.simAdmin(.GET, "/_sim/accounts/\(account)/profiles")
            #expect(profiles["count"] == 1)
            #expect(profiles["profiles"]?.arrayValue?.first?["attributes"]?["first_name"] == "Second")
        }
    }
}
