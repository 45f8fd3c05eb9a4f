public import Klaviyo

/// The payload of a command, typed per command type.
public enum CommandPayload: Sendable {
    /// `profile.upsert`.
    case profileUpsert(ProfileUpsertPayload)
    /// `profile.update`.
    case profileUpdate(ProfileUpdatePayload)
    /// `profile.get`.
    case profileGet(ProfileGetPayload)
    /// `event.track`.
    case eventTrack(EventTrackPayload)
    /// `event.bulk_track`.
    case eventBulkTrack(EventBulkTrackPayload)
    /// `list.create`.
    case listCreate(ListCreatePayload)
    /// `list.add_profiles`.
    case listAddProfiles(ListProfilesPayload)
    /// `list.remove_profiles`.
    case listRemoveProfiles(ListProfilesPayload)
    /// `subscription.subscribe`.
    case subscriptionSubscribe(SubscriptionSubscribePayload)
    /// `subscription.unsubscribe`.
    case subscriptionUnsubscribe(SubscriptionUnsubscribePayload)
    /// `account.get` (empty payload).
    case accountGet
    /// `flow.list`.
    case flowList(FlowListPayload)
    /// `flow.update_status`.
    case flowUpdateStatus(FlowUpdateStatusPayload)
    /// `campaign.create`.
    case campaignCreate(CampaignCreatePayload)
    /// `campaign.get`.
    case campaignGet(CampaignGetPayload)
    /// `campaign.cancel_send`.
    case campaignCancelSend(CampaignCancelSendPayload)
    /// `profile.bulk_import`.
    case profileBulkImport(ProfileBulkImportPayload)
    /// `campaign.send`.
    case campaignSend(CampaignSendPayload)
    /// `campaign.report` (query_campaign_values).
    case campaignReport(ValuesReportPayload)
    /// `flow.report` (query_flow_values).
    case flowReport(ValuesReportPayload)
    /// `connection.validate` (empty payload).
    case connectionValidate
    /// `connection.disconnect`: the same effect as `DELETE /v1/accounts/{id}/connection` (revoke, delete
    /// secrets, `connection.disconnected`); `reason` is carried into the connection event.
    case connectionDisconnect(reason: String?)
    /// A type that is part of the contract but not handled by this version of the relay.
    case unsupported(JSONValue)
}
