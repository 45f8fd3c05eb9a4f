extension KlaviyoClient {
    /// The request for `POST /api/campaigns` (create_campaign, 201): an email campaign with one message.
    /// Not idempotent: a repeat creates a second campaign.
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
