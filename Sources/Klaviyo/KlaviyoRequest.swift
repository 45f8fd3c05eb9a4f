/// One call to a Klaviyo API operation, before credentials are attached.
public struct KlaviyoRequest: Sendable {
    /// The spec's `operationId` (e.g. `create_or_update_profile`): names the rate-limit bucket and metrics.
    public var operationID: String
    /// HTTP method.
    public var method: String
    /// Path below the base URL, e.g. `/api/profiles/01H…`.
    public var path: String
    /// Query parameters in order (names such as `filter` or `page[size]`, values unescaped).
    public var query: [(name: String, value: String)]
    /// JSON:API request document, if the operation takes one.
    public var body: JSONValue?
    /// Whether repeating the call after an ambiguous failure is harmless (upserts, reads, PATCH, events
    /// that carry a `unique_id`). Non-idempotent calls are only retried when nothing reached Klaviyo.
    public var isIdempotent: Bool
    /// The parts of a 2xx answer's document the caller reads (``KlaviyoResponse/document`` holds only those):
    /// an upsert reads `data.id` of a profile whose attributes it sent.
    public var responseProjection: JSONProjection = .all

    /// Creates a request.
    public init(
        operationID: String, method: String, path: String, query: [(name: String, value: String)] = [],
        body: JSONValue? = nil, isIdempotent: Bool
    ) {
        self.operationID = operationID
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.isIdempotent = isIdempotent
    }

    /// `METHOD /path` without the query, for logs and metrics.
    public var summary: String { "\(method) \(path)" }

    /// The query string, percent-encoded (without the leading `?`).
    public var encodedQuery: String {
        query.map { "\(Self.percentEncode($0.name))=\(Self.percentEncode($0.value))" }.joined(separator: "&")
    }

    /// Percent-encodes everything except RFC 3986 unreserved characters.
    public static func percentEncode(_ string: String) -> String {
        var result = ""
        result.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                result.unicodeScalars.append("%")
                result.unicodeScalars.append(hex[Int(byte >> 4)])
                result.unicodeScalars.append(hex[Int(byte & 0x0F)])
            }
        }
        return result
    }
}
