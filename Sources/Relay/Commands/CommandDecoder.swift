import Crypto
import Klaviyo

/// Turns message bodies into validated ``CommandEnvelope``s, or a ``CommandRejection`` naming exactly what
/// is wrong. It never traps: hostile bodies (invalid UTF-8, deep nesting, huge numbers, oversize) are
/// rejections like any other.
public struct CommandDecoder: Sendable {
    /// Largest body accepted.
    public var maxMessageBytes: Int
    /// Deepest JSON nesting accepted.
    public var maxDepth: Int

    /// Creates a decoder.
    public init(maxMessageBytes: Int = 6 * 1024 * 1024, maxDepth: Int = 64) {
        self.maxMessageBytes = maxMessageBytes
        self.maxDepth = maxDepth
    }

    /// SHA-256 (lowercase hex) of a value's canonical JSON (``JSONSerializer`` sorts keys).
    static func digest(_ value: JSONValue) -> String {
        SHA256.hash(data: JSONSerializer.serialize(value)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    static let envelopeKeys: Set<String> = ["id", "type", "account_id", "created_at", "payload"]

    /// Decodes and validates one message body.
    public func decode(_ body: [UInt8]) -> Result<CommandEnvelope, CommandRejection> {
        guard body.count <= maxMessageBytes else {
            return .failure(
                CommandRejection(
                    code: .tooLarge, detail: "message of \(body.count) bytes exceeds the \(maxMessageBytes)-byte limit")
            )
        }
        let document: JSONValue
        do {
            document = try JSONValue.parse(body, maxDepth: maxDepth)
        } catch {
            return .failure(CommandRejection(code: .notJSON, detail: "body is not valid JSON: \(error)"))
        }
        // Read what we can first, so every rejection carries the id, type and account for ops.
        var rejection = CommandRejection(code: .schemaInvalid, detail: "")
        rejection.commandID = document["id"]?.stringValue.map { String($0.prefix(128)) }
        rejection.type = document["type"]?.stringValue.map { String($0.prefix(64)) }
        rejection.accountID = document["account_id"]?.stringValue.map { String($0.prefix(128)) }
        do throws(SchemaViolation) {
            let members = try Check.object(document, at: "")
            try Check.onlyKeys(members, Self.envelopeKeys, at: "")
            let id = try Check.token(members["id"], at: "/id")
            let typeName = try Check.string(members["type"], at: "/type", maxLength: 64)
            let accountID = try Check.token(members["account_id"], at: "/account_id")
            let createdAt = try Check.string(members["created_at"], at: "/created_at", maxLength: 64)
            guard Check.isRFC3339(createdAt) else {
                throw SchemaViolation(pointer: "/created_at", message: "must be an RFC 3339 date-time")
            }
            let payloadValue = members["payload"]
            _ = try Check.object(payloadValue, at: "/payload")
            guard let type = CommandType(rawValue: typeName) else {
                rejection.code = .unknownType
                rejection.detail = "unknown command type \"\(typeName.prefix(64))\""
                return .failure(rejection)
            }
            let payload = try Self.decodePayload(type: type, payloadValue!)
            try Self.checkDefaultEventTime(payload, createdAt: createdAt)
            return .success(
                CommandEnvelope(
                    id: id, type: type, accountID: accountID, createdAt: createdAt, payload: payload,
                    payloadDigest: Self.digest(payloadValue!)))
        } catch {
            rejection.detail = error.detail
            return .failure(rejection)
        }
    }

    static func decodePayload(type: CommandType, _ value: JSONValue) throws(SchemaViolation) -> CommandPayload {
        let members = try Check.object(value, at: "/payload")
        switch type {
        case .profileUpsert:
            try Check.onlyKeys(members, ["profile", "profile_id"], at: "/payload")
            var profileID: String?
            if let idValue = members["profile_id"] {
                profileID = try Check.resourceID(idValue, at: "/payload/profile_id")
            }
            let attributes = try ProfileAttributesValidator.validate(
                members["profile"], at: "/payload/profile", requireIdentifier: true, hasProfileID: profileID != nil)
            return .profileUpsert(ProfileUpsertPayload(attributes: attributes, profileID: profileID))
        case .profileUpdate:
            try Check.onlyKeys(members, ["profile_id", "profile"], at: "/payload")
            let profileID = try Check.resourceID(members["profile_id"], at: "/payload/profile_id")
            let attributes = try ProfileAttributesValidator.validate(
                members["profile"], at: "/payload/profile", requireIdentifier: false, hasProfileID: true)
            return .profileUpdate(ProfileUpdatePayload(profileID: profileID, attributes: attributes))
        case .profileGet:
            let keys = ["email", "phone_number", "external_id", "profile_id"]
            try Check.onlyKeys(members, Set(keys), at: "/payload")
            let present = keys.filter { members[$0] != nil }
            guard present.count == 1, let key = present.first else {
                throw SchemaViolation(
                    pointer: "/payload", message: "needs exactly one of email, phone_number, external_id or profile_id")
            }
            let text = try Check.string(members[key], at: "/payload/\(key)", maxLength: 255)
            switch key {
            case "email":
                guard Check.isEmail(text) else {
                    throw SchemaViolation(pointer: "/payload/email", message: "is not a valid email address")
                }
                return .profileGet(ProfileGetPayload(lookup: .email(text)))
            case "phone_number":
                guard Check.isE164(text) else {
                    throw SchemaViolation(pointer: "/payload/phone_number", message: "must be an E.164 phone number")
                }
                return .profileGet(ProfileGetPayload(lookup: .phoneNumber(text)))
            case "external_id":
                return .profileGet(ProfileGetPayload(lookup: .externalID(text)))
            default:
                guard text != "." && text != ".." else {
                    throw SchemaViolation(
                        pointer: "/payload/profile_id", message: "must be a resource id, not \"\(text)\"")
                }
                return .profileGet(ProfileGetPayload(lookup: .id(text)))
            }
        case .eventTrack:
            return .eventTrack(EventTrackPayload(event: try decodeEvent(members, at: "/payload")))
        case .eventBulkTrack:
            return .eventBulkTrack(try decodeEventBulkTrack(members))
        case .listCreate:
            return .listCreate(try decodeListCreate(members))
        case .listAddProfiles:
            return .listAddProfiles(try decodeListProfiles(members))
        case .listRemoveProfiles:
            return .listRemoveProfiles(try decodeListProfiles(members))
        case .subscriptionSubscribe:
            return .subscriptionSubscribe(try decodeSubscribe(members))
        case .subscriptionUnsubscribe:
            return .subscriptionUnsubscribe(try decodeUnsubscribe(members))
        case .accountGet:
            if let key = members.keys.sorted().first {
                throw SchemaViolation(
                    pointer: "/payload/" + Check.escape(key),
                    message: "is not allowed (account.get takes an empty payload)")
            }
            return .accountGet
        case .flowList:
            try Check.onlyKeys(members, ["status"], at: "/payload")
            var status: String?
            if members["status"] != nil { status = try decodeFlowStatus(members["status"], at: "/payload/status") }
            return .flowList(FlowListPayload(status: status))
        case .flowUpdateStatus:
            try Check.onlyKeys(members, ["flow_id", "status"], at: "/payload")
            let flowID = try Check.resourceID(members["flow_id"], at: "/payload/flow_id")
            let status = try decodeFlowStatus(members["status"], at: "/payload/status")
            return .flowUpdateStatus(FlowUpdateStatusPayload(flowID: flowID, status: status))
        case .campaignCreate:
            return .campaignCreate(try decodeCampaignCreate(members))
        case .campaignGet:
            try Check.onlyKeys(members, ["campaign_id"], at: "/payload")
            let id = try Check.resourceID(members["campaign_id"], at: "/payload/campaign_id")
            return .campaignGet(CampaignGetPayload(campaignID: id))
        case .campaignCancelSend:
            try Check.onlyKeys(members, ["campaign_id", "action"], at: "/payload")
            let id = try Check.resourceID(members["campaign_id"], at: "/payload/campaign_id")
            let action = try Check.string(members["action"], at: "/payload/action", maxLength: 16)
            guard action == "cancel" || action == "revert" else {
                throw SchemaViolation(pointer: "/payload/action", message: "must be cancel or revert")
            }
            return .campaignCancelSend(CampaignCancelSendPayload(campaignID: id, action: action))
        case .profileBulkImport:
            return .profileBulkImport(try decodeProfileBulkImport(members))
        case .campaignSend:
            try Check.onlyKeys(members, ["campaign_id"], at: "/payload")
            let id = try Check.resourceID(members["campaign_id"], at: "/payload/campaign_id")
            return .campaignSend(CampaignSendPayload(campaignID: id))
        case .connectionValidate:
            if let key = members.keys.sorted().first {
                throw SchemaViolation(
                    pointer: "/payload/" + Check.escape(key),
                    message: "is not allowed (connection.validate takes an empty payload)")
            }
            return .connectionValidate
        case .connectionDisconnect:
            try Check.onlyKeys(members, ["reason"], at: "/payload")
            var reason: String?
            if let value = members["reason"] { reason = try Check.string(value, at: "/payload/reason", maxLength: 200) }
            return .connectionDisconnect(reason: reason)
        }
    }
}
