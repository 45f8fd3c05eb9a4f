public import Klaviyo

/// A decoded, validated command (DESIGN §4 envelope).
public struct CommandEnvelope: Sendable {
    /// Idempotency key, also the AMQP `message_id`.
    public var id: String
    /// The command type.
    public var type: CommandType
    /// HeroPixel's id of the connected Klaviyo account.
    public var accountID: String
    /// When the publisher created the command (RFC 3339, as sent).
    public var createdAt: String
    /// The validated payload.
    public var payload: CommandPayload
    /// SHA-256 (hex) of the payload as canonical JSON (keys sorted, no spaces): what the command asks for,
    /// whatever the publisher's key order or spacing. The done marker records it, so a second command that
    /// reuses the id for another body is told apart from a copy of the same command.
    public var payloadDigest: String

    /// Creates an envelope (the decoder computes ``payloadDigest`` from the payload it validated).
    public init(
        id: String, type: CommandType, accountID: String, createdAt: String, payload: CommandPayload,
        payloadDigest: String
    ) {
        self.id = id
        self.type = type
        self.accountID = accountID
        self.createdAt = createdAt
        self.payload = payload
        self.payloadDigest = payloadDigest
    }
}

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
    /// `connection.validate` (empty payload).
    case connectionValidate
    /// `connection.disconnect`: the same effect as `DELETE /v1/accounts/{id}/connection` (revoke, delete
    /// secrets, `connection.disconnected`); `reason` is carried into the connection event.
    case connectionDisconnect(reason: String?)
    /// A type that is part of the contract but not handled by this version of the relay.
    case unsupported(JSONValue)
}

/// `profile.upsert`: create or update a profile by identifiers (Klaviyo `POST /api/profile-import`).
public struct ProfileUpsertPayload: Sendable, Hashable {
    /// Klaviyo profile attributes; `null` clears a field. Contains at least one identifier.
    public var attributes: [String: JSONValue]
    /// Optional Klaviyo profile id to upsert by.
    public var profileID: String?
}

/// `profile.update`: change attributes of a known profile (Klaviyo `PATCH /api/profiles/{id}`).
public struct ProfileUpdatePayload: Sendable, Hashable {
    /// Klaviyo profile id.
    public var profileID: String
    /// Attributes to change; omitted ones stay, `null` clears.
    public var attributes: [String: JSONValue]
}

/// `profile.get`: look a profile up by exactly one identifier.
public struct ProfileGetPayload: Sendable, Hashable {
    /// The identifier to look up by.
    public var lookup: ProfileLookup
}
