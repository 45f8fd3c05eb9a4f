public import Klaviyo

/// `campaign.create`: an email campaign with one message (`POST /api/campaigns`).
public struct CampaignCreatePayload: Sendable, Hashable {
    /// Campaign name.
    public var name: String
    /// Klaviyo `audiences` (`included`, optional `excluded` list or segment ids).
    public var audiences: JSONValue
    /// Klaviyo `send_strategy` (`immediate`, or `static` with a datetime).
    public var sendStrategy: JSONValue
    /// Message `content` (`subject`, `from_email`, `from_label`, optional `preview_text`, `reply_to_email`).
    public var content: [String: JSONValue]
    /// Message label.
    public var label: String
}
