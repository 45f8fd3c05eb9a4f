import Klaviyo

/// Payload validation of `campaign.create`, `campaign.get`, `campaign.send` and `campaign.cancel_send`.
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

    static func decodeCampaignGet(_ members: [String: JSONValue]) throws(SchemaViolation) -> CampaignGetPayload {
        try Check.onlyKeys(members, ["campaign_id"], at: "/payload")
        let id = try Check.resourceID(members["campaign_id"], at: "/payload/campaign_id")
        return CampaignGetPayload(campaignID: id)
    }

    static func decodeCampaignCancelSend(
        _ members: [String: JSONValue]
    ) throws(SchemaViolation)
        -> CampaignCancelSendPayload
    {
        try Check.onlyKeys(members, ["campaign_id", "action"], at: "/payload")
        let id = try Check.resourceID(members["campaign_id"], at: "/payload/campaign_id")
        let action = try Check.string(members["action"], at: "/payload/action", maxLength: 16)
        guard action == "cancel" || action == "revert" else {
            throw SchemaViolation(pointer: "/payload/action", message: "must be cancel or revert")
        }
        return CampaignCancelSendPayload(campaignID: id, action: action)
    }

    static func decodeCampaignSend(_ members: [String: JSONValue]) throws(SchemaViolation) -> CampaignSendPayload {
        try Check.onlyKeys(members, ["campaign_id"], at: "/payload")
        let id = try Check.resourceID(members["campaign_id"], at: "/payload/campaign_id")
        return CampaignSendPayload(campaignID: id)
    }
}
