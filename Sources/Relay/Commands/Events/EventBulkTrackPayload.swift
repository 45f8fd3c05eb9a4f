public import Klaviyo

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
