import Logging

/// Logger metadata keys, in one place (STYLE §9).
public enum LogKeys {
    /// HeroPixel account id.
    public static let accountID = "account_id"
    /// Command id.
    public static let commandID = "command_id"
    /// Command type.
    public static let type = "type"
    /// W3C traceparent.
    public static let traceparent = "traceparent"
    /// Dead-letter or error code.
    public static let errorCode = "error.code"
    /// Error detail (never secrets).
    public static let errorDetail = "error.detail"
    /// Attempt number.
    public static let attempt = "attempt"
    /// Queue name.
    public static let queue = "amqp.queue"
    /// Klaviyo operation id.
    public static let klaviyoOperation = "klaviyo.operation"
    /// HTTP status.
    public static let httpStatus = "http.status"
    /// Encryption key id of a stored secret (never key material).
    public static let keyID = "encryption.key_id"
    /// Which stored secret field (`api_key`, `access_token`, `refresh_token`).
    public static let credentialField = "credential.field"
    /// Duration in milliseconds.
    public static let durationMS = "duration_ms"
}

extension Logger {
    /// Adds several metadata values in one update of the handler (a stream handler renders its metadata again on
    /// every change; a command sets five values before its first log line).
    mutating func addMetadata(_ metadata: Logger.Metadata) {
        handler.metadata.merge(metadata) { _, new in new }
    }
}
