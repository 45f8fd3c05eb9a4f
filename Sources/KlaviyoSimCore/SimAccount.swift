/// A simulated Klaviyo account as configured through the admin API or `--seed-account`.
public struct SimAccount: Sendable, Equatable {
    /// Every scope of revision 2025-10-15 (Klaviyo's OAuth scopes): the default for accounts without explicit scopes.
    public static let allScopes: [String] = [
        "accounts:read", "campaigns:read", "campaigns:write", "catalogs:read", "catalogs:write",
        "conversations:read", "conversations:write", "coupon-codes:read", "coupon-codes:write", "coupons:read",
        "coupons:write", "custom-objects:read", "custom-objects:write", "data-privacy:read", "data-privacy:write",
        "events:read", "events:write", "flows:read", "flows:write", "forms:read", "forms:write", "images:read",
        "images:write", "lists:read", "lists:write", "metrics:read", "metrics:write", "profiles:read",
        "profiles:write", "push-tokens:read", "push-tokens:write", "reviews:read", "reviews:write", "segments:read",
        "segments:write", "subscriptions:read", "subscriptions:write", "tags:read", "tags:write", "templates:read",
        "templates:write", "tracking-settings:read", "tracking-settings:write", "web-feeds:read", "web-feeds:write",
        "webhooks:read", "webhooks:write",
    ]

    /// The relay's account id (admin API key), e.g. `acct_1`.
    public var accountId: String
    /// Private API key, `pk_…`.
    public var apiKey: String
    /// Organization name.
    public var name: String
    /// Scopes of the private key.
    public var scopes: Set<String>
    /// Klaviyo's own 6-character account id.
    public var klaviyoAccountId: String
    /// Public (site) API key, 6 characters.
    public var publicApiKey: String

    /// Creates an account; Klaviyo ids are generated when not given.
    public init(
        accountId: String, apiKey: String, name: String, scopes: Set<String>? = nil,
        klaviyoAccountId: String? = nil, publicApiKey: String? = nil
    ) {
        self.accountId = accountId
        self.apiKey = apiKey
        self.name = name
        self.scopes = scopes ?? Set(Self.allScopes)
        self.klaviyoAccountId = klaviyoAccountId ?? SimIdentifiers.short()
        self.publicApiKey = publicApiKey ?? SimIdentifiers.short()
    }
}
