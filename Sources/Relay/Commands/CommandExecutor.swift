public import Klaviyo

/// Executes one validated command against Klaviyo with a credential (one attempt; retries are the
/// processor's).
public struct CommandExecutor: Sendable {
    /// The Klaviyo client.
    public let klaviyo: KlaviyoClient
    /// Coalesces `event.track` calls of one account (nil: `RELAY_BATCH_WINDOW=0`, every event is sent alone).
    public let batcher: EventBatcher?
    /// Coalesces `profile.upsert` of accounts with a deep backlog into bulk import jobs (nil: `RELAY_COALESCE=off`).
    public let coalescer: ProfileCoalescer?

    /// Creates an executor.
    public init(klaviyo: KlaviyoClient, batcher: EventBatcher? = nil, coalescer: ProfileCoalescer? = nil) {
        self.klaviyo = klaviyo
        self.batcher = batcher
        self.coalescer = coalescer
    }

    /// The same executor with every Klaviyo call admitted by `gate` first (the account's rate limiter).
    func gated(by gate: any KlaviyoCallGate) -> CommandExecutor {
        CommandExecutor(klaviyo: klaviyo.gated(by: gate), batcher: batcher, coalescer: coalescer)
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
        // Reports are reads (a POST only because the query is a body).
        case .campaignReport, .flowReport: return true
        // A repeated job upserts the same rows again (docs/contracts.md, Jobs); the job id is recorded once submitted.
        case .profileBulkImport: return true
        // Before sending again after a failure, the send job is looked up (docs/contracts.md, Jobs).
        case .campaignSend: return true
        // Reads only.
        case .connectionValidate: return true
        // Disconnecting twice leaves the account disconnected.
        case .connectionDisconnect: return true
        // POST /api/campaigns is not idempotent at Klaviyo, but each attempt after one that may have reached
        // Klaviyo looks for the campaign it created (same name and audiences, created since the command's
        // created_at less a clock-skew margin) and adopts it instead of creating a second one.
        case .campaignCreate: return true
        case .unsupported: return false
        }
    }

    /// Runs the command once. `job` is the stored state of a job this command already submitted (nil: none
    /// yet); `mayHaveSent` says an earlier attempt may have reached Klaviyo (it failed ambiguously or the
    /// process died), so a non-idempotent send (`campaign.create`, `campaign.send`) checks first. `admissionReply` answers ``admissionRead(for:)``
    /// when the processor sent it with the idempotency lookup. Each family's calls live in
    /// `Commands/<Family>/CommandExecutor+<Family>.swift`.
    public func execute(
        _ command: CommandEnvelope, credential: KlaviyoCredential, job: JSONValue? = nil, mayHaveSent: Bool = false,
        admissionReply: [String]? = nil
    ) async throws(KlaviyoError) -> CommandExecution {
        switch command.payload {
        case .profileUpsert(let payload):
            return try await upsertProfile(payload, command: command, credential: credential, peeked: admissionReply)
        case .profileUpdate(let payload): return try await updateProfile(payload, credential: credential)
        case .profileGet(let payload): return try await getProfile(payload, credential: credential)
        case .profileBulkImport(let payload):
            return try await bulkImportProfiles(payload, job: job, accountID: command.accountID, credential: credential)
        case .eventTrack(let payload): return try await trackEvent(payload, command: command, credential: credential)
        case .eventBulkTrack(let payload):
            return try await bulkTrackEvents(payload, command: command, credential: credential)
        case .listCreate(let payload): return try await createList(payload, credential: credential)
        case .listAddProfiles(let payload):
            return try await changeListProfiles(payload, add: true, credential: credential)
        case .listRemoveProfiles(let payload):
            return try await changeListProfiles(payload, add: false, credential: credential)
        case .subscriptionSubscribe(let payload): return try await subscribe(payload, credential: credential)
        case .subscriptionUnsubscribe(let payload): return try await unsubscribe(payload, credential: credential)
        case .accountGet: return try await getAccount(credential: credential)
        case .flowList(let payload): return try await listFlows(payload, credential: credential)
        case .flowUpdateStatus(let payload): return try await updateFlowStatus(payload, credential: credential)
        case .campaignCreate(let payload):
            return try await createCampaign(payload, command: command, mayHaveSent: mayHaveSent, credential: credential)
        case .campaignGet(let payload): return try await getCampaign(payload, credential: credential)
        case .campaignSend(let payload):
            return try await sendCampaign(payload, job: job, mayHaveSent: mayHaveSent, credential: credential)
        case .campaignCancelSend(let payload): return try await cancelCampaignSend(payload, credential: credential)
        case .campaignReport(let payload), .flowReport(let payload):
            return try await runValuesReport(payload, credential: credential)
        case .connectionValidate: return try await validateConnection(credential: credential)
        case .connectionDisconnect:
            // Never reaches Klaviyo: the processor runs it through ConnectionLifecycle before any credential is
            // looked up (CommandProcessor+Disconnect.swift). Refused here so a direct call cannot skip that.
            throw KlaviyoError(
                code: .invalidRequest, operationID: command.type.rawValue,
                message: "connection.disconnect is handled by the connection lifecycle", requestMayHaveBeenSent: false)
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
}
