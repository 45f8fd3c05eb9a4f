extension KlaviyoClient {
    /// The request for `POST /api/campaigns` (create_campaign, 201): an email campaign with one message.
    /// Not idempotent: a repeat creates a second campaign (`campaign.create` looks for it first after an
    /// attempt that may have reached Klaviyo, ``findCampaignsRequest(name:createdAtOrAfter:)``).
    public static func createCampaignRequest(
        name: String, audiences: JSONValue, sendStrategy: JSONValue, message: [String: JSONValue], label: String
    ) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "create_campaign", method: "POST", path: "/api/campaigns",
            body: [
                "data": [
                    "type": "campaign",
                    "attributes": [
                        "name": .string(name), "audiences": audiences, "send_strategy": sendStrategy,
                        "campaign-messages": [
                            "data": [
                                [
                                    "type": "campaign-message",
                                    "attributes": [
                                        "definition": [
                                            "channel": "email", "label": .string(label), "content": .object(message),
                                        ]
                                    ],
                                ]
                            ]
                        ],
                    ],
                ]
            ], isIdempotent: false)
    }

    /// The request for `GET /api/campaigns` (get_campaigns) that looks for the email campaigns named like `name`
    /// created at or after `createdAtOrAfter`, earliest first:
    /// `and(equals(messages.channel,'email'),contains(name,"…"),greater-or-equal(created_at,…))`.
    /// The spec lets `name` be filtered only with `contains`, so callers compare names exactly themselves.
    /// `createdAtOrAfter` is an RFC 3339 date-time such as `2026-11-29T11:50:00Z`; Klaviyo's filters take
    /// date-times unquoted. Each campaign's `relationships.campaign-messages.data` carries its message ids.
    public static func findCampaignsRequest(name: String, createdAtOrAfter: String) -> KlaviyoRequest {
        let filter =
            "and(equals(messages.channel,'email'),contains(name,\"\(name.replacingBackslashesAndQuotes())\"),"
            + "greater-or-equal(created_at,\(createdAtOrAfter)))"
        return KlaviyoRequest(
            operationID: "get_campaigns", method: "GET", path: "/api/campaigns",
            query: [("filter", filter), ("sort", "created_at")], isIdempotent: true)
    }

    /// The email campaigns whose name contains `name`, created at or after `createdAtOrAfter`, in Klaviyo's
    /// order (earliest first), through at most `maxPages` pages (``findCampaignsRequest(name:createdAtOrAfter:)``).
    public func findCampaigns(
        name: String, createdAtOrAfter: String, credential: KlaviyoCredential, maxPages: Int = 10
    ) async throws(KlaviyoError) -> [JSONValue] {
        try await allPages(
            Self.findCampaignsRequest(name: name, createdAtOrAfter: createdAtOrAfter), credential: credential,
            maxPages: maxPages
        ).items
    }

    /// The request for `GET /api/campaigns/{id}` (get_campaign).
    public static func getCampaignRequest(id: String) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "get_campaign", method: "GET", path: "/api/campaigns/\(KlaviyoRequest.percentEncode(id))",
            isIdempotent: true)
    }

    /// The request for `PATCH /api/campaign-send-jobs/{id}` (cancel_campaign_send, 204): `cancel` or `revert`.
    public static func cancelCampaignSendRequest(campaignID: String, action: String) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "cancel_campaign_send", method: "PATCH",
            path: "/api/campaign-send-jobs/\(KlaviyoRequest.percentEncode(campaignID))",
            body: [
                "data": [
                    "type": "campaign-send-job", "id": .string(campaignID), "attributes": ["action": .string(action)],
                ]
            ], isIdempotent: true)
    }

    /// Sends a call whose answer is one resource and returns it.
    public func resource(
        _ request: KlaviyoRequest, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> (status: Int, resource: JSONValue)
    {
        let response = try await send(request, credential: credential)
        guard let data = response.data, data["id"]?.stringValue != nil else {
            throw KlaviyoError(
                code: .invalidResponse, status: response.status, operationID: request.operationID,
                message: "response has no resource", usedOAuth: credential.isOAuth)
        }
        return (response.status, data)
    }
}
