/// One HTTP request.
public struct HTTPRequest: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// The absolute `http://` or `https://` URL.
    public var url: String
    /// Header fields sent as given (an empty value is sent as an empty header).
    public var headers: HTTPHeaders
    /// The body; `nil` for none. Allowed with every method but `HEAD`.
    public var body: [UInt8]?
    /// Overrides ``HTTPClientConfiguration/requestTimeout`` for this request.
    public var timeout: Duration?

    /// Creates a request.
    public init(
        method: HTTPMethod = .GET, url: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8]? = nil,
        timeout: Duration? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}
