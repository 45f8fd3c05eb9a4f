/// Settings of an ``HTTPClient``; every property has a documented default.
public struct HTTPClientConfiguration: Sendable {
    /// Time allowed to establish the connection (TCP and TLS). Default 5 s.
    public var connectTimeout: Duration
    /// Time allowed for a whole request, connection included, unless ``HTTPRequest/timeout`` overrides it.
    /// Default 30 s.
    public var requestTimeout: Duration
    /// Maximum simultaneous connections to one host; further requests queue inside libcurl. Default 64.
    public var maxConnectionsPerHost: Int
    /// Maximum simultaneous connections overall (also the size of the idle connection cache). Default 256.
    public var maxTotalConnections: Int
    /// Whether TLS certificates and host names are verified. Default `true`: never disable it in production.
    public var verifyTLS: Bool
    /// A PEM bundle of trusted CAs; `nil` uses the system's.
    public var caBundlePath: String?
    /// The `User-Agent` header sent unless a request sets its own. Default `"klaviyo-relay"`.
    public var userAgent: String
    /// Responses with a larger body fail with `.responseTooLarge`. Default 16 MiB.
    public var maxResponseBodyBytes: Int

    /// Creates a configuration; every parameter has the documented default.
    public init(
        connectTimeout: Duration = .seconds(5), requestTimeout: Duration = .seconds(30),
        maxConnectionsPerHost: Int = 64, maxTotalConnections: Int = 256, verifyTLS: Bool = true,
        caBundlePath: String? = nil, userAgent: String = "klaviyo-relay", maxResponseBodyBytes: Int = 16 * 1024 * 1024
    ) {
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.maxConnectionsPerHost = maxConnectionsPerHost
        self.maxTotalConnections = maxTotalConnections
        self.verifyTLS = verifyTLS
        self.caBundlePath = caBundlePath
        self.userAgent = userAgent
        self.maxResponseBodyBytes = maxResponseBodyBytes
    }
}
