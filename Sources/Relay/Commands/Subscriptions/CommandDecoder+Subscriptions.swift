import Klaviyo

/// Payload validation of `subscription.subscribe` and `subscription.unsubscribe`.
extension CommandDecoder {
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
}
