import Klaviyo

/// Execution of `campaign.create`, `campaign.get`, `campaign.send` and `campaign.cancel_send`.
extension CommandExecutor {
    /// Creates the campaign. After an attempt that may have reached Klaviyo (`mayHaveSent`: a failure that
    /// may have been applied, a crash, a redelivery) it first looks for the campaign that attempt created
    /// (``findCampaignCreated(by:command:credential:)``) and adopts it instead of creating a second one.
    func createCampaign(
        _ payload: CampaignCreatePayload, command: CommandEnvelope, mayHaveSent: Bool, credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> CommandExecution {
        if mayHaveSent,
            let existing = try await findCampaignCreated(by: payload, command: command, credential: credential)
        {
            return campaignCreated(existing, status: 200, found: true)
        }
        let request = KlaviyoClient.createCampaignRequest(
            name: payload.name, audiences: payload.audiences, sendStrategy: payload.sendStrategy,
            message: payload.content, label: payload.label)
        let (status, campaign) = try await klaviyo.resource(request, credential: credential)
        return campaignCreated(campaign, status: status, found: false)
    }

    /// How long before the command's `created_at` (or before now, when that is earlier) Klaviyo may have stamped
    /// the campaign an earlier attempt created: the publisher's, the relay's and Klaviyo's clocks may disagree by
    /// this much. Ten minutes is far above what NTP-synchronised hosts drift apart, and small enough that the
    /// window rarely holds another campaign of the same name and audiences.
    static let campaignLookupSkew: Duration = .seconds(600)

    /// The lower bound of the lookup's `created_at`: the earlier of `createdAt` and `nowSeconds`, minus
    /// ``campaignLookupSkew``, in whole seconds (`2026-11-29T11:50:00Z`). A `created_at` from a clock running
    /// ahead cannot push the bound past the campaign; one that does not parse counts as now.
    static func campaignLookupBound(createdAt: String, nowSeconds: Int64) -> String {
        let created = Timestamp.epochSeconds(rfc3339: createdAt) ?? nowSeconds
        return Timestamp.formatWholeSeconds(min(created, nowSeconds) - campaignLookupSkew.components.seconds)
    }

    /// The campaign an earlier attempt of `command` created, if any: of the email campaigns created since
    /// ``campaignLookupBound(createdAt:nowSeconds:)`` whose name is exactly the payload's and whose audiences
    /// (included and excluded) are the payload's, the earliest created.
    func findCampaignCreated(
        by payload: CampaignCreatePayload, command: CommandEnvelope, credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> JSONValue? {
        let candidates = try await klaviyo.findCampaigns(
            name: payload.name,
            createdAtOrAfter: Self.campaignLookupBound(
                createdAt: command.createdAt, nowSeconds: Timestamp.nowSeconds()),
            credential: credential)
        return Self.earliestCampaign(in: candidates, matching: payload)
    }

    /// The earliest created campaign of `candidates` with exactly the payload's name and audiences (order of
    /// `candidates` breaks ties and stands in for a `created_at` that does not parse).
    static func earliestCampaign(in candidates: [JSONValue], matching payload: CampaignCreatePayload) -> JSONValue? {
        func ids(_ value: JSONValue?) -> Set<String> { Set(value?.arrayValue?.compactMap(\.stringValue) ?? []) }
        func createdAt(_ campaign: JSONValue) -> Int64 {
            campaign["attributes"]?["created_at"]?.stringValue.flatMap { Timestamp.epochSeconds(rfc3339: $0) } ?? .max
        }
        let matches = candidates.filter { campaign in
            guard let attributes = campaign["attributes"], campaign["id"]?.stringValue != nil,
                attributes["name"]?.stringValue == payload.name
            else { return false }
            let audiences = attributes["audiences"]
            return ids(audiences?["included"]) == ids(payload.audiences["included"])
                && ids(audiences?["excluded"]) == ids(payload.audiences["excluded"])
        }
        return matches.min { createdAt($0) < createdAt($1) }
    }

    /// The result of a created (or found) campaign: its id, status and message ids.
    func campaignCreated(_ campaign: JSONValue, status: Int, found: Bool) -> CommandExecution {
        let messageIDs = campaign["relationships"]?["campaign-messages"]?["data"]?.arrayValue?.compactMap {
            $0["id"]
        }
        var data: [String: JSONValue] = [
            "status": campaign["attributes"]?["status"] ?? .null, "message_ids": .array(messageIDs ?? []),
        ]
        if found { data["found_after_ambiguous_create"] = true }
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(status: status, ids: [campaign["id"]?.stringValue ?? ""], data: .object(data)))
    }

    func getCampaign(
        _ payload: CampaignGetPayload, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        let (status, campaign) = try await klaviyo.resource(
            KlaviyoClient.getCampaignRequest(id: payload.campaignID), credential: credential)
        var summary = campaign["attributes"]?.objectValue ?? [:]
        summary["id"] = campaign["id"]
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(status: status, ids: [payload.campaignID], data: ["campaign": .object(summary)]))
    }

    func cancelCampaignSend(
        _ payload: CampaignCancelSendPayload, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        let response = try await klaviyo.send(
            KlaviyoClient.cancelCampaignSendRequest(campaignID: payload.campaignID, action: payload.action),
            credential: credential)
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(
                status: response.status, ids: [payload.campaignID], data: ["action": .string(payload.action)]))
    }

    /// Starts the send, or polls the send job this command already started (`job`). After an ambiguous
    /// failure (`mayHaveSent`) the send job is looked up before sending again (docs/contracts.md, Jobs).
    func sendCampaign(
        _ payload: CampaignSendPayload, job: JSONValue?, mayHaveSent: Bool, credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> CommandExecution {
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
            "polls": .int(Clamp.sum(state["polls"]?.jobInteger ?? 0, 1)),
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
}
