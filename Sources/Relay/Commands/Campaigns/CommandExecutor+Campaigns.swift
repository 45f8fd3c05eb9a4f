import Klaviyo

/// Execution of `campaign.create`, `campaign.get`, `campaign.send` and `campaign.cancel_send`.
extension CommandExecutor {
    func createCampaign(
        _ payload: CampaignCreatePayload, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
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
}
