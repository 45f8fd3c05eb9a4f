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
    /// deduplicated by Klaviyo (docs/contracts.md, `event.track`).
    public func klaviyoEvent(fallbackUniqueID: String, defaultTime: String) -> KlaviyoEvent {
        let source = time ?? defaultTime
        let seconds = Timestamp.epochSeconds(rfc3339: source) ?? Timestamp.nowSeconds()
        return KlaviyoEvent(
            metric: metric, profile: profile, properties: properties, time: Timestamp.formatWholeSeconds(seconds),
            uniqueID: uniqueID ?? fallbackUniqueID, value: value, valueCurrency: valueCurrency)
    }
}
