extension KlaviyoClient {
    /// Job statuses after which a bulk-import or campaign-send job no longer changes.
    public static let finalJobStatuses: Set<String> = ["complete", "cancelled", "failed"]

    /// The request for `POST /api/profile-bulk-import-jobs` (bulk_import_profiles, 202): up to 10,000 profiles
    /// (attributes with at least one identifier), optionally added to one list. Repeating it creates another
    /// job that upserts the same rows again (FACTS §7): harmless, but the relay records the job id to avoid it.
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

    /// The request for `GET /api/profile-bulk-import-jobs/{id}/import-errors` (get_errors_for_bulk_import_profiles_job).
    public static func bulkImportErrorsRequest(jobID: String) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "get_errors_for_bulk_import_profiles_job", method: "GET",
            path: "/api/profile-bulk-import-jobs/\(KlaviyoRequest.percentEncode(jobID))/import-errors",
            isIdempotent: true)
    }

    /// All import errors of a bulk-import job (every page).
    public func bulkImportErrors(
        jobID: String, credential: KlaviyoCredential, maxPages: Int = 200
    )
        async throws(KlaviyoError) -> [JSONValue]
    {
        try await allPages(Self.bulkImportErrorsRequest(jobID: jobID), credential: credential, maxPages: maxPages).items
    }

    /// The request for `POST /api/campaign-send-jobs` (send_campaign, 202). Not idempotent: after an
    /// ambiguous failure, check ``getCampaignSendJobRequest(id:)`` before sending again (FACTS §7).
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
