/// `campaign.get`.
public struct CampaignGetPayload: Sendable, Hashable {
    /// The campaign.
    public var campaignID: String
}
