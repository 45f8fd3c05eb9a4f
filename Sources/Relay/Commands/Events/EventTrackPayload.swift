public import Klaviyo

/// `event.track`: one event (`POST /api/events`).
public struct EventTrackPayload: Sendable, Hashable {
    /// The event.
    public var event: EventPayload

    /// The event as sent: unique id `relay-<command id>` unless the payload has one.
    public func klaviyoEvent(commandID: String, createdAt: String) -> KlaviyoEvent {
        event.klaviyoEvent(fallbackUniqueID: "relay-\(commandID)", defaultTime: createdAt)
    }
}
