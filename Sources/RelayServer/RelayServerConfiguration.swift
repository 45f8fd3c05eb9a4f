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
    /// How long a connection may stay idle before the server closes it (``defaultIdleTimeout``; tests shorten it).
    public var idleTimeout: Duration = RelayServerConfiguration.defaultIdleTimeout

    /// How long a request may take to arrive in full, from its head to the end of its body (``defaultRequestTimeout``;
    /// tests shorten it).
    public var requestTimeout: Duration = RelayServerConfiguration.defaultRequestTimeout

    /// 15 s: a request whose body is still arriving this long after its head is cut off and its connection
    /// closed. The idle timeout alone does not end it: every fragment of a body sent a byte at a time restarts
    /// it, so a client could hold a connection for days (a 64 kB body at a byte every 5 s) and, with enough of
    /// them, every socket of the process. The largest body `serve` takes (64 kB) arrives in milliseconds.
    public static let defaultRequestTimeout: Duration = .seconds(15)

    /// 30 s: a connection with no request being read or answered for this long is closed, so clients that open
    /// connections and send nothing (or stop halfway through a request's head) cannot hold sockets and memory
    /// indefinitely. Longer than any load balancer's usual keep-alive probe interval, far shorter than a slow
    /// request: a request being answered (a Klaviyo call, a revoke) is never cut.
    public static let defaultIdleTimeout: Duration = .seconds(30)

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
