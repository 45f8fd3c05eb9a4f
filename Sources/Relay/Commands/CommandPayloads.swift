public import Klaviyo

/// One event of `event.track` / `event.bulk_track`, as validated from the payload.
public struct EventPayload: Sendable, Hashable {
    /// Metric name.
    public var metric: String
    /// Profile identifiers (at least one of `email`, `phone_number`, `external_id`).
    public var profile: [String: JSONValue]
    /// Event properties (≤ 400).
    public var properties: [String: JSONValue]
    /// Optional numeric value.
    public var value: JSONValue?
    /// Optional ISO 4217 currency.
    public var valueCurrency: String?
    /// The payload's time, as sent (nil: the envelope's `created_at`).
    public var time: String?
    /// The payload's unique id (nil: derived from the command id).
    public var uniqueID: String?

    /// The event as sent to Klaviyo: a deterministic `unique_id` (the payload's, else `fallbackUniqueID`) and an
    /// explicit UTC `time` truncated to the second (the payload's, else `defaultTime`), so a retried call is
    /// deduplicated by Klaviyo (FACTS §7).
    public func klaviyoEvent(fallbackUniqueID: String, defaultTime: String) -> KlaviyoEvent {
        let source = time ?? defaultTime
        let seconds = Timestamp.epochSeconds(rfc3339: source) ?? Timestamp.nowSeconds()
        return KlaviyoEvent(
            metric: metric, profile: profile, properties: properties, time: Timestamp.formatWholeSeconds(seconds),
            uniqueID: uniqueID ?? fallbackUniqueID, value: value, valueCurrency: valueCurrency)
    }
}

/// `event.track`: one event (`POST /api/events`).
public struct EventTrackPayload: Sendable, Hashable {
    /// The event.
    public var event: EventPayload

    /// The event as sent: unique id `relay-<command id>` unless the payload has one.
    public func klaviyoEvent(commandID: String, createdAt: String) -> KlaviyoEvent {
        event.klaviyoEvent(fallbackUniqueID: "relay-\(commandID)", defaultTime: createdAt)
    }
}

/// `event.bulk_track`: up to 10,000 events, sent in bulk jobs of at most 1,000.
public struct EventBulkTrackPayload: Sendable, Hashable {
    /// The events in payload order.
    public var events: [EventPayload]

    /// Largest request body the relay builds for one bulk job (Klaviyo's limit is 5 MB).
    public static let maxBatchBytes = 4 * 1024 * 1024 + 512 * 1024

    /// The events as sent (unique id `relay-<command id>-<index>` unless given), split into batches of at
    /// most 1,000 events and about 4.5 MB, in payload order.
    public func batches(commandID: String, createdAt: String) -> [[KlaviyoEvent]] {
        var batches: [[KlaviyoEvent]] = []
        var current: [KlaviyoEvent] = []
        var currentBytes = 0
        for (index, payload) in events.enumerated() {
            let event = payload.klaviyoEvent(fallbackUniqueID: "relay-\(commandID)-\(index)", defaultTime: createdAt)
            let bytes = KlaviyoClient.createEventRequest(event).body?.jsonBytes().count ?? 0
            if !current.isEmpty
                && (current.count == KlaviyoClient.maxEventsPerBulkJob || currentBytes + bytes > Self.maxBatchBytes)
            {
                batches.append(current)
                current = []
                currentBytes = 0
            }
            current.append(event)
            currentBytes += bytes
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }
}

/// `list.create`: find a list by name, create it only if absent.
public struct ListCreatePayload: Sendable, Hashable {
    /// List name.
    public var name: String
    /// `single_opt_in` or `double_opt_in` (for a new list).
    public var optInProcess: String?
}

/// `list.add_profiles` / `list.remove_profiles`.
public struct ListProfilesPayload: Sendable, Hashable {
    /// The list.
    public var listID: String
    /// Profile ids (≤ 10,000, no duplicates).
    public var profileIDs: [String]

    /// The ids in calls of at most 1,000.
    public var batches: [[String]] {
        stride(from: 0, to: profileIDs.count, by: KlaviyoClient.maxProfilesPerListCall).map {
            Array(profileIDs[$0..<min($0 + KlaviyoClient.maxProfilesPerListCall, profileIDs.count)])
        }
    }
}

/// `subscription.subscribe`: email and/or SMS marketing consent (`POST /api/profile-subscription-bulk-create-jobs`).
public struct SubscriptionSubscribePayload: Sendable, Hashable {
    /// Optional list to subscribe to.
    public var listID: String?
    /// Optional `custom_source`.
    public var customSource: String?
    /// Historical import (each profile carries a past `consented_at`).
    public var historicalImport: Bool
    /// The profiles (≤ 10,000).
    public var profiles: [KlaviyoSubscriber]

    /// The profiles in calls of at most 1,000.
    public var batches: [[KlaviyoSubscriber]] { profiles.chunked(KlaviyoClient.maxProfilesPerSubscribeJob) }
}

/// `subscription.unsubscribe`: from one list, or globally only when asked explicitly.
public struct SubscriptionUnsubscribePayload: Sendable, Hashable {
    /// The list; nil only with `global`.
    public var listID: String?
    /// The profiles (≤ 10,000).
    public var profiles: [KlaviyoSubscriber]

    /// The profiles in calls of at most 100.
    public var batches: [[KlaviyoSubscriber]] { profiles.chunked(KlaviyoClient.maxProfilesPerUnsubscribeJob) }
}

/// `flow.list`: every flow, optionally only those with one status.
public struct FlowListPayload: Sendable, Hashable {
    /// `draft`, `manual` or `live`.
    public var status: String?
}

/// `flow.update_status`.
public struct FlowUpdateStatusPayload: Sendable, Hashable {
    /// The flow.
    public var flowID: String
    /// `draft`, `manual` or `live`.
    public var status: String
}

extension Array {
    func chunked(_ size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}

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

/// `campaign.get`.
public struct CampaignGetPayload: Sendable, Hashable {
    /// The campaign.
    public var campaignID: String
}

/// `campaign.cancel_send`.
public struct CampaignCancelSendPayload: Sendable, Hashable {
    /// The campaign (its send job has the same id).
    public var campaignID: String
    /// `cancel` or `revert`.
    public var action: String
}

/// `profile.bulk_import`: up to 10,000 profiles in one Klaviyo bulk-import job, optionally added to a list.
public struct ProfileBulkImportPayload: Sendable, Hashable {
    /// Profile attributes, each with at least one identifier.
    public var profiles: [[String: JSONValue]]
    /// Optional list the profiles are added to.
    public var listID: String?
}

/// `campaign.send`: start sending a campaign (its send job has the campaign's id).
public struct CampaignSendPayload: Sendable, Hashable {
    /// The campaign.
    public var campaignID: String
}
