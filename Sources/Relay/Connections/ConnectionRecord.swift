public import Klaviyo

/// A connected Klaviyo account as stored in `kr:{<account_id>}:conn` (docs/contracts.md, "Redis"), with its secrets
/// decrypted. Its description never shows secrets.
public struct ConnectionRecord: Sendable, Hashable, CustomStringConvertible {
    /// How the account is connected.
    public enum Method: String, Sendable, Hashable {
        /// A private API key.
        case apiKey = "api_key"
        /// OAuth2 with PKCE.
        case oauth
    }

    /// Connection state.
    public enum State: String, Sendable, Hashable {
        /// Usable.
        case connected
        /// The OAuth grant is gone (app removed in Klaviyo, 90-day idle expiry, revoked): reconnect.
        case reauthRequired = "reauth_required"
        /// Disconnected on purpose; secrets deleted.
        case disconnected
    }

    /// HeroPixel account id.
    public var accountID: String
    /// Method.
    public var method: Method
    /// State.
    public var state: State
    /// Klaviyo's account id.
    public var klaviyoAccountID: String?
    /// Klaviyo organization name.
    public var klaviyoAccountName: String?
    /// OAuth scopes granted (space-separated), if known.
    public var scope: String?
    /// OAuth access-token expiry (Unix seconds).
    public var expiresAt: Int64?
    /// Monotonic version, bumped by every write (fences stale token refreshes).
    public var version: Int64
    /// When the account was connected (RFC 3339).
    public var connectedAt: String?
    /// Last write (RFC 3339).
    public var updatedAt: String?
    /// The private API key, for `api_key`.
    public var apiKey: String?
    /// OAuth access token.
    public var accessToken: String?
    /// OAuth refresh token.
    public var refreshToken: String?

    /// Creates a record.
    public init(
        accountID: String, method: Method, state: State, klaviyoAccountID: String? = nil,
        klaviyoAccountName: String? = nil, scope: String? = nil, expiresAt: Int64? = nil, version: Int64 = 0,
        connectedAt: String? = nil, updatedAt: String? = nil, apiKey: String? = nil, accessToken: String? = nil,
        refreshToken: String? = nil
    ) {
        self.accountID = accountID
        self.method = method
        self.state = state
        self.klaviyoAccountID = klaviyoAccountID
        self.klaviyoAccountName = klaviyoAccountName
        self.scope = scope
        self.expiresAt = expiresAt
        self.version = version
        self.connectedAt = connectedAt
        self.updatedAt = updatedAt
        self.apiKey = apiKey
        self.accessToken = accessToken
        self.refreshToken = refreshToken
    }

    /// The credential to call Klaviyo with, if the connection is usable.
    public var credential: KlaviyoCredential? {
        guard state == .connected else { return nil }
        switch method {
        case .apiKey: return apiKey.map(KlaviyoCredential.apiKey)
        case .oauth: return accessToken.map(KlaviyoCredential.bearer)
        }
    }

    /// No secrets.
    public var description: String {
        "ConnectionRecord(account: \(accountID), method: \(method.rawValue), state: \(state.rawValue), "
            + "klaviyo: \(klaviyoAccountID ?? "-"), version: \(version))"
    }
}
