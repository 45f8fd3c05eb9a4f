import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Header names and response builders shared by the handlers.
enum HTTPHelpers {
    static let revision = HTTPField.Name("revision")!
    static let retryAfter = HTTPField.Name("Retry-After")!
    static let rateLimitLimit = HTTPField.Name("RateLimit-Limit")!
    static let rateLimitRemaining = HTTPField.Name("RateLimit-Remaining")!
    static let rateLimitReset = HTTPField.Name("RateLimit-Reset")!

    /// A response with a JSON body (or no body when `body` is nil).
    static func response(
        status: Int, body: JSONValue?, contentType: String = "application/vnd.api+json",
        headers extra: HTTPFields = [:]
    ) -> Response {
        var headers = extra
        guard let body else {
            return Response(status: .init(code: status), headers: headers)
        }
        headers[.contentType] = contentType
        let bytes = body.serialized()
        return Response(
            status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// A JSON:API response with an already serialized body.
    static func response(status: Int, bytes: [UInt8], headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/vnd.api+json"
        return Response(
            status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// Splits a raw query string into decoded name/value pairs (`+` means space, as in Klaviyo's Django stack).
    static func queryItems(_ query: String?) -> [(String, String)] {
        guard let query, !query.isEmpty else { return [] }
        return query.split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                let spaced = s.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            return (decode(kv[0]), kv.count > 1 ? decode(kv[1]) : "")
        }
    }

    /// Whether a Content-Type is one Klaviyo accepts for JSON:API bodies.
    static func isAcceptedContentType(_ value: String?) -> Bool {
        guard let value else { return false }
        let parts = value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard let media = parts.first, media == "application/vnd.api+json" || media == "application/json" else {
            return false
        }
        for param in parts.dropFirst() where !param.isEmpty {
            guard param == "charset=utf-8" || param == "charset=\"utf-8\"" else { return false }
        }
        return true
    }

    /// Whether a `revision` header is a valid `YYYY-MM-DD` or `YYYY-MM-DD.pre` date.
    static func isValidRevision(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard bytes.count >= 10 else { return false }
        for (i, b) in bytes.prefix(10).enumerated() {
            if i == 4 || i == 7 {
                if b != UInt8(ascii: "-") { return false }
            } else if !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) {
                return false
            }
        }
        let month = Int(value.dropFirst(5).prefix(2)) ?? 0
        let day = Int(value.dropFirst(8).prefix(2)) ?? 0
        guard (1...12).contains(month), (1...31).contains(day) else { return false }
        let suffix = value.dropFirst(10)
        return suffix.isEmpty || suffix == ".pre"
    }
}
