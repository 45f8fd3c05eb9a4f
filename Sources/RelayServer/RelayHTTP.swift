import Foundation
import Hummingbird
import Klaviyo
import Relay

/// The routes of `serve`'s public port: the JSON API (`RelayHTTP+JSONAPI.swift`), the signed browser entry points
/// (`+OAuth`, `+Settings`), `/healthz` and `/readyz` (metrics live on the internal port, see ``HealthServer``),
/// every answer with ``SecurityHeaders``.
struct RelayHTTP: Sendable {
    let configuration: RelayServerConfiguration
    let dependencies: RelayServerDependencies

    /// The router with every route of the public port.
    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: SecurityHeaders(logger: dependencies.logger))
        HealthServer.addRoutes(to: router, registry: nil, amqp: dependencies.amqp, redis: dependencies.redis)
        let api = self
        router.post("/v1/accounts/:account_id/connection/api-key") { request, context in
            try await api.apiConnectAPIKey(request, context)
        }
        router.get("/v1/accounts/:account_id/connection") { request, context in
            try await api.apiStatus(request, context)
        }
        router.delete("/v1/accounts/:account_id/connection") { request, context in
            try await api.apiDisconnect(request, context)
        }
        router.get("/oauth/klaviyo/start") { request, _ in await api.oauthStart(request) }
        router.get("/oauth/klaviyo/callback") { request, _ in await api.oauthCallback(request) }
        router.get("/settings/klaviyo") { request, _ in await api.settingsPage(request) }
        router.post("/settings/klaviyo/api-key") { request, _ in await api.settingsAPIKey(request) }
        router.post("/settings/klaviyo/disconnect") { request, _ in await api.settingsDisconnect(request) }
        return router
    }

    // MARK: JSON API

    func authorized(_ request: Request) -> Bool {
        guard let token = configuration.apiToken, !token.isEmpty,
            let header = request.headers[.authorization], header.hasPrefix("Bearer ")
        else { return false }
        return constantTimeEquals(String(header.dropFirst("Bearer ".count)), token)
    }

    /// A JSON answer; never cached (it describes one account's connection, or refuses a call).
    func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: value.jsonBytes())))
    }

    func jsonError(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> Response {
        json(status, ["error": ["code": .string(code), "message": .string(message)]])
    }

    func accountParameter(_ context: BasicRequestContext) -> String? {
        guard let account = context.parameters.get("account_id"), !account.isEmpty, account.count <= 128,
            account.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) })
        else { return nil }
        return account
    }

    var unauthorized: Response {
        var response = jsonError(
            .unauthorized, "unauthorized", "a valid Authorization: Bearer <RELAY_API_TOKEN> is required")
        response.headers[.wwwAuthenticate] = "Bearer"
        return response
    }

    // MARK: Browser

    func signedLink(
        _ action: SignedLink.Action, _ parameters: [String: String]
    ) throws(SignedLink.Refusal)
        -> SignedLink
    {
        try SignedLink.verify(
            action: action, accountID: parameters["account_id"], returnTo: parameters["return_to"],
            expires: parameters["expires"], signature: parameters["sig"], secret: configuration.linkSecret,
            allowlist: configuration.returnToAllowlist, maxLifetime: configuration.linkMaxTTL)
    }

    func query(_ request: Request) -> [String: String] {
        var result: [String: String] = [:]
        for (name, value) in request.uri.queryParameters { result[String(name)] = String(value) }
        // Hummingbird decodes percent escapes already; `+` is a space in form-style queries.
        return result
    }

    func form(_ request: Request) async -> [String: String] {
        guard let body = try? await request.body.collect(upTo: 64 * 1024) else { return [:] }
        var result: [String: String] = [:]
        let text = body.getString(at: body.readerIndex, length: body.readableBytes) ?? ""
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                (String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding) ?? ""
            }
            result[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return result
    }

    func refusalPage(_ refusal: SignedLink.Refusal) -> Response {
        HTMLPage.response(
            status: refusal.status == 400 ? .badRequest : .forbidden, title: "Link refused",
            body: "<p class=\"error\">\(HTMLPage.escape(refusal.description))</p><p>Nothing was changed.</p>")
    }
}
