/// An HTTP request as the Klaviyo client hands it to its transport.
public struct KlaviyoHTTPRequest: Sendable {
    /// HTTP method (`GET`, `POST`, `PATCH`, `DELETE`).
    public var method: String
    /// Absolute URL.
    public var url: String
    /// Header fields in order.
    public var headers: [(name: String, value: String)]
    /// Request body, if any.
    public var body: [UInt8]?
    /// Longest the whole exchange may take (nil: the transport's own timeout).
    public var timeout: Duration?

    /// Creates a request.
    public init(
        method: String, url: String, headers: [(name: String, value: String)], body: [UInt8]?,
        timeout: Duration? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// An HTTP response as a transport returns it.
public struct KlaviyoHTTPResponse: Sendable {
    /// Status code.
    public var status: Int
    /// Header fields; names compared case-insensitively by ``header(_:)``.
    public var headers: [(name: String, value: String)]
    /// Body bytes.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of a header, compared case-insensitively.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name.lowercased() == lowered }?.value
    }
}

/// A failure below HTTP: the request got no response.
public struct KlaviyoTransportFailure: Error, Sendable {
    /// Human-readable reason, without secrets.
    public var message: String
    /// Whether retrying may succeed.
    public var isRetriable: Bool
    /// `false` only when nothing can have reached the server (connect failure).
    public var requestMayHaveBeenSent: Bool
    /// `true` when the failure was a timeout.
    public var isTimeout: Bool

    /// Creates a transport failure.
    public init(message: String, isRetriable: Bool, requestMayHaveBeenSent: Bool, isTimeout: Bool = false) {
        self.message = message
        self.isRetriable = isRetriable
        self.requestMayHaveBeenSent = requestMayHaveBeenSent
        self.isTimeout = isTimeout
    }
}

/// What sends Klaviyo's HTTP requests: libcurl in production, a test double in unit tests.
///
/// Implementations throw ``KlaviyoTransportFailure`` when no response was received.
public protocol KlaviyoTransport: Sendable {
    /// Sends one request and returns the response, whatever its status.
    func send(_ request: KlaviyoHTTPRequest) async throws(KlaviyoTransportFailure) -> KlaviyoHTTPResponse
}
