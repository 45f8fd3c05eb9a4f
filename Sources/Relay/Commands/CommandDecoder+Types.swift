import Klaviyo

/// Payload validation of the list, subscription, event and flow commands. Klaviyo's limits are enforced
/// here, before any call: what Klaviyo takes in smaller calls is split later, what no split can fix is
/// rejected with the reason.
extension CommandDecoder {
    /// Most items (events, profile ids, subscribers) one command may carry; larger sets are rejected.
    static let maxItemsPerCommand = 10_000
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

    static func array(
        _ value: JSONValue?, at pointer: String, minCount: Int = 1, maxCount: Int
    )
        throws(SchemaViolation) -> [JSONValue]
    {
        guard let value else { throw SchemaViolation(pointer: pointer, message: "is required") }
        guard case .array(let items) = value else {
            throw SchemaViolation(pointer: pointer, message: "must be an array, not \(value.typeName)")
        }
        if items.count < minCount {
            throw SchemaViolation(
                pointer: pointer, message: "needs at least \(minCount) item\(minCount == 1 ? "" : "s")")
        }
        if items.count > maxCount {
            throw SchemaViolation(
                pointer: pointer, message: "has \(items.count) items; at most \(maxCount) per command (split it)")
        }
        return items
    }

    static func bool(_ value: JSONValue?, at pointer: String) throws(SchemaViolation) -> Bool {
        guard case .bool(let flag)? = value else {
            throw SchemaViolation(pointer: pointer, message: "must be a boolean, not \(value?.typeName ?? "missing")")
        }
        return flag
    }

    static func email(_ value: JSONValue?, at pointer: String) throws(SchemaViolation) -> String {
        let text = try Check.string(value, at: pointer, maxLength: 254)
        guard Check.isEmail(text) else {
            throw SchemaViolation(pointer: pointer, message: "is not a valid email address")
        }
        return text
    }

    static func phone(_ value: JSONValue?, at pointer: String) throws(SchemaViolation) -> String {
        let text = try Check.string(value, at: pointer, maxLength: 16)
        guard Check.isE164(text) else {
            throw SchemaViolation(pointer: pointer, message: "must be an E.164 phone number such as +15005550006")
        }
        return text
    }

    /// An RFC 3339 date-time; returns the text and its epoch seconds.
    static func dateTime(_ value: JSONValue?, at pointer: String) throws(SchemaViolation) -> (String, Int64) {
        let text = try Check.string(value, at: pointer, maxLength: 64)
        guard Check.isRFC3339(text), let seconds = Timestamp.epochSeconds(rfc3339: text) else {
            throw SchemaViolation(pointer: pointer, message: "must be an RFC 3339 date-time")
        }
        return (text, seconds)
    }

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

    static func decodeListCreate(_ members: [String: JSONValue]) throws(SchemaViolation) -> ListCreatePayload {
        try Check.onlyKeys(members, ["name", "opt_in_process"], at: "/payload")
        let name = try Check.string(members["name"], at: "/payload/name", maxLength: 255)
        var optIn: String?
        if members["opt_in_process"] != nil {
            let text = try Check.string(members["opt_in_process"], at: "/payload/opt_in_process", maxLength: 32)
            guard text == "single_opt_in" || text == "double_opt_in" else {
                throw SchemaViolation(
                    pointer: "/payload/opt_in_process", message: "must be single_opt_in or double_opt_in")
            }
            optIn = text
        }
        return ListCreatePayload(name: name, optInProcess: optIn)
    }

    static func decodeListProfiles(_ members: [String: JSONValue]) throws(SchemaViolation) -> ListProfilesPayload {
        try Check.onlyKeys(members, ["list_id", "profile_ids"], at: "/payload")
        let listID = try Check.resourceID(members["list_id"], at: "/payload/list_id")
        let items = try array(members["profile_ids"], at: "/payload/profile_ids", maxCount: maxItemsPerCommand)
        var ids: [String] = []
        var seen: Set<String> = []
        for (index, item) in items.enumerated() {
            let id = try Check.resourceID(item, at: "/payload/profile_ids/\(index)")
            guard seen.insert(id).inserted else {
                throw SchemaViolation(pointer: "/payload/profile_ids/\(index)", message: "repeats profile id \(id)")
            }
            ids.append(id)
        }
        return ListProfilesPayload(listID: listID, profileIDs: ids)
    }

    /// The profiles of a subscription command: each with an email (email consent) and/or a phone number
    /// (SMS consent); `consented_at` only (and always) in a historical import, and in the past.
    static func decodeSubscribers(
        _ value: JSONValue?, historicalImport: Bool
    ) throws(SchemaViolation)
        -> [KlaviyoSubscriber]
    {
        let items = try array(value, at: "/payload/profiles", maxCount: maxItemsPerCommand)
        var subscribers: [KlaviyoSubscriber] = []
        subscribers.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let pointer = "/payload/profiles/\(index)"
            let members = try Check.object(item, at: pointer)
            try Check.onlyKeys(members, ["email", "phone_number", "consented_at"], at: pointer)
            var subscriber = KlaviyoSubscriber()
            if members["email"] != nil { subscriber.email = try email(members["email"], at: pointer + "/email") }
            if members["phone_number"] != nil {
                subscriber.phoneNumber = try phone(members["phone_number"], at: pointer + "/phone_number")
            }
            if subscriber.email == nil && subscriber.phoneNumber == nil {
                throw SchemaViolation(
                    pointer: pointer, message: "needs an email (email consent) or a phone_number (SMS consent)")
            }
            if members["consented_at"] != nil {
                guard historicalImport else {
                    throw SchemaViolation(
                        pointer: pointer + "/consented_at", message: "is only allowed with historical_import: true")
                }
                let (text, seconds) = try dateTime(members["consented_at"], at: pointer + "/consented_at")
                guard seconds <= Timestamp.nowSeconds() else {
                    throw SchemaViolation(pointer: pointer + "/consented_at", message: "must be in the past")
                }
                subscriber.consentedAt = text
            } else if historicalImport {
                throw SchemaViolation(
                    pointer: pointer + "/consented_at", message: "is required with historical_import: true")
            }
            subscribers.append(subscriber)
        }
        return subscribers
    }

    static func decodeSubscribe(_ members: [String: JSONValue]) throws(SchemaViolation) -> SubscriptionSubscribePayload
    {
        try Check.onlyKeys(members, ["list_id", "custom_source", "historical_import", "profiles"], at: "/payload")
        var listID: String?
        if members["list_id"] != nil {
            listID = try Check.resourceID(members["list_id"], at: "/payload/list_id")
        }
        var source: String?
        if members["custom_source"] != nil {
            source = try Check.string(members["custom_source"], at: "/payload/custom_source", maxLength: 255)
        }
        var historical = false
        if members["historical_import"] != nil {
            historical = try bool(members["historical_import"], at: "/payload/historical_import")
        }
        let profiles = try decodeSubscribers(members["profiles"], historicalImport: historical)
        return SubscriptionSubscribePayload(
            listID: listID, customSource: source, historicalImport: historical, profiles: profiles)
    }

    static func decodeUnsubscribe(
        _ members: [String: JSONValue]
    ) throws(SchemaViolation)
        -> SubscriptionUnsubscribePayload
    {
        try Check.onlyKeys(members, ["list_id", "global", "profiles"], at: "/payload")
        var listID: String?
        if members["list_id"] != nil {
            listID = try Check.resourceID(members["list_id"], at: "/payload/list_id")
        }
        if members["global"] != nil {
            guard try bool(members["global"], at: "/payload/global") else {
                throw SchemaViolation(
                    pointer: "/payload/global", message: "may only be true (omit it and name a list_id instead)")
            }
            if listID != nil {
                throw SchemaViolation(pointer: "/payload/global", message: "cannot be combined with list_id")
            }
        } else if listID == nil {
            throw SchemaViolation(
                pointer: "/payload/list_id",
                message: "is required unless \"global\": true (without a list Klaviyo unsubscribes globally)")
        }
        let profiles = try decodeSubscribers(members["profiles"], historicalImport: false)
        return SubscriptionUnsubscribePayload(listID: listID, profiles: profiles)
    }

    static func decodeFlowStatus(_ value: JSONValue?, at pointer: String) throws(SchemaViolation) -> String {
        let status = try Check.string(value, at: pointer, maxLength: 16)
        guard ["draft", "manual", "live"].contains(status) else {
            throw SchemaViolation(pointer: pointer, message: "must be draft, manual or live")
        }
        return status
    }
}

extension CommandDecoder {
    static func idArray(_ value: JSONValue?, at pointer: String, minCount: Int) throws(SchemaViolation) -> JSONValue {
        let items = try array(value, at: pointer, minCount: minCount, maxCount: 1000)
        var seen: Set<String> = []
        for (index, item) in items.enumerated() {
            let id = try Check.string(item, at: "\(pointer)/\(index)", maxLength: 64)
            guard seen.insert(id).inserted else {
                throw SchemaViolation(pointer: "\(pointer)/\(index)", message: "repeats id \(id)")
            }
        }
        return .array(items)
    }

    static func decodeCampaignCreate(_ members: [String: JSONValue]) throws(SchemaViolation) -> CampaignCreatePayload {
        try Check.onlyKeys(members, ["name", "audiences", "send_strategy", "message"], at: "/payload")
        let name = try Check.string(members["name"], at: "/payload/name", maxLength: 255)

        let audienceMembers = try Check.object(members["audiences"], at: "/payload/audiences")
        try Check.onlyKeys(audienceMembers, ["included", "excluded"], at: "/payload/audiences")
        var audiences: [String: JSONValue] = [
            "included": try idArray(audienceMembers["included"], at: "/payload/audiences/included", minCount: 1)
        ]
        if audienceMembers["excluded"] != nil {
            audiences["excluded"] = try idArray(
                audienceMembers["excluded"], at: "/payload/audiences/excluded", minCount: 0)
        }

        var strategy: JSONValue = ["method": "immediate"]
        if members["send_strategy"] != nil {
            let pointer = "/payload/send_strategy"
            let strategyMembers = try Check.object(members["send_strategy"], at: pointer)
            try Check.onlyKeys(strategyMembers, ["method", "datetime", "is_local"], at: pointer)
            let method = try Check.string(strategyMembers["method"], at: pointer + "/method", maxLength: 16)
            switch method {
            case "immediate":
                if let extra = ["datetime", "is_local"].first(where: { strategyMembers[$0] != nil }) {
                    throw SchemaViolation(pointer: pointer + "/" + extra, message: "is only allowed with method static")
                }
            case "static":
                let (datetime, _) = try dateTime(strategyMembers["datetime"], at: pointer + "/datetime")
                var options: [String: JSONValue] = [:]
                if strategyMembers["is_local"] != nil {
                    options["is_local"] = .bool(try bool(strategyMembers["is_local"], at: pointer + "/is_local"))
                }
                var value: [String: JSONValue] = ["method": "static", "datetime": .string(datetime)]
                if !options.isEmpty { value["options"] = .object(options) }
                strategy = .object(value)
            default:
                throw SchemaViolation(pointer: pointer + "/method", message: "must be immediate or static")
            }
        }

        let messagePointer = "/payload/message"
        let message = try Check.object(members["message"], at: messagePointer)
        try Check.onlyKeys(
            message, ["subject", "preview_text", "from_email", "from_label", "reply_to_email", "label"],
            at: messagePointer)
        var content: [String: JSONValue] = [
            "subject": .string(try Check.string(message["subject"], at: messagePointer + "/subject", maxLength: 255)),
            "from_email": .string(try email(message["from_email"], at: messagePointer + "/from_email")),
            "from_label": .string(
                try Check.string(message["from_label"], at: messagePointer + "/from_label", maxLength: 255)),
        ]
        if message["preview_text"] != nil {
            content["preview_text"] = .string(
                try Check.string(message["preview_text"], at: messagePointer + "/preview_text", maxLength: 255))
        }
        if message["reply_to_email"] != nil {
            content["reply_to_email"] = .string(
                try email(message["reply_to_email"], at: messagePointer + "/reply_to_email"))
        }
        var label = name
        if message["label"] != nil {
            label = try Check.string(message["label"], at: messagePointer + "/label", maxLength: 255)
        }
        return CampaignCreatePayload(
            name: name, audiences: .object(audiences), sendStrategy: strategy, content: content, label: label)
    }
}

extension CommandDecoder {
    /// Klaviyo: at most 100 KB per profile of a bulk-import job …
    static let maxBulkImportProfileBytes = 100 * 1024
    /// … and 5 MB per job request.
    static let maxBulkImportJobBytes = 5 * 1024 * 1024

    /// `profile.bulk_import`: 1–10,000 profiles (each with an identifier, ≤ 100 KB), ≤ 5 MB in all, an
    /// optional `list_id`. Larger imports are rejected before any call: split them into several commands.
    static func decodeProfileBulkImport(
        _ members: [String: JSONValue]
    ) throws(SchemaViolation)
        -> ProfileBulkImportPayload
    {
        try Check.onlyKeys(members, ["profiles", "list_id"], at: "/payload")
        var listID: String?
        if members["list_id"] != nil {
            listID = try Check.resourceID(members["list_id"], at: "/payload/list_id")
        }
        let items = try array(members["profiles"], at: "/payload/profiles", maxCount: maxItemsPerCommand)
        var profiles: [[String: JSONValue]] = []
        profiles.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let pointer = "/payload/profiles/\(index)"
            let attributes = try ProfileAttributesValidator.validate(
                item, at: pointer, requireIdentifier: true, hasProfileID: false)
            let bytes = JSONValue.object(["type": "profile", "attributes": .object(attributes)]).jsonBytes().count
            if bytes > maxBulkImportProfileBytes {
                throw SchemaViolation(
                    pointer: pointer, message: "is \(bytes) bytes; Klaviyo takes at most 100 KB per profile")
            }
            profiles.append(attributes)
        }
        let request = KlaviyoClient.bulkImportProfilesRequest(profiles: profiles, listID: listID)
        let total = request.body?.jsonBytes().count ?? 0
        if total > maxBulkImportJobBytes {
            throw SchemaViolation(
                pointer: "/payload/profiles",
                message: "makes a \(total)-byte job; Klaviyo takes at most 5 MB per bulk import (split it)")
        }
        return ProfileBulkImportPayload(profiles: profiles, listID: listID)
    }
}

extension CommandDecoder {
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
