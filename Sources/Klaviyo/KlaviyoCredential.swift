/// How a request authenticates: a private API key or an OAuth access token.
///
/// The description never shows the secret.
public enum KlaviyoCredential: Sendable, Hashable, CustomStringConvertible {
    /// A private API key (`pk_…`), sent as `Authorization: Klaviyo-API-Key <key>`.
    case apiKey(String)
    /// An OAuth access token, sent as `Authorization: Bearer <token>`.
    case bearer(String)

    /// The `Authorization` header value.
    public var authorizationHeader: String {
        switch self {
        case .apiKey(let key): return "Klaviyo-API-Key \(key)"
        case .bearer(let token): return "Bearer \(token)"
        }
    }

    /// `true` for OAuth access tokens.
    public var isOAuth: Bool {
        if case .bearer = self { return true }
        return false
    }

    /// The secret itself, for redaction checks.
    public var secret: String {
        switch self {
        case .apiKey(let key): return key
        case .bearer(let token): return token
        }
    }

    /// A redacted description, safe for logs.
    public var description: String {
        switch self {
        case .apiKey: return "apiKey(<redacted>)"
        case .bearer: return "bearer(<redacted>)"
        }
    }
}
