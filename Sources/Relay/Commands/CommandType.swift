/// Every command type of the contract (docs/contracts.md, Commands). The raw value is the AMQP routing key.
public enum CommandType: String, Sendable, CaseIterable, Codable {
    case profileUpsert = "profile.upsert"
    case profileUpdate = "profile.update"
    case profileGet = "profile.get"
    case profileBulkImport = "profile.bulk_import"
    case listCreate = "list.create"
    case listAddProfiles = "list.add_profiles"
    case listRemoveProfiles = "list.remove_profiles"
    case subscriptionSubscribe = "subscription.subscribe"
    case subscriptionUnsubscribe = "subscription.unsubscribe"
    case eventTrack = "event.track"
    case eventBulkTrack = "event.bulk_track"
    case campaignCreate = "campaign.create"
    case campaignGet = "campaign.get"
    case campaignSend = "campaign.send"
    case campaignCancelSend = "campaign.cancel_send"
    case campaignReport = "campaign.report"
    case flowList = "flow.list"
    case flowUpdateStatus = "flow.update_status"
    case flowReport = "flow.report"
    case accountGet = "account.get"
    case connectionValidate = "connection.validate"
    case connectionDisconnect = "connection.disconnect"

    /// The work queue (without prefix) that receives this type.
    public var queue: RelayQueue {
        switch self {
        case .profileUpsert, .profileUpdate, .profileGet, .profileBulkImport, .listCreate, .listAddProfiles,
            .listRemoveProfiles, .subscriptionSubscribe, .subscriptionUnsubscribe:
            return .profiles
        case .eventTrack, .eventBulkTrack:
            return .events
        case .campaignCreate, .campaignGet, .campaignSend, .campaignCancelSend, .campaignReport, .flowList,
            .flowUpdateStatus, .flowReport, .accountGet, .connectionValidate, .connectionDisconnect:
            return .campaigns
        }
    }
}

/// The three work queues of the topology.
public enum RelayQueue: String, Sendable, CaseIterable {
    /// `profile.*`, `list.*`, `subscription.*`.
    case profiles
    /// `event.*`.
    case events
    /// `campaign.*`, `flow.*`, `account.*`, `connection.*`.
    case campaigns
    /// What matched no binding of the commands exchange (its alternate exchange): every message here becomes a
    /// dead letter `unroutable`, so nothing a publisher hands over vanishes.
    case unroutable

    /// The work queue the commands exchange routes `routingKey` to: `<word>.<word>` matching one of the
    /// ``bindingKeys`` (`profile.*` takes exactly one more word); nil for anything else.
    public static func routing(_ routingKey: String) -> RelayQueue? {
        guard let dot = routingKey.firstIndex(of: ".") else { return nil }
        let word = routingKey[routingKey.index(after: dot)...]
        guard dot != routingKey.startIndex, !word.isEmpty, !word.contains(".") else { return nil }
        let pattern = String(routingKey[...dot]) + "*"
        return allCases.first { $0.bindingKeys.contains(pattern) }
    }

    /// Binding keys on the commands exchange.
    public var bindingKeys: [String] {
        switch self {
        case .profiles: return ["profile.*", "list.*", "subscription.*"]
        case .events: return ["event.*"]
        case .campaigns: return ["campaign.*", "flow.*", "account.*", "connection.*"]
        case .unroutable: return []
        }
    }
}

extension CommandType {
    /// Types that submit a Klaviyo job and wait for it without holding a consumer (polled through the delay
    /// tiers, the job id kept in Redis).
    public var waitsForJob: Bool { self == .profileBulkImport || self == .campaignSend }
}
