extension KlaviyoClient {
    /// Job statuses after which a bulk-import or campaign-send job no longer changes.
    public static let finalJobStatuses: Set<String> = ["complete", "cancelled", "failed"]

    /// The request for `POST /api/profile-bulk-import-jobs` (bulk_import_profiles, 202): up to 10,000 profiles
    /// (attributes with at least one identifier), optionally added to one list. Repeating it creates another job that
    /// upserts the same rows again (docs/contracts.md, Jobs): harmless, but the relay records the job id to avoid it.
    public static func bulkImportProfilesRequest(profiles: [[String: JSONValue]], listID: String?) -> KlaviyoRequest {
        var data: [String: JSONValue] = [
            "type": "profile-bulk-import-job",
            "attributes": [
                "profiles": ["data": .array(profiles.map { ["type": "profile", "attributes": .object($0)] })]
            ],
        ]
        if let listID {
            data["relationships"] = ["lists": ["data": [["type": "list", "id": .string(listID)]]]]
        }
        return KlaviyoRequest(
            operationID: "bulk_import_profiles", method: "POST", path: "/api/profile-bulk-import-jobs",
            body: .object(["data": .object(data)]), isIdempotent: true)
    }

    /// The request for `GET /api/profile-bulk-import-jobs/{job_id}` (get_bulk_import_profiles_job).
    public static func getBulkImportJobRequest(id: String) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "get_bulk_import_profiles_job", method: "GET",
            path: "/api/profile-bulk-import-jobs/\(KlaviyoRequest.percentEncode(id))", isIdempotent: true)
    }

    /// The request for `GET /api/profile-bulk-import-jobs/{id}/import-errors`
    /// (get_errors_for_bulk_import_profiles_job); `pageSize` (1…100) asks for larger pages than Klaviyo's 20, so
    /// a large job's errors cost fewer tier-M calls.
    public static func bulkImportErrorsRequest(jobID: String, pageSize: Int? = nil) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "get_errors_for_bulk_import_profiles_job", method: "GET",
            path: "/api/profile-bulk-import-jobs/\(KlaviyoRequest.percentEncode(jobID))/import-errors",
            query: pageSize.map { [("page[size]", String(min(max($0, 1), 100)))] } ?? [], isIdempotent: true)
    }

    /// The request for `GET /api/profile-bulk-import-jobs` (get_bulk_import_profiles_jobs): the account's bulk
    /// import jobs, newest first, `pageSize` (1…100) per page.
    public static func bulkImportJobsRequest(pageSize: Int = 100) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "get_bulk_import_profiles_jobs", method: "GET", path: "/api/profile-bulk-import-jobs",
            query: [("sort", "-created_at"), ("page[size]", String(min(max(pageSize, 1), 100)))], isIdempotent: true)
    }

    /// The account's most recent bulk import jobs, newest first (up to `maxPages` pages of 100): what a relay
    /// that may have submitted a job without hearing its id looks through before submitting again.
    public func recentBulkImportJobs(
        credential: KlaviyoCredential, maxPages: Int = 1
    ) async throws(KlaviyoError) -> [JSONValue] {
        try await allPages(Self.bulkImportJobsRequest(), credential: credential, maxPages: maxPages).items
    }

    /// All import errors of a bulk-import job (every page).
    public func bulkImportErrors(
        jobID: String, credential: KlaviyoCredential, maxPages: Int = 200, pageSize: Int? = nil
    )
        async throws(KlaviyoError) -> [JSONValue]
    {
        try await allPages(
            Self.bulkImportErrorsRequest(jobID: jobID, pageSize: pageSize), credential: credential, maxPages: maxPages
        ).items
    }

    /// The request for `POST /api/campaign-send-jobs` (send_campaign, 202). Not idempotent: after an
    /// ambiguous failure, check ``getCampaignSendJobRequest(id:)`` before sending again (docs/contracts.md, Jobs).
    public static func sendCampaignRequest(campaignID: String) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "send_campaign", method: "POST", path: "/api/campaign-send-jobs",
            body: ["data": ["type": "campaign-send-job", "id": .string(campaignID)]], isIdempotent: false)
    }

    /// The request for `GET /api/campaign-send-jobs/{id}` (get_campaign_send_job); the job id is the campaign's.
    public static func getCampaignSendJobRequest(id: String) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "get_campaign_send_job", method: "GET",
            path: "/api/campaign-send-jobs/\(KlaviyoRequest.percentEncode(id))", isIdempotent: true)
    }
}
