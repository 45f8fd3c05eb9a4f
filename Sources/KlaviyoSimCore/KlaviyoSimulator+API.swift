import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One authenticated, validated API call as the operation handlers see it.
struct APICall: Sendable {
    let operation: KlaviyoOperation
    let parameters: [String]
    let caller: AuthenticatedCaller
    let body: JSONValue?
    let query: [(String, String)]
    let rawQuery: String
    /// `http://host:port`, for `links`.
    let base: String
}

/// A handler's successful answer.
struct APIResult: Sendable {
    var status: Int
    var body: JSONValue?
    /// Pre-serialized body, used instead of `body` when set (hot paths).
    var rawBody: [UInt8]? = nil
}

extension KlaviyoSimulator {
    /// The pipeline for every non-admin request: route → revision → auth/scope → rate limit → faults → latency
    /// → media type/body validation → handler. Records the request and counts it.
    func handleAPI(_ request: Request, context: SimRequestContext) async -> Response {
        let method = request.method.rawValue
        let path = request.uri.path
        let rawQuery = request.uri.query ?? ""
        var bodyBytes: [UInt8] = []
        var tooLarge = false
        var req = request
        do {
            let buffer = try await req.collectBody(upTo: context.maxUploadSize)
            bodyBytes = Array(buffer.readableBytesView)
        } catch {
            tooLarge = true
        }
        let parsedBody: JSONValue? = bodyBytes.isEmpty ? nil : try? JSONValue.parse(bodyBytes)

        var operationName = "unmatched"
        var accountId: String?
        var status: Int
        let response: Response
        if tooLarge {
            let e = KlaviyoAPIError(
                status: 413, code: "request_too_large", title: "Request entity too large.",
                detail: "The request payload exceeds 5 MB.")
            status = 413
            response = HTTPHelpers.response(status: 413, body: e.body)
        } else {
            switch router.match(method: method, path: path) {
            case .notFound:
                let e = KlaviyoAPIError.notFound("The requested URL was not found.")
                status = e.status
                response = HTTPHelpers.response(status: e.status, body: e.body)
            case .methodNotAllowed:
                let e = KlaviyoAPIError.methodNotAllowed(method)
                status = e.status
                response = HTTPHelpers.response(status: e.status, body: e.body)
            case .operation(let op, let parameters):
                operationName = op.displayName
                (status, response, accountId) = await execute(
                    op, parameters: parameters, request: request, context: context, rawQuery: rawQuery,
                    bodyBytes: bodyBytes, parsedBody: parsedBody)
            }
        }
        stats.count(operation: operationName, status: status)
        var headers: [String: String] = [:]
        for (name, field) in [
            ("revision", HTTPHelpers.revision), ("content-type", .contentType), ("accept", .accept),
            ("user-agent", .userAgent),
        ] {
            if let v = request.headers[field] { headers[name] = v }
        }
        if let auth = request.headers[.authorization] { headers["authorization"] = RequestRecorder.redact(auth) }
        recorder.record(
            .init(
                seq: 0, method: method, path: path, query: rawQuery, headers: headers,
                body: parsedBody ?? (bodyBytes.isEmpty ? nil : .string(String(decoding: bodyBytes, as: UTF8.self))),
                status: status, accountId: accountId))
        return response
    }

    /// Runs one matched operation. Returns the status (0 for a dropped connection), response and account id.
    func execute(
        _ op: KlaviyoOperation, parameters: [String], request: Request, context: SimRequestContext,
        rawQuery: String, bodyBytes: [UInt8], parsedBody: JSONValue?
    ) async -> (Int, Response, String?) {
        func fail(
            _ e: KlaviyoAPIError, _ accountId: String? = nil, headers: HTTPFields = [:]
        ) -> (Int, Response, String?) {
            (e.status, HTTPHelpers.response(status: e.status, body: e.body, headers: headers), accountId)
        }
        guard implemented.contains(op.operationId) else {
            return fail(.notFound("\(op.displayName) (\(op.operationId)) is not implemented by klaviyo-sim."))
        }
        guard let revision = request.headers[HTTPHelpers.revision] else {
            return fail(.invalid("The 'revision' header is required.", parameter: "revision"))
        }
        guard HTTPHelpers.isValidRevision(revision) else {
            return fail(
                .invalid(
                    "'\(revision)' is not a valid revision. Expected format: YYYY-MM-DD[.suffix].",
                    parameter: "revision"))
        }
        let now = ContinuousClock.now
        let caller: AuthenticatedCaller
        switch registry.authenticate(request.headers[.authorization], now: now) {
        case .failure(let e): return fail(e)
        case .success(let c): caller = c
        }
        let accountId = caller.box.accountId
        guard op.scopes.allSatisfy(caller.scopes.contains) else { return fail(.permissionDenied, accountId) }

        var rateHeaders: HTTPFields = [:]
        if settings.withLock({ $0.rateLimitsEnabled }) {
            switch rateLimiter.acquire(op, caller: caller, now: now) {
            case .allowed(let limit, let remaining, let reset):
                rateHeaders[HTTPHelpers.rateLimitLimit] = String(limit)
                rateHeaders[HTTPHelpers.rateLimitRemaining] = String(remaining)
                rateHeaders[HTTPHelpers.rateLimitReset] = String(reset)
            case .throttled(let retryAfter):
                var h = HTTPFields()
                h[HTTPHelpers.retryAfter] = String(retryAfter)
                return fail(.throttled(retryAfter: retryAfter), accountId, headers: h)
            }
        }

        // Faults: decided before any state change.
        var extraLatency = settings.withLock { $0.latency }
        var failAfterApply = false
        if let fault = faults.withLock({ $0 }), fault.applies(accountId: accountId, path: request.uri.path) {
            if fault.latencyMs > 0 || fault.latencyJitterMs > 0 {
                extraLatency += .milliseconds(fault.latencyMs + Int.random(in: 0...fault.latencyJitterMs))
            }
            if fault.resetRate > 0, Double.random(in: 0..<1) < fault.resetRate {
                await Self.resetConnection(context.channel)
                return (0, Response(status: .internalServerError), accountId)
            }
            if fault.timeoutRate > 0, Double.random(in: 0..<1) < fault.timeoutRate {
                try? await Task.sleep(for: .milliseconds(fault.timeoutMs))
                return fail(.injected(status: 504), accountId)
            }
            if fault.throttleRate > 0, Double.random(in: 0..<1) < fault.throttleRate {
                var h = HTTPFields()
                h[HTTPHelpers.retryAfter] = String(fault.retryAfterSeconds)
                return fail(.throttled(retryAfter: fault.retryAfterSeconds), accountId, headers: h)
            }
            if fault.errorRate > 0, Double.random(in: 0..<1) < fault.errorRate {
                return fail(
                    .injected(status: fault.errorStatuses.randomElement() ?? 500), accountId, headers: rateHeaders)
            }
            failAfterApply = fault.failAfterApplyRate > 0 && Double.random(in: 0..<1) < fault.failAfterApplyRate
        }
        if extraLatency > .zero { try? await Task.sleep(for: extraLatency) }

        if let validator = validators[op.operationId] {
            guard !bodyBytes.isEmpty else {
                return fail(.invalid("A request body is required.", pointer: "/data"), accountId, headers: rateHeaders)
            }
            let contentType = request.headers[.contentType]
            guard HTTPHelpers.isAcceptedContentType(contentType) else {
                return fail(.unsupportedMediaType(contentType ?? ""), accountId, headers: rateHeaders)
            }
            // Compressed bodies are not decoded: a Content-Encoding other than identity is a 415, as on Klaviyo.
            if let encoding = request.headers[.contentEncoding], encoding.lowercased() != "identity" {
                return fail(.unsupportedMediaType("Content-Encoding: \(encoding)"), accountId, headers: rateHeaders)
            }
            guard let body = parsedBody else {
                return fail(.invalid("JSON parse error.", pointer: "/"), accountId, headers: rateHeaders)
            }
            if let failure = validator.validate(body) {
                return fail(.invalid(failure.detail, pointer: failure.pointer), accountId, headers: rateHeaders)
            }
        }

        let call = APICall(
            operation: op, parameters: parameters, caller: caller, body: parsedBody,
            query: HTTPHelpers.queryItems(rawQuery), rawQuery: rawQuery,
            base: "http://\(request.head.authority ?? "\(configuration.host):\(configuration.port)")")
        do {
            let result = try perform(call)
            if failAfterApply { return fail(.injected(status: 500), accountId, headers: rateHeaders) }
            if let raw = result.rawBody {
                return (
                    result.status, HTTPHelpers.response(status: result.status, bytes: raw, headers: rateHeaders),
                    accountId
                )
            }
            return (
                result.status, HTTPHelpers.response(status: result.status, body: result.body, headers: rateHeaders),
                accountId
            )
        } catch {
            return fail(error, accountId, headers: rateHeaders)
        }
    }

    /// Drops the connection with a TCP reset (SO_LINGER 0), so the client sees "connection reset" / empty reply.
    static func resetConnection(_ channel: any Channel) async {
        if let socket = channel as? any SocketOptionProvider {
            try? await socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        }
        try? await channel.close().get()
    }
}
