/// The one error type thrown by ``HTTPClient``. A response with a non-2xx status is not an error.
public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    /// An extensible error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's stable name, e.g. `"timeout"`.
        public let name: String

        private init(_ name: String) { self.name = name }

        /// The URL is malformed or not `http`/`https`.
        public static let invalidURL = Code("invalidURL")
        /// The host name did not resolve or the connection was refused: nothing was sent.
        public static let couldNotConnect = Code("couldNotConnect")
        /// The connection (TCP or TLS) was not established in time: nothing was sent.
        public static let connectTimeout = Code("connectTimeout")
        /// The request did not complete in time; it may have been processed.
        public static let timeout = Code("timeout")
        /// The connection broke while sending or receiving.
        public static let connectionReset = Code("connectionReset")
        /// The TLS handshake or certificate verification failed.
        public static let tls = Code("tls")
        /// The response body exceeded ``HTTPClientConfiguration/maxResponseBodyBytes``.
        public static let responseTooLarge = Code("responseTooLarge")
        /// The calling task was cancelled.
        public static let cancelled = Code("cancelled")
        /// The client has been shut down.
        public static let shutdown = Code("shutdown")
        /// Any other libcurl failure (see ``HTTPClientError/curlCode``).
        public static let transport = Code("transport")

        /// The code's name.
        public var description: String { name }
    }

    /// What went wrong.
    public var code: Code
    /// A human readable description.
    public var message: String
    /// libcurl's `CURLcode`, when libcurl reported the failure.
    public var curlCode: Int?
    /// The underlying error, if any.
    public var underlying: (any Error & Sendable)?
    /// Whether the same request may succeed if tried again later.
    public var isRetriable: Bool
    /// `false` only when it is known that nothing reached the server (DNS failure, refused connection, connect
    /// timeout, TLS handshake failure, invalid URL): then even a non-idempotent request is safe to retry.
    public var requestMayHaveBeenSent: Bool

    /// Creates an error.
    public init(
        code: Code, message: String, curlCode: Int? = nil, underlying: (any Error & Sendable)? = nil,
        isRetriable: Bool, requestMayHaveBeenSent: Bool
    ) {
        self.code = code
        self.message = message
        self.curlCode = curlCode
        self.underlying = underlying
        self.isRetriable = isRetriable
        self.requestMayHaveBeenSent = requestMayHaveBeenSent
    }

    /// `HTTPClientError(code, curl: n, retriable: …, mayHaveBeenSent: …): message`.
    public var description: String {
        var text = "HTTPClientError(\(code)"
        if let curlCode { text += ", curl: \(curlCode)" }
        text += ", retriable: \(isRetriable), mayHaveBeenSent: \(requestMayHaveBeenSent)): \(message)"
        return text
    }
}

extension HTTPClientError {
    static func cancelled(sent: Bool) -> HTTPClientError {
        HTTPClientError(
            code: .cancelled, message: "the request was cancelled", isRetriable: false, requestMayHaveBeenSent: sent)
    }

    static func shutdown(sent: Bool) -> HTTPClientError {
        HTTPClientError(
            code: .shutdown, message: "the HTTP client has been shut down", isRetriable: false,
            requestMayHaveBeenSent: sent)
    }
}
