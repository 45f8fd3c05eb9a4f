/// Why a message cannot be processed at all: it goes straight to the dead-letter queue.
public struct CommandRejection: Error, Sendable, CustomStringConvertible {
    /// Dead-letter error code (`not_json`, `schema_invalid`, `unknown_type`, `too_large`).
    public var code: DeadLetterCode
    /// Human-readable reason, naming the offending member.
    public var detail: String
    /// What could be read of the envelope, for logs and headers.
    public var commandID: String?
    /// The `type` member, if it was a string.
    public var type: String?
    /// The `account_id` member, if it was a string.
    public var accountID: String?

    /// Creates a rejection.
    public init(
        code: DeadLetterCode, detail: String, commandID: String? = nil, type: String? = nil, accountID: String? = nil
    ) {
        self.code = code
        self.detail = detail
        self.commandID = commandID
        self.type = type
        self.accountID = accountID
    }

    /// `code: detail`.
    public var description: String { "\(code.rawValue): \(detail)" }
}
