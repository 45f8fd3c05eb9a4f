import Klaviyo
import Logging
import Relay
import Testing

/// `profile.bulk_import` and `campaign.send`: limits, the exact Klaviyo calls, and the job state machine
/// (submit → pending → poll → pending … → final result), against a scripted transport.
@Suite("Job commands")
struct JobCommandTests {
    let types = CommandTypeTests()

    func execute(
        _ command: CommandEnvelope, _ transport: ScriptedTransport, job: JSONValue? = nil, mayHaveSent: Bool = false
    ) async throws -> CommandExecution {
        let client = KlaviyoClient(
            baseURL: "https://a.klaviyo.com", transport: transport, userAgent: "test", logger: Logger(label: "test"))
        return try await CommandExecutor(klaviyo: client).execute(
            command, credential: .apiKey("pk_test"), job: job, mayHaveSent: mayHaveSent)
    }

    static func job(_ type: String, _ id: String, _ status: String, failed: Int = 0) -> String {
        #"{"data":{"type":"\#(type)","id":"\#(id)","attributes":{"status":"\#(status)","total_count":3,"#
            + #""completed_count":\#(3 - failed),"failed_count":\#(failed)}}}"#
    }

    // MARK: profile.bulk_import

    @Test func bulkImportSubmitsOneJobAndAsksToBePolled() async throws {
        let command = try types.decode(
            "profile.bulk_import",
            ["list_id": "L1", "profiles": [["email": "a@example.com"], ["phone_number": "+15005550006"]]])
        let transport = ScriptedTransport { _ in
            ScriptedTransport.reply(202, Self.job("profile-bulk-import-job", "J1", "queued"))
        }
        let execution = try await execute(command, transport)
        #expect(transport.all.count == 1)
        #expect(transport.all.first?.method == "POST")
        #expect(transport.all.first?.url == "https://a.klaviyo.com/api/profile-bulk-import-jobs")
        let body = try #require(try types.bodies(transport).first)
        #expect(body["data"]?["type"] == "profile-bulk-import-job")
        #expect(body["data"]?["attributes"]?["profiles"]?["data"]?.arrayValue?.count == 2)
        #expect(
            body["data"]?["attributes"]?["profiles"]?["data"]?.arrayValue?.first
                == ["type": "profile", "attributes": ["email": "a@example.com"]])
        #expect(body["data"]?["relationships"] == ["lists": ["data": [["type": "list", "id": "L1"]]]])
        let pending = try #require(execution.pending)
        #expect(pending.state["job_id"] == "J1")
        #expect(pending.state["polls"] == 0)
        #expect(pending.pollAfter == .seconds(1))
    }

    @Test func bulkImportPollsAStoredJobInsteadOfSubmittingAgain() async throws {
        let command = try types.decode("profile.bulk_import", ["profiles": [["email": "a@example.com"]]])
        let transport = ScriptedTransport { _ in
            ScriptedTransport.reply(200, Self.job("profile-bulk-import-job", "J1", "processing"))
        }
        let state: JSONValue = ["job_id": "J1", "polls": 4, "submitted_at": "2026-11-29T12:00:00Z"]
        let execution = try await execute(command, transport, job: state, mayHaveSent: true)
        #expect(transport.all.map(\.method) == ["GET"])
        #expect(transport.all.first?.url == "https://a.klaviyo.com/api/profile-bulk-import-jobs/J1")
        let pending = try #require(execution.pending)
        #expect(pending.state["polls"] == 5)
        #expect(pending.state["job_id"] == "J1")
        #expect(pending.pollAfter == .seconds(5))
    }

    /// A job's poll count comes back from Redis: a corrupt one (Int64.max) saturates instead of trapping the
    /// process (with every account's in-flight commands), both while the job runs and in its final result.
    @Test func anAbsurdStoredPollCountDoesNotTrap() async throws {
        let command = try types.decode("profile.bulk_import", ["profiles": [["email": "a@example.com"]]])
        let state: JSONValue = ["job_id": "J1", "polls": .int(.max), "submitted_at": "2026-11-29T12:00:00Z"]
        let running = ScriptedTransport { _ in
            ScriptedTransport.reply(200, Self.job("profile-bulk-import-job", "J1", "processing"))
        }
        let pending = try #require(try await execute(command, running, job: state, mayHaveSent: true).pending)
        #expect(pending.state["polls"] == .int(.max))
        #expect(pending.pollAfter == .seconds(30))
        let done = ScriptedTransport { _ in
            ScriptedTransport.reply(200, Self.job("profile-bulk-import-job", "J1", "complete"))
        }
        let finished = try await execute(command, done, job: state, mayHaveSent: true)
        #expect(finished.pending == nil)
        #expect(finished.klaviyo.data?["polls"] == .int(.max))
    }

    @Test func bulkImportFinishesWithCountsAndEveryImportError() async throws {
        let command = try types.decode("profile.bulk_import", ["profiles": [["email": "a@example.com"]]])
        let transport = ScriptedTransport { request in
            if request.url.hasSuffix("/import-errors") {
                return ScriptedTransport.reply(
                    200,
                    #"{"data":[{"type":"import-error","id":"E1","attributes":{"code":"invalid","title":"Invalid","#
                        + #""detail":"bad email","source":{"pointer":"/data/attributes/email"},"#
                        + #""original_payload":{"email":"x"}}}],"links":{"next":"https://a.klaviyo.com/api/"#
                        + #"profile-bulk-import-jobs/J1/import-errors?page%5Bcursor%5D=2"}}"#)
            }
            if request.url.contains("import-errors?") {
                return ScriptedTransport.reply(
                    200,
                    #"{"data":[{"type":"import-error","id":"E2","attributes":{"code":"invalid","title":"Invalid","#
                        + #""detail":"bad phone","source":{"pointer":"/p"},"original_payload":{"phone_number":"1"}}}],"#
                        + #""links":{}}"#)
            }
            return ScriptedTransport.reply(200, Self.job("profile-bulk-import-job", "J1", "complete", failed: 2))
        }
        let execution = try await execute(command, transport, job: ["job_id": "J1", "polls": 2])
        #expect(execution.pending == nil)
        #expect(execution.outcome == .succeeded)
        #expect(transport.all.count == 3)
        let data = try #require(execution.klaviyo.data)
        #expect(data["status"] == "complete")
        #expect(data["total_count"] == 3)
        #expect(data["completed_count"] == 1)
        #expect(data["failed_count"] == 2)
        #expect(
            data["import_errors"]?.arrayValue?.compactMap { $0["detail"]?.stringValue } == ["bad email", "bad phone"])
        #expect(data["import_errors"]?.arrayValue?.first?["original_payload"] == ["email": "x"])
        #expect(execution.klaviyo.ids == ["J1"])
    }

    @Test func aCancelledBulkImportIsAFailedResult() async throws {
        let command = try types.decode("profile.bulk_import", ["profiles": [["email": "a@example.com"]]])
        let transport = ScriptedTransport { _ in
            ScriptedTransport.reply(200, Self.job("profile-bulk-import-job", "J1", "cancelled"))
        }
        let execution = try await execute(command, transport, job: ["job_id": "J1", "polls": 0])
        #expect(execution.outcome == .failed)
        #expect(execution.failure?.code == "job_cancelled")
        #expect(execution.pending == nil)
    }

    @Test func bulkImportLimitsAreCheckedBeforeAnyCall() {
        #expect(types.rejection("profile.bulk_import", ["profiles": []]) == "/payload/profiles: needs at least 1 item")
        let tooMany = JSONValue.array((0..<10_001).map { ["external_id": .string("x\($0)")] })
        #expect(
            types.rejection("profile.bulk_import", ["profiles": tooMany])?.hasPrefix(
                "/payload/profiles: has 10001 items")
                == true)
        let big = String(repeating: "x", count: 60 * 1024)
        let fat: JSONValue = ["email": "a@example.com", "properties": ["a": .string(big), "b": .string(big)]]
        let fatRejection = types.rejection("profile.bulk_import", ["profiles": [fat]])
        #expect(fatRejection?.contains("100 KB") == true, "\(fatRejection ?? "accepted")")
        let medium: JSONValue = [
            "email": "a@example.com", "properties": ["a": .string(String(repeating: "y", count: 90_000))],
        ]
        #expect(
            types.rejection("profile.bulk_import", ["profiles": .array(Array(repeating: medium, count: 60))])?
                .contains("at most 5 MB per bulk import") == true)
        #expect(types.rejection("profile.bulk_import", ["profiles": [["first_name": "S"]]]) != nil)
        #expect(types.rejection("profile.bulk_import", ["profiles": [["email": "a@example.com"]], "list": "L"]) != nil)
    }

    // MARK: campaign.send

    @Test func campaignSendStartsTheSendJobAndAsksToBePolled() async throws {
        let command = try types.decode("campaign.send", ["campaign_id": "C1"])
        let transport = ScriptedTransport { _ in
            ScriptedTransport.reply(202, Self.job("campaign-send-job", "C1", "queued"))
        }
        let execution = try await execute(command, transport)
        #expect(transport.all.map(\.method) == ["POST"])
        #expect(transport.all.first?.url == "https://a.klaviyo.com/api/campaign-send-jobs")
        #expect(try types.bodies(transport).first == ["data": ["type": "campaign-send-job", "id": "C1"]])
        #expect(execution.pending?.state["job_id"] == "C1")
    }

    @Test func afterAnAmbiguousFailureCampaignSendLooksTheJobUpAndDoesNotSendAgain() async throws {
        let command = try types.decode("campaign.send", ["campaign_id": "C1"])
        let transport = ScriptedTransport { _ in
            ScriptedTransport.reply(200, Self.job("campaign-send-job", "C1", "complete"))
        }
        let execution = try await execute(command, transport, mayHaveSent: true)
        #expect(transport.all.map(\.method) == ["GET"])
        #expect(transport.all.first?.url == "https://a.klaviyo.com/api/campaign-send-jobs/C1")
        #expect(execution.pending == nil)
        #expect(execution.outcome == .succeeded)
        #expect(execution.klaviyo.data?["status"] == "complete")
        #expect(execution.klaviyo.data?["found_after_ambiguous_send"] == true)
    }

    @Test func afterAnAmbiguousFailureWithNoJobCampaignSendSends() async throws {
        let command = try types.decode("campaign.send", ["campaign_id": "C1"])
        let transport = ScriptedTransport { request in
            request.method == "GET"
                ? ScriptedTransport.reply(
                    404,
                    #"{"errors":[{"id":"e","status":404,"code":"not_found","title":"Not found","detail":"no job"}]}"#)
                : ScriptedTransport.reply(202, Self.job("campaign-send-job", "C1", "queued"))
        }
        let execution = try await execute(command, transport, mayHaveSent: true)
        #expect(transport.all.map(\.method) == ["GET", "POST"])
        #expect(execution.pending?.state["job_id"] == "C1")
    }

    @Test func campaignSendPollsUntilTheJobIsFinal() async throws {
        let command = try types.decode("campaign.send", ["campaign_id": "C1"])
        let running = ScriptedTransport { _ in
            ScriptedTransport.reply(200, Self.job("campaign-send-job", "C1", "processing"))
        }
        let first = try await execute(command, running, job: ["job_id": "C1", "polls": 0])
        #expect(first.pending?.state["polls"] == 1)
        #expect(running.all.map(\.method) == ["GET"])
        let cancelled = ScriptedTransport { _ in
            ScriptedTransport.reply(200, Self.job("campaign-send-job", "C1", "cancelled"))
        }
        let last = try await execute(command, cancelled, job: ["job_id": "C1", "polls": 1])
        #expect(last.pending == nil)
        #expect(last.outcome == .failed)
        #expect(last.klaviyo.data?["status"] == "cancelled")
    }

    @Test func pollsBackOffWithinTheRateTier() {
        #expect((0..<3).map(PendingJob.pollDelay) == [.seconds(1), .seconds(1), .seconds(1)])
        #expect(PendingJob.pollDelay(polls: 3) == .seconds(5))
        #expect(PendingJob.pollDelay(polls: 10) == .seconds(30))
    }
}

/// `connection.validate`: one read per scope area; 403s become missing scopes.
@Suite("connection.validate")
struct ConnectionValidateTests {
    @Test func reportsWhatWorksAndWhichScopesAreMissing() async throws {
        let command = try CommandTypeTests().decode("connection.validate", [:])
        let transport = ScriptedTransport { request in
            if request.url.contains("/api/flows") || request.url.contains("/api/lists") {
                return ScriptedTransport.reply(
                    403,
                    #"{"errors":[{"id":"e","status":403,"code":"permission_denied","title":"Forbidden","detail":"scope"}]}"#
                )
            }
            return ScriptedTransport.reply(200, #"{"data":[]}"#)
        }
        let execution = try await JobCommandTests().execute(command, transport)
        #expect(transport.all.count == 5)
        #expect(transport.all.allSatisfy { $0.method == "GET" })
        #expect(execution.outcome == .succeeded)
        #expect(execution.klaviyo.data?["ok"] == false)
        #expect(execution.klaviyo.data?["missing_scopes"] == ["lists:read", "flows:read"])
        #expect(execution.klaviyo.data?["checks"]?.arrayValue?.count == 5)
        #expect(
            CommandTypeTests().rejection("connection.validate", ["x": 1])
                == "/payload/x: is not allowed (connection.validate takes an empty payload)")
    }

    @Test func anotherFailureIsTheCommandsFailure() async throws {
        let command = try CommandTypeTests().decode("connection.validate", [:])
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(503, "") }
        await #expect(throws: KlaviyoError.self) { _ = try await JobCommandTests().execute(command, transport) }
    }
}
