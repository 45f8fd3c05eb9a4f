/// What a merchant sees synced, by kind: the command types that move data to Klaviyo, grouped as the settings
/// page counts them. Reads, connection checks and reports are not syncs.
public enum SyncKind: String, Sendable, CaseIterable, Hashable {
    /// `profile.upsert`, `profile.update`, `profile.bulk_import`, `subscription.*`.
    case profiles
    /// `event.track`, `event.bulk_track`.
    case events
    /// `list.create`, `list.add_profiles`, `list.remove_profiles`.
    case lists
    /// `campaign.create`, `campaign.send`, `campaign.cancel_send`, `flow.update_status`.
    case campaigns

    /// The kind of a command type (its wire name); nil for reads and connection commands.
    public init?(commandType: String) {
        switch CommandType(rawValue: commandType) {
        case .profileUpsert, .profileUpdate, .profileBulkImport, .subscriptionSubscribe, .subscriptionUnsubscribe:
            self = .profiles
        case .eventTrack, .eventBulkTrack: self = .events
        case .listCreate, .listAddProfiles, .listRemoveProfiles: self = .lists
        case .campaignCreate, .campaignSend, .campaignCancelSend, .flowUpdateStatus: self = .campaigns
        default: return nil
        }
    }
}

extension CommandEnvelope {
    /// How many things the command synced when it succeeded: events of a bulk track, profiles of a bulk import
    /// or a list change, subscribers of a subscription change; 1 otherwise.
    public var syncedItems: Int {
        switch payload {
        case .eventBulkTrack(let payload): return payload.events.count
        case .profileBulkImport(let payload): return payload.profiles.count
        case .listAddProfiles(let payload), .listRemoveProfiles(let payload): return payload.profileIDs.count
        default: return 1
        }
    }
}
