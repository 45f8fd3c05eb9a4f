/// A complete HTTP response, whatever its status.
public struct HTTPResponse: Sendable {
    /// The status code, e.g. 200 or 429.
    public var status: Int
    /// The header fields of the final response (interim `1xx` blocks are dropped).
    public var headers: HTTPHeaders
    /// The body bytes (content encodings are not decoded).
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, headers: HTTPHeaders, body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The body decoded as UTF-8 (invalid sequences are replaced by U+FFFD).
    public var bodyString: String { String(decoding: body, as: UTF8.self) }
}
