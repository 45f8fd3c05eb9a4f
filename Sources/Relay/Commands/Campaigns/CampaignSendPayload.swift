/// `campaign.send`: start sending a campaign (its send job has the campaign's id).
public struct CampaignSendPayload: Sendable, Hashable {
    /// The campaign.
    public var campaignID: String
}
