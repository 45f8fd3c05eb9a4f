/// An OAuth app registered with the simulator (`POST /_sim/oauth/apps`), as if created at klaviyo.com/oauth/client.
public struct OAuthApp: Sendable, Equatable {
    /// Public client id.
    public var clientId: String
    /// Client secret for HTTP Basic client authentication.
    public var clientSecret: String
    /// Allowlisted redirect URIs (exact match).
    public var redirectURIs: [String]
    /// Scopes configured on the app; an authorize request may ask only for these.
    public var scopes: Set<String>

    /// Creates an app.
    public init(clientId: String, clientSecret: String, redirectURIs: [String], scopes: Set<String>) {
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.redirectURIs = redirectURIs
        self.scopes = scopes
    }
}
