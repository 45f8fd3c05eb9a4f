/// The `x-relay-error-code` of a dead letter (docs/contracts.md, "Dead letters").
public struct DeadLetterCode: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The code's wire name.
    public let rawValue: String
    /// Creates a code.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// The body is not JSON (or not UTF-8).
    public static let notJSON = DeadLetterCode("not_json")
    /// The body exceeds the relay's size limit.
    public static let tooLarge = DeadLetterCode("too_large")
    /// JSON that does not match the envelope or payload schema.
    public static let schemaInvalid = DeadLetterCode("schema_invalid")
    /// A `type` that is not in the contract.
    public static let unknownType = DeadLetterCode("unknown_type")
    /// A contract type this relay version does not handle yet (replay after upgrading).
    public static let unsupportedType = DeadLetterCode("unsupported_type")
    /// The account has no connection.
    public static let notConnected = DeadLetterCode("not_connected")
    /// The account's OAuth grant is gone; replay after the customer reconnects.
    public static let reauthRequired = DeadLetterCode("reauth_required")
    /// Klaviyo refused the call with a permanent 4xx.
    public static let klaviyoRejected = DeadLetterCode("klaviyo_rejected")
    /// Transient failures outlasted the retry budget.
    public static let retriesExhausted = DeadLetterCode("retries_exhausted")
    /// The broker's delivery limit caught a message that kept failing (crash loop).
    public static let deliveryLimit = DeadLetterCode("delivery_limit")
    /// Another command with the same id (but another account, type or body) is already done: nothing of it
    /// is revealed and nothing is sent to Klaviyo.
    public static let idConflict = DeadLetterCode("id_conflict")
    /// The account's stored credential cannot be decrypted (unknown key id or failed authentication);
    /// replay once `RELAY_ENCRYPTION_KEY` holds the key again or the customer reconnected.
    public static let credentialUnreadable = DeadLetterCode("credential_unreadable")
    /// The command's routing key matched no binding of the commands exchange (its alternate exchange caught it).
    public static let unroutable = DeadLetterCode("unroutable")
    /// The command's AMQP `reply_to` names a queue `RELAY_REPLY_TO_PATTERN` does not admit (nothing was sent).
    public static let replyToNotAllowed = DeadLetterCode("reply_to_not_allowed")

    /// The wire name.
    public var description: String { rawValue }

    /// Decodes the wire name.
    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    /// Encodes the wire name.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
