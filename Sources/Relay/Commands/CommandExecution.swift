public import Klaviyo

/// What a command did at Klaviyo: the outcome to report.
public struct CommandExecution: Sendable, Hashable {
    /// `succeeded` or a definitive `failed`.
    public var outcome: CommandResult.Outcome
    /// Klaviyo's answer.
    public var klaviyo: CommandResult.KlaviyoOutcome
    /// Why it failed, for `failed`.
    public var failure: CommandResult.Failure?
    /// Set when a Klaviyo job was submitted or polled and is not finished: no result yet; the processor
    /// records `pending.state` and polls again later through a delay tier.
    public var pending: PendingJob?

    /// Creates an execution.
    public init(
        outcome: CommandResult.Outcome, klaviyo: CommandResult.KlaviyoOutcome, failure: CommandResult.Failure? = nil,
        pending: PendingJob? = nil
    ) {
        self.outcome = outcome
        self.klaviyo = klaviyo
        self.failure = failure
        self.pending = pending
    }
}

/// A Klaviyo job (bulk import, campaign send) that is still running.
public struct PendingJob: Sendable, Hashable {
    /// What the next attempt needs (`job_id`, `polls`, `submitted_at`); stored in Redis (`kr:job:<command id>`).
    public var state: JSONValue
    /// When to look again.
    public var pollAfter: Duration

    /// Creates a pending job.
    public init(state: JSONValue, pollAfter: Duration) {
        self.state = state
        self.pollAfter = pollAfter
    }

    /// The state after submitting job `jobID`.
    public static func submitted(jobID: String) -> PendingJob {
        PendingJob(
            state: ["job_id": .string(jobID), "polls": 0, "submitted_at": .string(Timestamp.now())],
            pollAfter: pollDelay(polls: 0))
    }

    /// The same job after one more poll that found it unfinished.
    public static func polledAgain(_ state: JSONValue) -> PendingJob {
        var members = state.objectValue ?? [:]
        let polls = Int(members["polls"]?.jobInteger ?? 0) + 1
        members["polls"] = .int(Int64(polls))
        return PendingJob(state: .object(members), pollAfter: pollDelay(polls: polls))
    }

    /// Polls back off: three after 1 s, then every 5 s up to the tenth, then every 30 s. One job's polls
    /// stay far below the job endpoints' rate tier (M: 10/s burst, 150/m steady); a 429 goes through the
    /// usual `Retry-After` path.
    public static func pollDelay(polls: Int) -> Duration {
        polls < 3 ? .seconds(1) : polls < 10 ? .seconds(5) : .seconds(30)
    }
}

/// Executes one validated command against Klaviyo with a credential (one attempt; retries are the
/// processor's).
public struct CommandExecutor: Sendable {
    /// The Klaviyo client.
    public let klaviyo: KlaviyoClient
    /// Coalesces `event.track` calls of one account (nil: `RELAY_BATCH_WINDOW=0`, every event is sent alone).
    public let batcher: EventBatcher?

    /// Creates an executor.
    public init(klaviyo: KlaviyoClient, batcher: EventBatcher? = nil) {
        self.klaviyo = klaviyo
        self.batcher = batcher
    }

    /// Whether the type is handled by this version.
    public static func supports(_ payload: CommandPayload) -> Bool {
        if case .unsupported = payload { return false }
        return true
    }

    /// Whether repeating the command's calls is harmless.
    public static func isIdempotent(_ payload: CommandPayload) -> Bool {
        switch payload {
        case .profileUpsert, .profileUpdate, .profileGet: return true
        // Every event carries a deterministic unique_id and a time to the second: Klaviyo records it once.
        case .eventTrack, .eventBulkTrack: return true
        // Each attempt looks the name up first and creates only when absent.
        case .listCreate: return true
        // Adding a member twice or removing a non-member is a 204 no-op.
        case .listAddProfiles, .listRemoveProfiles: return true
        // Setting the same consent again changes nothing (a double opt-in list may re-send its confirmation).
        case .subscriptionSubscribe, .subscriptionUnsubscribe: return true
        case .accountGet, .flowList, .flowUpdateStatus, .campaignGet, .campaignCancelSend: return true
        // A repeated job upserts the same rows again (FACTS §7); the job id is recorded once submitted.
        case .profileBulkImport: return true
        // Before sending again after a failure, the send job is looked up (FACTS §7).
        case .campaignSend: return true
        // Reads only.
        case .connectionValidate: return true
        // Disconnecting twice leaves the account disconnected.
        case .connectionDisconnect: return true
        // A repeated POST /api/campaigns creates a second campaign: retried only when nothing reached Klaviyo.
        case .campaignCreate: return false
        case .unsupported: return false
        }
    }

    /// Runs the command once. `job` is the stored state of a job this command already submitted (nil: none
    /// yet); `mayHaveSent` says an earlier attempt may have reached Klaviyo (it failed ambiguously or the
    /// process died), so a non-idempotent send checks first.
    public func execute(
        _ command: CommandEnvelope, credential: KlaviyoCredential, job: JSONValue? = nil, mayHaveSent: Bool = false
    ) async throws(KlaviyoError) -> CommandExecution {
        switch command.payload {
        case .connectionValidate:
            return try await validateConnection(credential: credential)
        case .connectionDisconnect:
            // Handled by the processor through ConnectionLifecycle (it needs no Klaviyo credential).
            throw KlaviyoError(
                code: .invalidRequest, operationID: command.type.rawValue,
                message: "connection.disconnect is handled by the connection lifecycle", requestMayHaveBeenSent: false)
        case .profileBulkImport(let payload):
            if let job, let jobID = job["job_id"]?.stringValue {
                return try await pollBulkImport(jobID: jobID, state: job, credential: credential)
            }
            let (status, resource) = try await klaviyo.resource(
                KlaviyoClient.bulkImportProfilesRequest(profiles: payload.profiles, listID: payload.listID),
                credential: credential)
            let jobID = resource["id"]?.stringValue ?? ""
            return CommandExecution(
                outcome: .succeeded, klaviyo: .init(status: status, ids: [jobID]), pending: .submitted(jobID: jobID))
        case .campaignSend(let payload):
            if let job, let jobID = job["job_id"]?.stringValue {
                return try await pollCampaignSend(jobID: jobID, state: job, credential: credential)
            }
            if mayHaveSent {
                // An earlier attempt may have started the send: look for its job before sending again.
                do throws(KlaviyoError) {
                    let (_, existing) = try await klaviyo.resource(
                        KlaviyoClient.getCampaignSendJobRequest(id: payload.campaignID), credential: credential)
                    let state: JSONValue = [
                        "job_id": .string(payload.campaignID), "polls": 0, "submitted_at": .string(Timestamp.now()),
                        "found_after_ambiguous_send": true,
                    ]
                    return campaignSendOutcome(existing, state: state)
                } catch  where error.status == 404 {
                    // Not sent: send below.
                }
            }
            let (status, resource) = try await klaviyo.resource(
                KlaviyoClient.sendCampaignRequest(campaignID: payload.campaignID), credential: credential)
            let jobID = resource["id"]?.stringValue ?? payload.campaignID
            return CommandExecution(
                outcome: .succeeded, klaviyo: .init(status: status, ids: [jobID]), pending: .submitted(jobID: jobID))
        case .profileUpsert(let payload):
            let (profile, created) = try await klaviyo.upsertProfile(
                attributes: payload.attributes, id: payload.profileID, credential: credential)
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: created ? 201 : 200, ids: [profile.id], data: .object(["created": .bool(created)])))
        case .profileUpdate(let payload):
            let profile = try await klaviyo.updateProfile(
                id: payload.profileID, attributes: payload.attributes, credential: credential)
            return CommandExecution(outcome: .succeeded, klaviyo: .init(status: 200, ids: [profile.id]))
        case .profileGet(let payload):
            let profiles = try await klaviyo.findProfiles(payload.lookup, credential: credential)
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: 200, ids: profiles.map(\.id),
                    data: .object(["profile": profiles.first?.jsonValue ?? .null])))
        case .eventTrack(let payload):
            let event = payload.klaviyoEvent(commandID: command.id, createdAt: command.createdAt)
            var data: [String: JSONValue] = ["unique_id": .string(event.uniqueID), "time": .string(event.time)]
            let status: Int
            switch try await batcher?.submit(
                event, accountID: command.accountID, credential: credential, client: klaviyo)
            {
            case .single(let single):
                status = single
            case .batched(let bulk, let size):
                status = bulk
                data["batched"] = .int(Int64(size))
            case .sendAlone, nil:
                // No batching, or the bulk call was refused for what may be one bad event: this event alone.
                status = try await klaviyo.createEvent(event, credential: credential)
            }
            return CommandExecution(outcome: .succeeded, klaviyo: .init(status: status, data: .object(data)))
        case .eventBulkTrack(let payload):
            let batches = payload.batches(commandID: command.id, createdAt: command.createdAt)
            var status = 202
            for batch in batches {
                status = try await klaviyo.bulkCreateEvents(batch, credential: credential)
            }
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: status,
                    data: ["events": .int(Int64(payload.events.count)), "calls": .int(Int64(batches.count))]))
        case .listCreate(let payload):
            if let existing = try await klaviyo.findLists(name: payload.name, credential: credential).first(where: {
                $0.name == payload.name
            }) {
                return CommandExecution(
                    outcome: .succeeded, klaviyo: .init(status: 200, ids: [existing.id], data: ["created": false]))
            }
            let list = try await klaviyo.createList(
                name: payload.name, optInProcess: payload.optInProcess, credential: credential)
            return CommandExecution(
                outcome: .succeeded, klaviyo: .init(status: 201, ids: [list.id], data: ["created": true]))
        case .listAddProfiles(let payload), .listRemoveProfiles(let payload):
            let add: Bool
            if case .listAddProfiles = command.payload { add = true } else { add = false }
            var status = 204
            for batch in payload.batches {
                status = try await klaviyo.changeListProfiles(
                    listID: payload.listID, profileIDs: batch, add: add, credential: credential)
            }
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: status, ids: [payload.listID],
                    data: Self.counts(profiles: payload.profileIDs.count, calls: payload.batches.count)))
        case .subscriptionSubscribe(let payload):
            var status = 202
            for batch in payload.batches {
                let request = KlaviyoClient.subscribeProfilesRequest(
                    batch, listID: payload.listID, customSource: payload.customSource,
                    historicalImport: payload.historicalImport)
                status = try await klaviyo.send(request, credential: credential).status
            }
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: status, ids: payload.listID.map { [$0] } ?? [],
                    data: Self.counts(profiles: payload.profiles.count, calls: payload.batches.count)))
        case .subscriptionUnsubscribe(let payload):
            var status = 202
            for batch in payload.batches {
                let request = KlaviyoClient.unsubscribeProfilesRequest(batch, listID: payload.listID)
                status = try await klaviyo.send(request, credential: credential).status
            }
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: status, ids: payload.listID.map { [$0] } ?? [],
                    data: [
                        "profiles": .int(Int64(payload.profiles.count)), "calls": .int(Int64(payload.batches.count)),
                        "global": .bool(payload.listID == nil),
                    ]))
        case .accountGet:
            let account = try await klaviyo.getAccount(credential: credential)
            return CommandExecution(
                outcome: .succeeded, klaviyo: .init(status: 200, ids: [account.id], data: account.jsonValue))
        case .flowList(let payload):
            // The status filter is sent to Klaviyo and applied again here, so the result holds only matches.
            let flows = try await klaviyo.allFlows(status: payload.status, credential: credential).filter { flow in
                payload.status == nil || flow["attributes"]?["status"]?.stringValue == payload.status
            }
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: 200, ids: flows.compactMap { $0["id"]?.stringValue },
                    data: ["flows": .array(flows.map(Self.flowSummary))]))
        case .flowUpdateStatus(let payload):
            let flow = try await klaviyo.updateFlowStatus(
                id: payload.flowID, status: payload.status, credential: credential)
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(status: 200, ids: [payload.flowID], data: ["flow": Self.flowSummary(flow)]))
        case .campaignCreate(let payload):
            let request = KlaviyoClient.createCampaignRequest(
                name: payload.name, audiences: payload.audiences, sendStrategy: payload.sendStrategy,
                message: payload.content, label: payload.label)
            let (status, campaign) = try await klaviyo.resource(request, credential: credential)
            let messageIDs = campaign["relationships"]?["campaign-messages"]?["data"]?.arrayValue?.compactMap {
                $0["id"]
            }
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: status, ids: [campaign["id"]?.stringValue ?? ""],
                    data: [
                        "status": campaign["attributes"]?["status"] ?? .null, "message_ids": .array(messageIDs ?? []),
                    ]))
        case .campaignGet(let payload):
            let (status, campaign) = try await klaviyo.resource(
                KlaviyoClient.getCampaignRequest(id: payload.campaignID), credential: credential)
            var summary = campaign["attributes"]?.objectValue ?? [:]
            summary["id"] = campaign["id"]
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(status: status, ids: [payload.campaignID], data: ["campaign": .object(summary)]))
        case .campaignCancelSend(let payload):
            let response = try await klaviyo.send(
                KlaviyoClient.cancelCampaignSendRequest(campaignID: payload.campaignID, action: payload.action),
                credential: credential)
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: response.status, ids: [payload.campaignID], data: ["action": .string(payload.action)]))
        case .unsupported:
            throw KlaviyoError(
                code: .invalidRequest, operationID: command.type.rawValue,
                message: "command type \(command.type.rawValue) is not handled by this relay version",
                requestMayHaveBeenSent: false)
        }
    }

    /// One poll of a bulk-import job: pending while it runs; when it is final, the result with the counts
    /// and every import error (`succeeded` when the job completed, even with failed rows; `failed` when
    /// Klaviyo cancelled or failed the job).
    func pollBulkImport(
        jobID: String, state: JSONValue, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        let (status, job) = try await klaviyo.resource(
            KlaviyoClient.getBulkImportJobRequest(id: jobID), credential: credential)
        let attributes = job["attributes"]
        let jobStatus = attributes?["status"]?.stringValue ?? ""
        guard KlaviyoClient.finalJobStatuses.contains(jobStatus) else {
            return CommandExecution(
                outcome: .succeeded, klaviyo: .init(status: status, ids: [jobID]), pending: .polledAgain(state))
        }
        let failedCount = attributes?["failed_count"]?.jobInteger ?? 0
        let errors = failedCount > 0 ? try await klaviyo.bulkImportErrors(jobID: jobID, credential: credential) : []
        let rows: [JSONValue] = errors.map { error in
            let a = error["attributes"]
            return [
                "code": a?["code"] ?? .null, "title": a?["title"] ?? .null, "detail": a?["detail"] ?? .null,
                "source": a?["source"] ?? .null, "original_payload": a?["original_payload"] ?? .null,
            ]
        }
        let data: JSONValue = [
            "job_id": .string(jobID), "status": .string(jobStatus),
            "total_count": attributes?["total_count"] ?? .null,
            "completed_count": attributes?["completed_count"] ?? .null,
            "failed_count": attributes?["failed_count"] ?? .null, "import_errors": .array(rows),
            "polls": .int((state["polls"]?.jobInteger ?? 0) + 1),
        ]
        if jobStatus == "complete" {
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: status, ids: [jobID], data: data, job: ["id": .string(jobID), "status": .string(jobStatus)])
            )
        }
        return CommandExecution(
            outcome: .failed,
            klaviyo: .init(
                status: status, ids: [jobID], data: data, job: ["id": .string(jobID), "status": .string(jobStatus)]),
            failure: .init(code: "job_\(jobStatus)", detail: "Klaviyo's bulk import job \(jobID) ended \(jobStatus)"))
    }

    /// One poll of a campaign send job.
    func pollCampaignSend(
        jobID: String, state: JSONValue, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        let (_, job) = try await klaviyo.resource(
            KlaviyoClient.getCampaignSendJobRequest(id: jobID), credential: credential)
        return campaignSendOutcome(job, state: state)
    }

    /// The send job's final status as the result, or pending while it is not final.
    func campaignSendOutcome(_ job: JSONValue, state: JSONValue) -> CommandExecution {
        let jobID = job["id"]?.stringValue ?? state["job_id"]?.stringValue ?? ""
        let jobStatus = job["attributes"]?["status"]?.stringValue ?? ""
        guard KlaviyoClient.finalJobStatuses.contains(jobStatus) else {
            let pending: PendingJob =
                state["polls"]?.jobInteger == 0 && state["found_after_ambiguous_send"] != nil
                ? PendingJob(state: state, pollAfter: PendingJob.pollDelay(polls: 0)) : .polledAgain(state)
            return CommandExecution(outcome: .succeeded, klaviyo: .init(status: 200, ids: [jobID]), pending: pending)
        }
        var data: [String: JSONValue] = [
            "job_id": .string(jobID), "status": .string(jobStatus),
            "polls": .int((state["polls"]?.jobInteger ?? 0) + 1),
        ]
        if state["found_after_ambiguous_send"] != nil { data["found_after_ambiguous_send"] = true }
        if jobStatus == "complete" {
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: 200, ids: [jobID], data: .object(data),
                    job: ["id": .string(jobID), "status": .string(jobStatus)]))
        }
        return CommandExecution(
            outcome: .failed,
            klaviyo: .init(
                status: 200, ids: [jobID], data: .object(data),
                job: ["id": .string(jobID), "status": .string(jobStatus)]),
            failure: .init(code: "job_\(jobStatus)", detail: "Klaviyo's campaign send job \(jobID) ended \(jobStatus)"))
    }

    /// The cheap reads `connection.validate` makes: one per scope area the relay's commands use.
    public static let scopeChecks: [(scope: String, request: KlaviyoRequest)] = [
        (
            "accounts:read",
            KlaviyoRequest(operationID: "get_accounts", method: "GET", path: "/api/accounts", isIdempotent: true)
        ),
        (
            "profiles:read",
            KlaviyoRequest(
                operationID: "get_profiles", method: "GET", path: "/api/profiles", query: [("page[size]", "1")],
                isIdempotent: true)
        ),
        ("lists:read", KlaviyoRequest(operationID: "get_lists", method: "GET", path: "/api/lists", isIdempotent: true)),
        (
            "campaigns:read",
            KlaviyoRequest(
                operationID: "get_campaigns", method: "GET", path: "/api/campaigns",
                query: [("filter", "equals(messages.channel,'email')")], isIdempotent: true)
        ),
        (
            "flows:read",
            KlaviyoRequest(
                operationID: "get_flows", method: "GET", path: "/api/flows", query: [("page[size]", "1")],
                isIdempotent: true)
        ),
    ]

    /// A test call per scope area: what works, and which scopes are missing (a 403 is a missing scope; any
    /// other failure is the command's failure, retried or rejected as usual).
    func validateConnection(credential: KlaviyoCredential) async throws(KlaviyoError) -> CommandExecution {
        var checks: [JSONValue] = []
        var missing: [JSONValue] = []
        for check in Self.scopeChecks {
            let operation = "\(check.request.method) \(check.request.path)"
            do throws(KlaviyoError) {
                let response = try await klaviyo.send(check.request, credential: credential)
                checks.append([
                    "scope": .string(check.scope), "operation": .string(operation), "ok": true,
                    "status": .int(Int64(response.status)),
                ])
            } catch  where error.status == 403 {
                missing.append(.string(check.scope))
                checks.append([
                    "scope": .string(check.scope), "operation": .string(operation), "ok": false, "status": 403,
                ])
            }
        }
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(
                status: 200,
                data: ["ok": .bool(missing.isEmpty), "checks": .array(checks), "missing_scopes": .array(missing)]))
    }

    /// `{"profiles": n, "calls": m}` of the batched commands.
    static func counts(profiles: Int, calls: Int) -> JSONValue {
        ["profiles": .int(Int64(profiles)), "calls": .int(Int64(calls))]
    }

    /// `{id, name, status, trigger_type, archived}` of a flow resource.
    static func flowSummary(_ flow: JSONValue) -> JSONValue {
        let attributes = flow["attributes"]
        return [
            "id": flow["id"] ?? .null, "name": attributes?["name"] ?? .null, "status": attributes?["status"] ?? .null,
            "trigger_type": attributes?["trigger_type"] ?? .null, "archived": attributes?["archived"] ?? .null,
        ]
    }
}

extension JSONValue {
    /// An integral number (a JSON `int`, or a whole `double`), for job counters.
    var jobInteger: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value) where value.rounded() == value && abs(value) < 9e15: return Int64(value)
        default: return nil
        }
    }
}
