/// Everything the simulated OAuth server knows, kept inside one mutex in ``OAuthServer``.
struct OAuthState: Sendable {
    /// An issued authorization code (single use, 5 minutes).
    struct PendingCode: Sendable {
        var clientId: String
        var accountId: String
        var redirectURI: String
        var scopes: Set<String>
        var codeChallenge: String
        var expiresAt: ContinuousClock.Instant
    }

    /// One installation of an app in an account, with its live tokens.
    struct Install: Sendable {
        var id: String
        var clientId: String
        var accountId: String
        var scopes: Set<String>
        var refreshTokens: Set<String> = []
        var accessTokens: Set<String> = []
    }

    var apps: [String: OAuthApp] = [:]
    var loginAccountId: String?
    var codes: [String: PendingCode] = [:]
    var installs: [String: Install] = [:]  // by install id
    var installByClientAndAccount: [String: String] = [:]  // "client|account" → install id
    var refreshTokens: [String: String] = [:]  // refresh token → install id
    var rotateRefreshTokens = false
    /// Delay added to every `/oauth/token` answer (after the tokens are issued), for tests of stalled refreshers.
    var tokenLatency: Duration = .zero
    /// `expires_in` that token answers state instead of the real lifetime (a JSON number, e.g. `1e20`), for tests
    /// of clients fed absurd numbers; the token itself still expires after the real lifetime. `nil`: the truth.
    var advertisedExpiresIn: JSONValue?
    /// Settings of one OAuth app (`PUT /_sim/oauth/settings` with `client_id`) that override the global ones for
    /// that app only, so a test can change them without touching other tests that share the simulator.
    var clientSettings: [String: ClientSettings] = [:]

    /// Per-app overrides (nil: the global setting applies).
    struct ClientSettings: Sendable {
        var rotateRefreshTokens: Bool?
        var tokenLatency: Duration?
    }

    /// Whether refresh tokens rotate for an app.
    func rotates(for clientId: String) -> Bool {
        clientSettings[clientId]?.rotateRefreshTokens ?? rotateRefreshTokens
    }

    /// The delay of an app's token answers.
    func tokenLatency(for clientId: String?) -> Duration {
        clientId.flatMap { clientSettings[$0]?.tokenLatency } ?? tokenLatency
    }
}
