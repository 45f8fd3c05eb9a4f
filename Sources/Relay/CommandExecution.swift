public import Klaviyo

/// What a command did at Klaviyo: the outcome to report.
public struct CommandExecution: Sendable, Hashable {
    /// `succeeded` or a definitive `failed`.
    public var outcome: CommandResult.Outcome
    /// Klaviyo's answer.
    public var klaviyo: CommandResult.KlaviyoOutcome
    /// Why it failed, for `failed`.
    public var failure: CommandResult.Failure?

    /// Creates an execution.
    public init(outcome: CommandResult.Outcome, klaviyo: CommandResult.KlaviyoOutcome, failure: CommandResult.Failure? = nil) {
        self.outcome = outcome
        self.klaviyo = klaviyo
        self.failure = failure
    }
}

/// Executes one validated command against Klaviyo with a credential (one attempt; retries are the
/// processor's).
public struct CommandExecutor: Sendable {
    /// The Klaviyo client.
    public let klaviyo: KlaviyoClient

    /// Creates an executor.
    public init(klaviyo: KlaviyoClient) {
        self.klaviyo = klaviyo
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
        // A repeated POST /api/campaigns creates a second campaign: retried only when nothing reached Klaviyo.
        case .campaignCreate: return false
        case .unsupported: return false
        }
    }

    /// Runs the command once.
    public func execute(_ command: CommandEnvelope, credential: KlaviyoCredential) async throws(KlaviyoError)
        -> CommandExecution
    {
        switch command.payload {
        case .profileUpsert(let payload):
            let (profile, created) = try await klaviyo.upsertProfile(
                attributes: payload.attributes, id: payload.profileID, credential: credential)
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(status: created ? 201 : 200, ids: [profile.id], data: .object(["created": .bool(created)])))
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
            let status = try await klaviyo.createEvent(event, credential: credential)
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: status, data: ["unique_id": .string(event.uniqueID), "time": .string(event.time)]))
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
