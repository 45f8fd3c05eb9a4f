/// The non-profile resources of one account: lists, metrics and events, bulk jobs, campaigns, flows and
/// subscription side effects. Lives in ``AccountState`` (behind the account's mutex).
struct AccountResources: Sendable {
    struct ListRecord: Sendable {
        var id: String
        var name: String
        var optInProcess: String
        var created: String
        var updated: String
        var members: [String] = []  // profile ids, insertion order
        var memberSet: Set<String> = []
    }

    struct EventRecord: Sendable {
        var id: String
        var metricId: String
        var profileId: String
        var properties: JSONValue
        var time: String
        var value: JSONValue?
        var uniqueId: String
    }

    /// A bulk job; its status is derived from its age (queued < 0.2 s ≤ processing < 1 s ≤ complete).
    struct JobRecord: Sendable {
        var id: String
        var kind: String  // "profile-bulk-import-job" / "event-bulk-create-job" / "campaign-send-job"
        var createdAt: String
        var createdInstant: ContinuousClock.Instant
        var total: Int
        var failed: Int
        var errors: [JSONValue] = []
        var listIds: [String] = []
        var profileIds: [String] = []
        var cancelled = false
        /// How long the job stays `processing` after its 200 ms `queued` (bulk imports: by row count).
        var processing: Duration = .milliseconds(800)
    }

    struct CampaignRecord: Sendable {
        var id: String
        var attributes: [String: JSONValue]
        var messageIds: [String]
        var status: String
        var created: String
        var updated: String
    }

    struct FlowRecord: Sendable {
        var id: String
        var name: String
        var status: String
        var triggerType: String
        var created: String
        var updated: String
    }

    /// Consent per profile id and channel (`email`/`sms`) → "SUBSCRIBED"/"UNSUBSCRIBED".
    var consent: [String: [String: String]] = [:]
    var lists: [String: ListRecord] = [:]
    var listOrder: [String] = []
    var metrics: [String: String] = [:]  // name → id
    var events: [EventRecord] = []
    var eventKeys: Set<String> = []  // profile|metric|unique_id
    var jobs: [String: JobRecord] = [:]
    /// How bulk import jobs of this account behave (`PUT /_sim/accounts/{id}/bulk-import-jobs`).
    var bulkImport = BulkImportBehaviour()
    var campaigns: [String: CampaignRecord] = [:]
    var campaignOrder: [String] = []
    var flows: [String: FlowRecord] = [:]
    var flowOrder: [String] = []
    /// Side effects in order, for `GET /_sim/accounts/{id}/side-effects`.
    var sideEffects: [JSONValue] = []

    init(now: String) {
        for (name, trigger) in [
            ("Welcome Series", "Added to List"), ("Abandoned Cart", "Metric"), ("Winback", "Date Based"),
        ] {
            let id = SimIdentifiers.short()
            flows[id] = FlowRecord(
                id: id, name: name, status: "draft", triggerType: trigger, created: now, updated: now)
            flowOrder.append(id)
        }
    }

    /// The job status for its age.
    static func status(of job: JobRecord, now: ContinuousClock.Instant) -> String {
        if job.cancelled { return "cancelled" }
        let age = now - job.createdInstant
        if age < .milliseconds(200) { return "queued" }
        if age < .milliseconds(200) + job.processing { return "processing" }
        return "complete"
    }
}
