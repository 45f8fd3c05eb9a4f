import Klaviyo

/// Payload validation of `event.track` and `event.bulk_track`: Klaviyo's limits on one event are enforced here,
/// before any call.
extension CommandDecoder {
    /// Klaviyo: at most 400 event properties.
    static let maxEventProperties = 400

    /// Klaviyo: any string in an event at most 100 KB.
    static let maxEventStringBytes = 100 * 1024

    /// One event's request body must stay well below Klaviyo's 5 MB request limit.
    static let maxEventBytes = 4 * 1024 * 1024

    /// `time` must be after 2000-01-01T00:00:00Z …
    static let earliestEventTime: Int64 = 946_684_800

    /// … and at most a year ahead.
    static let maxEventTimeAhead: Int64 = 365 * 86_400

    /// The longest string (in UTF-8 bytes) anywhere in a value.
    static func longestString(in value: JSONValue) -> Int {
        switch value {
        case .string(let text): return text.utf8.count
        case .array(let items): return items.reduce(0) { max($0, longestString(in: $1)) }
        case .object(let members):
            return members.reduce(0) { max($0, $1.key.utf8.count, longestString(in: $1.value)) }
        default: return 0
        }
    }

    static let eventKeys: Set<String> = [
        "metric", "profile", "properties", "value", "value_currency", "time", "unique_id",
    ]

    /// One event (`event.track`'s payload, or an item of `event.bulk_track`'s `events`).
    static func decodeEvent(_ members: [String: JSONValue], at pointer: String) throws(SchemaViolation) -> EventPayload
    {
        try Check.onlyKeys(members, eventKeys, at: pointer)
        let metric = try Check.string(members["metric"], at: pointer + "/metric", maxLength: 255)
        let profilePointer = pointer + "/profile"
        let profileMembers = try Check.object(members["profile"], at: profilePointer)
        try Check.onlyKeys(profileMembers, ["email", "phone_number", "external_id"], at: profilePointer)
        var profile: [String: JSONValue] = [:]
        if profileMembers["email"] != nil {
            profile["email"] = .string(try email(profileMembers["email"], at: profilePointer + "/email"))
        }
        if profileMembers["phone_number"] != nil {
            profile["phone_number"] = .string(
                try phone(profileMembers["phone_number"], at: profilePointer + "/phone_number"))
        }
        if profileMembers["external_id"] != nil {
            profile["external_id"] = .string(
                try Check.string(profileMembers["external_id"], at: profilePointer + "/external_id", maxLength: 255))
        }
        if profile.isEmpty {
            throw SchemaViolation(
                pointer: profilePointer, message: "needs at least one of email, phone_number or external_id")
        }
        var properties: [String: JSONValue] = [:]
        if members["properties"] != nil {
            properties = try Check.object(members["properties"], at: pointer + "/properties")
            if properties.count > maxEventProperties {
                throw SchemaViolation(
                    pointer: pointer + "/properties",
                    message: "has \(properties.count) properties; Klaviyo accepts at most \(maxEventProperties)")
            }
        }
        var value: JSONValue?
        if let number = members["value"] {
            switch number {
            case .int, .double: value = number
            default:
                throw SchemaViolation(pointer: pointer + "/value", message: "must be a number, not \(number.typeName)")
            }
        }
        var currency: String?
        if members["value_currency"] != nil {
            let text = try Check.string(members["value_currency"], at: pointer + "/value_currency", maxLength: 3)
            guard text.utf8.count == 3, text.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else {
                throw SchemaViolation(
                    pointer: pointer + "/value_currency", message: "must be an ISO 4217 code such as USD")
            }
            currency = text
        }
        var time: String?
        if members["time"] != nil {
            let (text, seconds) = try dateTime(members["time"], at: pointer + "/time")
            if seconds <= earliestEventTime {
                throw SchemaViolation(pointer: pointer + "/time", message: "must be after 2000-01-01 (Klaviyo)")
            }
            if seconds > Timestamp.nowSeconds() + maxEventTimeAhead {
                throw SchemaViolation(
                    pointer: pointer + "/time", message: "must be at most one year in the future (Klaviyo)")
            }
            time = text
        }
        var uniqueID: String?
        if members["unique_id"] != nil {
            uniqueID = try Check.string(members["unique_id"], at: pointer + "/unique_id", maxLength: 255)
        }
        let event = JSONValue.object(members)
        if longestString(in: event) > maxEventStringBytes {
            throw SchemaViolation(pointer: pointer, message: "contains a string longer than Klaviyo's 100 KB limit")
        }
        if event.jsonBytes().count > maxEventBytes {
            throw SchemaViolation(
                pointer: pointer, message: "is larger than 4 MB (Klaviyo takes at most 5 MB per request)")
        }
        return EventPayload(
            metric: metric, profile: profile, properties: properties, value: value, valueCurrency: currency, time: time,
            uniqueID: uniqueID)
    }

    static func decodeEventBulkTrack(_ members: [String: JSONValue]) throws(SchemaViolation) -> EventBulkTrackPayload {
        try Check.onlyKeys(members, ["events"], at: "/payload")
        let items = try array(members["events"], at: "/payload/events", maxCount: maxItemsPerCommand)
        var events: [EventPayload] = []
        events.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let pointer = "/payload/events/\(index)"
            events.append(try decodeEvent(try Check.object(item, at: pointer), at: pointer))
        }
        return EventBulkTrackPayload(events: events)
    }

    /// Events without their own `time` are sent with the envelope's `created_at`, which must then meet
    /// Klaviyo's time rules too (after 2000, at most a year ahead).
    static func checkDefaultEventTime(_ payload: CommandPayload, createdAt: String) throws(SchemaViolation) {
        let usesCreatedAt: Bool
        switch payload {
        case .eventTrack(let track): usesCreatedAt = track.event.time == nil
        case .eventBulkTrack(let bulk): usesCreatedAt = bulk.events.contains { $0.time == nil }
        default: usesCreatedAt = false
        }
        guard usesCreatedAt, let seconds = Timestamp.epochSeconds(rfc3339: createdAt) else { return }
        if seconds <= earliestEventTime || seconds > Timestamp.nowSeconds() + maxEventTimeAhead {
            throw SchemaViolation(
                pointer: "/created_at",
                message: "is the time of events without their own time and must be after 2000-01-01 and at most "
                    + "one year in the future (Klaviyo)")
        }
    }
}
