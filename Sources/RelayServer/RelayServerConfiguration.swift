public import Relay

/// The settings of `serve`'s public port (README, "Configuration"), read from ``RelayConfiguration`` by the executable.
public struct RelayServerConfiguration: Sendable {
    /// Interface to bind; `0.0.0.0` (all interfaces).
    public var host = "0.0.0.0"
    /// Public port (`RELAY_HTTP_PORT`, default 8080; 0 picks a free port).
    public var port = 8080
    /// Bearer token of the JSON API (`RELAY_API_TOKEN`); nil refuses every call with 401.
    public var apiToken: String?
    /// HMAC key of the signed browser links (`RELAY_LINK_SECRET`); nil refuses every link.
    public var linkSecret: String?
    /// URL prefixes a link's `return_to` must start with (`RELAY_RETURN_TO_ALLOWLIST`).
    public var returnToAllowlist: [String] = []
    /// The longest lifetime a signed link may have (`RELAY_LINK_MAX_TTL`, default 1h).
    public var linkMaxTTL: Duration = SignedLink.defaultMaxLifetime

    /// The defaults: all interfaces, port 8080, no API token, no link secret, no allowed return URL.
    public init() {}

    /// The public port's settings of a relay configuration, listening on `port`.
    public init(_ configuration: RelayConfiguration, port: Int) {
        self.port = port
        apiToken = configuration.apiToken
        linkSecret = configuration.linkSecret
        returnToAllowlist = configuration.returnToAllowlist
        linkMaxTTL = configuration.linkMaxTTL
    }
}
