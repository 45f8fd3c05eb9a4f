/// A decoded, validated command (the envelope of docs/contracts.md, Commands).
public struct CommandEnvelope: Sendable {
    /// Idempotency key, also the AMQP `message_id`.
    public var id: String
    /// The command type.
    public var type: CommandType
    /// HeroPixel's id of the connected Klaviyo account.
    public var accountID: String
    /// When the publisher created the command (RFC 3339, as sent).
    public var createdAt: String
    /// The validated payload.
    public var payload: CommandPayload
    /// SHA-256 (hex) of the payload as canonical JSON (keys sorted, no spaces): what the command asks for,
    /// whatever the publisher's key order or spacing. The done marker records it, so a second command that
    /// reuses the id for another body is told apart from a copy of the same command.
    public var payloadDigest: String

    /// Creates an envelope (the decoder computes ``payloadDigest`` from the payload it validated).
    public init(
        id: String, type: CommandType, accountID: String, createdAt: String, payload: CommandPayload,
        payloadDigest: String
    ) {
        self.id = id
        self.type = type
        self.accountID = accountID
        self.createdAt = createdAt
        self.payload = payload
        self.payloadDigest = payloadDigest
    }
}
