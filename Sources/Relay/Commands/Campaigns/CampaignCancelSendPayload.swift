/// `campaign.cancel_send`.
public struct CampaignCancelSendPayload: Sendable, Hashable {
    /// The campaign (its send job has the same id).
    public var campaignID: String
    /// `cancel` or `revert`.
    public var action: String
}
