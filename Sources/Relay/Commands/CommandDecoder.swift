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
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in SHA256.hash(data: JSONSerializer.serialize(value)) {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

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

    /// Validates the payload of `type`; each family's rules live in `Commands/<Family>/CommandDecoder+<Family>.swift`.
    static func decodePayload(type: CommandType, _ value: JSONValue) throws(SchemaViolation) -> CommandPayload {
        let members = try Check.object(value, at: "/payload")
        switch type {
        case .profileUpsert: return .profileUpsert(try decodeProfileUpsert(members))
        case .profileUpdate: return .profileUpdate(try decodeProfileUpdate(members))
        case .profileGet: return .profileGet(try decodeProfileGet(members))
        case .profileBulkImport: return .profileBulkImport(try decodeProfileBulkImport(members))
        case .eventTrack: return .eventTrack(EventTrackPayload(event: try decodeEvent(members, at: "/payload")))
        case .eventBulkTrack: return .eventBulkTrack(try decodeEventBulkTrack(members))
        case .listCreate: return .listCreate(try decodeListCreate(members))
        case .listAddProfiles: return .listAddProfiles(try decodeListProfiles(members))
        case .listRemoveProfiles: return .listRemoveProfiles(try decodeListProfiles(members))
        case .subscriptionSubscribe: return .subscriptionSubscribe(try decodeSubscribe(members))
        case .subscriptionUnsubscribe: return .subscriptionUnsubscribe(try decodeUnsubscribe(members))
        case .accountGet:
            try decodeAccountGet(members)
            return .accountGet
        case .flowList: return .flowList(try decodeFlowList(members))
        case .flowUpdateStatus: return .flowUpdateStatus(try decodeFlowUpdateStatus(members))
        case .campaignCreate: return .campaignCreate(try decodeCampaignCreate(members))
        case .campaignGet: return .campaignGet(try decodeCampaignGet(members))
        case .campaignCancelSend: return .campaignCancelSend(try decodeCampaignCancelSend(members))
        case .campaignSend: return .campaignSend(try decodeCampaignSend(members))
        case .campaignReport: return .campaignReport(try decodeValuesReport(members, report: .campaign))
        case .flowReport: return .flowReport(try decodeValuesReport(members, report: .flow))
        case .connectionValidate:
            try decodeConnectionValidate(members)
            return .connectionValidate
        case .connectionDisconnect: return .connectionDisconnect(reason: try decodeConnectionDisconnect(members))
        }
    }
}
