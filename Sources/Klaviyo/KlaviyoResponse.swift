/// A successful (2xx) Klaviyo response.
public struct KlaviyoResponse: Sendable {
    /// HTTP status (200, 201, 202 or 204).
    public var status: Int
    /// The JSON:API document, or nil for an empty body (202/204).
    public var document: JSONValue?
    /// `RateLimit-Remaining` of the steady window, when present.
    public var rateLimitRemaining: Int?
    /// `RateLimit-Reset` in seconds, when present.
    public var rateLimitReset: Int?

    /// Creates a response.
    public init(status: Int, document: JSONValue?, rateLimitRemaining: Int? = nil, rateLimitReset: Int? = nil) {
        self.status = status
        self.document = document
        self.rateLimitRemaining = rateLimitRemaining
        self.rateLimitReset = rateLimitReset
    }

    /// `data` of the document.
    public var data: JSONValue? { document?["data"] }
}
