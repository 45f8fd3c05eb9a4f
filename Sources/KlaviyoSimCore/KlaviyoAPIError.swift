import Foundation

/// A Klaviyo-shaped JSON:API error: `{"errors":[{"id","status","code","title","detail","source","links","meta"}]}`.
public struct KlaviyoAPIError: Error, Sendable {
    /// Where in the request the problem is.
    public enum Source: Sendable {
        /// A JSON pointer into the body, e.g. `/data/attributes/email`.
        case pointer(String)
        /// A query parameter or header name, e.g. `filter` or `revision`.
        case parameter(String)
    }

    /// HTTP status code.
    public var status: Int
    /// Machine code (`invalid`, `not_authenticated`, `throttled`, …).
    public var code: String
    /// Short title, Klaviyo's (Django REST framework's) wording.
    public var title: String
    /// Human-readable detail.
    public var detail: String
    /// Offending part of the request.
    public var source: Source?
    /// Extra members for `meta` (e.g. `duplicate_profile_id`).
    public var meta: [String: JSONValue]
    /// Members for `links`.
    public var links: [String: JSONValue]

    /// Creates an error.
    public init(
        status: Int, code: String, title: String, detail: String, source: Source? = nil,
        meta: [String: JSONValue] = [:], links: [String: JSONValue] = [:]
    ) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.source = source
        self.meta = meta
        self.links = links
    }

    /// The response body.
    public var body: JSONValue {
        var error: [String: JSONValue] = [
            "id": .string(UUID().uuidString.lowercased()),
            "status": .int(status),
            "code": .string(code),
            "title": .string(title),
            "detail": .string(detail),
            "links": .object(links),
            "meta": .object(meta),
        ]
        switch source {
        case .pointer(let p): error["source"] = ["pointer": .string(p)]
        case .parameter(let p): error["source"] = ["parameter": .string(p)]
        case nil: break
        }
        return ["errors": [.object(error)]]
    }
}

extension KlaviyoAPIError {
    /// 400 `invalid`.
    static func invalid(_ detail: String, pointer: String) -> Self {
        .init(status: 400, code: "invalid", title: "Invalid input.", detail: detail, source: .pointer(pointer))
    }

    /// 400 `invalid` about a query parameter or header.
    static func invalid(_ detail: String, parameter: String) -> Self {
        .init(status: 400, code: "invalid", title: "Invalid input.", detail: detail, source: .parameter(parameter))
    }

    /// 401 `not_authenticated`.
    static let notAuthenticated = Self(
        status: 401, code: "not_authenticated", title: "Authentication credentials were not provided.",
        detail: "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.")

    /// 401 `authentication_failed`.
    static let authenticationFailed = Self(
        status: 401, code: "authentication_failed", title: "Incorrect authentication credentials.",
        detail: "Incorrect authentication credentials.")

    /// 403 `permission_denied`.
    static let permissionDenied = Self(
        status: 403, code: "permission_denied", title: "You do not have permission to perform this action.",
        detail: "You do not have permission to perform this action.")

    /// 404 `not_found`.
    static func notFound(_ detail: String = "Not found.") -> Self {
        .init(status: 404, code: "not_found", title: "Not found.", detail: detail)
    }

    /// 405 `method_not_allowed`.
    static func methodNotAllowed(_ method: String) -> Self {
        .init(
            status: 405, code: "method_not_allowed", title: "Method \"\(method)\" not allowed.",
            detail: "Method \"\(method)\" not allowed.")
    }

    /// 415 `unsupported_media_type`.
    static func unsupportedMediaType(_ contentType: String) -> Self {
        .init(
            status: 415, code: "unsupported_media_type",
            title: "Unsupported media type \"\(contentType)\" in request.",
            detail: "Unsupported media type \"\(contentType)\" in request.")
    }

    /// 409 `duplicate_profile` with `meta.duplicate_profile_id`.
    static func duplicateProfile(_ id: String) -> Self {
        .init(
            status: 409, code: "duplicate_profile", title: "Conflict.",
            detail: "A profile already exists with one of these identifiers.", source: .pointer("/data/attributes"),
            meta: ["duplicate_profile_id": .string(id)])
    }

    /// 429 `throttled`, exactly as Klaviyo answers it.
    static func throttled(retryAfter: Int) -> Self {
        .init(
            status: 429, code: "throttled", title: "Request was throttled.",
            detail: "Request was throttled. Expected available in \(retryAfter) second\(retryAfter == 1 ? "" : "s").",
            source: .pointer("/data"),
            links: ["type": "https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling#rate-limits"])
    }

    /// An injected server error (500 `error`, 503 `service_unavailable`, other 5xx/4xx generic).
    static func injected(status: Int) -> Self {
        switch status {
        case 503:
            .init(
                status: 503, code: "service_unavailable", title: "Service temporarily unavailable, try again later.",
                detail: "Service temporarily unavailable, try again later.")
        case 504:
            .init(status: 504, code: "gateway_timeout", title: "Gateway timeout.", detail: "Gateway timeout.")
        case 500..<600:
            .init(status: status, code: "error", title: "A server error occurred.", detail: "A server error occurred.")
        default:
            .init(status: status, code: "error", title: "Error.", detail: "Injected error.")
        }
    }
}
