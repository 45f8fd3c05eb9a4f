import Foundation
public import Logging
import Tracing

/// Typed client for Klaviyo's REST API, revision 2025-10-15.
///
/// It adds the required headers (`revision`, JSON:API `Accept`/`Content-Type`, `User-Agent`,
/// `Authorization`), encodes JSON:API documents, decodes Klaviyo's errors (also HTML bodies from
/// Cloudflare) and classifies failures for retrying. It never retries by itself: retry policy belongs to
/// the caller, which knows the command and its budget.
public struct KlaviyoClient: Sendable {
    /// Base URL, e.g. `https://a.klaviyo.com` or a local `klaviyo-sim`.
    public let baseURL: String
    /// The HTTP transport.
    public let transport: any KlaviyoTransport
    /// `User-Agent` header value.
    public let userAgent: String
    /// Admits each call before it is sent (nil: every call is sent at once).
    public private(set) var gate: (any KlaviyoCallGate)?
    let logger: Logger

    /// Creates a client.
    public init(baseURL: String, transport: any KlaviyoTransport, userAgent: String, logger: Logger) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.transport = transport
        self.userAgent = userAgent
        self.logger = logger
    }

    /// A copy of this client whose calls are first admitted by `gate` (it replaces any earlier gate).
    public func gated(by gate: any KlaviyoCallGate) -> KlaviyoClient {
        var copy = self
        copy.gate = gate
        return copy
    }

    /// Builds the HTTP request for a call (exposed for contract tests).
    public func httpRequest(
        for request: KlaviyoRequest, credential: KlaviyoCredential
    ) throws(KlaviyoError)
        -> KlaviyoHTTPRequest
    {
        var url = baseURL + request.path
        if !request.query.isEmpty { url += "?" + request.encodedQuery }
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(5)  // one allocation, with room for Content-Type
        headers.append(("Authorization", credential.authorizationHeader))
        headers.append(("revision", KlaviyoAPI.revision))
        headers.append(("Accept", KlaviyoAPI.mediaType))
        headers.append(("User-Agent", userAgent))
        var body: [UInt8]?
        if let document = request.body {
            let bytes = document.jsonBytes()
            guard bytes.count <= KlaviyoAPI.maxPayloadBytes else {
                throw KlaviyoError(
                    code: .invalidRequest, operationID: request.operationID,
                    message: "request body of \(bytes.count) bytes exceeds Klaviyo's 5 MB limit",
                    requestMayHaveBeenSent: false)
            }
            headers.append(("Content-Type", KlaviyoAPI.mediaType))
            body = bytes
        }
        return KlaviyoHTTPRequest(method: request.method, url: url, headers: headers, body: body)
    }

    /// Sends one call and returns the 2xx response, or throws a classified ``KlaviyoError``.
    public func send(
        _ request: KlaviyoRequest, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> KlaviyoResponse
    {
        var http = try httpRequest(for: request, credential: credential)
        if let gate {
            let wait = startSpan("relay.rate_limit.wait")
            wait.attributes["klaviyo.operation"] = request.operationID
            defer { wait.end() }
            do {
                try await gate.admit(operationID: request.operationID, credential: credential)
            } catch {
                wait.attributes["relay.rate_limit.held_back"] = true
                throw error
            }
        }
        let span = startSpan("klaviyo.\(request.operationID)", ofKind: .client)
        defer { span.end() }
        if span.isRecording {  // setting an attribute builds a dictionary even on a span that drops it
            span.attributes["klaviyo.operation"] = request.operationID
            span.attributes["http.request.method"] = request.method
            span.attributes["url.path"] = request.path
        }
        http.injectTraceContext(of: span)
        let started = ContinuousClock.now
        let response: KlaviyoHTTPResponse
        do {
            response = try await transport.send(http)
        } catch {
            span.attributes["error.type"] = error.isTimeout ? "timeout" : "network"
            span.setStatus(SpanStatus(code: .error, message: error.message))
            KlaviyoCallMetrics.record(
                operationID: request.operationID, status: error.isTimeout ? .timeout : .network,
                elapsed: ContinuousClock.now - started)
            logger.debug(
                "klaviyo call failed in transport",
                metadata: ["klaviyo.operation": "\(request.operationID)", "error": "\(error.message)"])
            throw KlaviyoError(
                code: .transport, operationID: request.operationID, message: error.message,
                requestMayHaveBeenSent: error.requestMayHaveBeenSent, usedOAuth: credential.isOAuth)
        }
        let elapsed = ContinuousClock.now - started
        if span.isRecording { span.attributes["http.response.status_code"] = response.status }
        if response.status >= 400 { span.setStatus(SpanStatus(code: .error)) }
        KlaviyoCallMetrics.record(
            operationID: request.operationID, status: .init(status: response.status), elapsed: elapsed)
        logger.debug(
            "klaviyo call",
            metadata: [
                "klaviyo.operation": "\(request.operationID)", "http.status": "\(response.status)",
                "duration_ms": "\(elapsed.milliseconds)",
            ])
        do {
            return try Self.interpret(
                response, operationID: request.operationID, usedOAuth: credential.isOAuth,
                keeping: request.responseProjection)
        } catch {
            if error.code == .throttled, let retryAfter = error.retryAfter {
                KlaviyoCallMetrics.recordRetryAfter(operationID: request.operationID, retryAfter)
                await gate?.throttled(operationID: request.operationID, retryAfter: retryAfter)
            }
            throw error
        }
    }

    /// Turns an HTTP response into a ``KlaviyoResponse`` or a classified ``KlaviyoError``.
    public static func interpret(
        _ response: KlaviyoHTTPResponse, operationID: String, usedOAuth: Bool, keeping projection: JSONProjection = .all
    )
        throws(KlaviyoError) -> KlaviyoResponse
    {
        if (200..<300).contains(response.status) {
            var document: JSONValue?
            if !response.body.isEmpty {
                do {
                    document = try JSONValue.parse(response.body, keeping: projection)
                } catch {
                    throw KlaviyoError(
                        code: .invalidResponse, status: response.status, operationID: operationID,
                        message: "response body is not JSON", usedOAuth: usedOAuth)
                }
            }
            return KlaviyoResponse(
                status: response.status, document: document,
                rateLimitRemaining: response.header("RateLimit-Remaining").flatMap { Int($0) },
                rateLimitReset: response.header("RateLimit-Reset").flatMap { Int($0) })
        }
        let apiErrors = decodeErrors(response.body)
        let message: String
        if apiErrors.isEmpty {
            message = describeNonJSONBody(response)
        } else {
            message = apiErrors.map(\.summary).joined(separator: "; ")
        }
        let code: KlaviyoError.Code
        switch response.status {
        case 401: code = .unauthorized
        case 403: code = .forbidden
        case 409: code = .conflict
        case 429: code = .throttled
        case 500...599: code = .serverError
        default: code = .rejected
        }
        // Clamped to 0...1 day (Clamp.retryAfter): an absurd value must not overflow the caller's arithmetic.
        let retryAfter = response.header("Retry-After").flatMap {
            Clamp.retryAfter($0, nowEpochSeconds: Int64(Date().timeIntervalSince1970))
        }
        return try failure(
            KlaviyoError(
                code: code, status: response.status, operationID: operationID, message: message,
                apiErrors: apiErrors, retryAfter: retryAfter, usedOAuth: usedOAuth))
    }

    private static func failure(_ error: KlaviyoError) throws(KlaviyoError) -> KlaviyoResponse {
        throw error
    }

    /// Decodes `{"errors":[…]}`; returns an empty array for any other body.
    static func decodeErrors(_ body: [UInt8]) -> [KlaviyoAPIError] {
        guard let document = try? JSONValue.parse(body), let errors = document["errors"]?.arrayValue else {
            return []
        }
        return errors.compactMap { entry -> KlaviyoAPIError? in
            guard case .object = entry else { return nil }
            return try? JSONValue.decode(KlaviyoAPIError.self, from: entry)
        }
    }

    /// A short description of an error body that is not JSON:API (HTML from Cloudflare, plain text).
    static func describeNonJSONBody(_ response: KlaviyoHTTPResponse) -> String {
        let contentType = response.header("Content-Type") ?? "no content type"
        var text = String(decoding: response.body.prefix(2048), as: UTF8.self)
        // Strip tags and collapse whitespace so an HTML error page reads as one line.
        var stripped = ""
        var inTag = false
        for character in text {
            if character == "<" {
                inTag = true
            } else if character == ">" {
                inTag = false
                stripped.append(" ")
            } else if !inTag {
                stripped.append(character)
            }
        }
        text = stripped.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        if text.count > 160 { text = String(text.prefix(160)) + "…" }
        var message = "HTTP \(response.status) with a \(contentType) body"
        if response.header("cf-mitigated") != nil { message += " (Cloudflare challenge)" }
        if !text.isEmpty { message += ": \(text)" }
        return message
    }
}

extension Duration {
    /// Whole milliseconds (saturating: a duration beyond `Int64.max` milliseconds gives `Int64.max`).
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        return Clamp.sum(whole, attoseconds / 1_000_000_000_000_000)
    }
}
