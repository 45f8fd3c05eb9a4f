import AMQP
import Foundation
import Hummingbird
import Klaviyo
import Logging
import Relay

/// The routes of `serve`'s public port: the JSON API, the signed browser entry points, `/healthz` and `/readyz`
/// (metrics live on the internal port, see ``HealthServer``), every answer with ``SecurityHeaders``.
struct RelayHTTP: Sendable {
    let runtime: Runtime
    let lifecycle: ConnectionLifecycle

    init(runtime: Runtime) {
        self.runtime = runtime
        lifecycle = runtime.connectionLifecycle()
    }

    var configuration: RelayConfiguration { runtime.configuration }

    func application(port: Int) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: SecurityHeaders())
        HealthServer.addRoutes(to: router, registry: nil, amqp: runtime.amqp, redis: runtime.redis)
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
        var appLogger = runtime.logger
        appLogger.logLevel = .warning
        return Application(
            router: router,
            configuration: .init(address: .hostname("0.0.0.0", port: port), serverName: "klaviyo-relay"),
            logger: appLogger)
    }

    /// The API-key connector of `serve`: validations limited per account.
    var apiKeyConnector: APIKeyConnector {
        APIKeyConnector(klaviyo: runtime.klaviyo, store: runtime.credentialStore, attemptLimit: .standard)
    }

    // MARK: JSON API

    func authorized(_ request: Request) -> Bool {
        guard let token = configuration.apiToken, !token.isEmpty,
            let header = request.headers[.authorization], header.hasPrefix("Bearer ")
        else { return false }
        return constantTimeEquals(String(header.dropFirst("Bearer ".count)), token)
    }

    func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
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

    func apiConnectAPIKey(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard authorized(request) else { return unauthorized }
        guard let account = accountParameter(context) else {
            return jsonError(.badRequest, "invalid_account_id", "the account id is missing or malformed")
        }
        let body = try await request.body.collect(upTo: 64 * 1024)
        guard let bytes = body.getBytes(at: body.readerIndex, length: body.readableBytes),
            let parsed = try? JSONValue.parse(bytes), let key = parsed["api_key"]?.stringValue
        else {
            return jsonError(.badRequest, "invalid_body", "send a JSON object {\"api_key\": \"pk_…\"}")
        }
        do {
            let record = try await lifecycle.connectAPIKey(accountID: account, apiKey: key, connector: apiKeyConnector)
            runtime.logger.info("connected with an API key", metadata: ["account_id": "\(record.accountID)"])
            return json(.ok, try await lifecycle.status(accountID: account))
        } catch let failure as APIKeyConnector.Failure {
            if let retryAfter = failure.retryAfter {
                var response = jsonError(.tooManyRequests, failure.code, failure.description)
                response.headers[.retryAfter] = String(retryAfter.components.seconds)
                return response
            }
            return jsonError(
                failure.isRetriable ? .serviceUnavailable : .unprocessableContent, failure.code, failure.description)
        }
    }

    /// The connection status; `"state": "reconnect_needed"` when the stored secrets cannot be read
    /// (``CredentialUnreadable``).
    func apiStatus(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard authorized(request) else { return unauthorized }
        guard let account = accountParameter(context) else {
            return jsonError(.badRequest, "invalid_account_id", "the account id is missing or malformed")
        }
        return json(.ok, try await lifecycle.status(accountID: account))
    }

    func apiDisconnect(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard authorized(request) else { return unauthorized }
        guard let account = accountParameter(context) else {
            return jsonError(.badRequest, "invalid_account_id", "the account id is missing or malformed")
        }
        do {
            let changed = try await lifecycle.disconnect(accountID: account)
            var status = try await lifecycle.status(accountID: account)
            if case .object(var fields) = status {
                fields["disconnected_now"] = .bool(changed)
                status = .object(fields)
            }
            return json(.ok, status)
        } catch let failure as ConnectionLifecycle.Failure {
            return jsonError(.serviceUnavailable, failure.code, failure.description)
        }
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

    func oauthStart(_ request: Request) async -> Response {
        let link: SignedLink
        do { link = try signedLink(.oauthStart, query(request)) } catch { return refusalPage(error) }
        guard let connector = try? runtime.oauthConnector() else {
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Klaviyo sign-in unavailable",
                body:
                    "<p class=\"error\">Connecting with Klaviyo is not configured on this server. Use an API key instead.</p>"
                    + HTMLPage.backLink(link.returnTo))
        }
        let nonce = OAuthBrowserCookie.makeNonce()
        do {
            let started = try await connector.start(
                accountID: link.accountID, returnTo: link.returnTo,
                browserBinding: OAuthConnector.browserBinding(for: nonce), linkExpires: link.expires)
            var response = Response(status: .found, headers: [.location: started.url])
            response.headers[.setCookie] = OAuthBrowserCookie.set(nonce, lifetime: connector.stateLifetime)
            return response
        } catch {
            runtime.logger.error(
                "could not start OAuth", metadata: ["account_id": "\(link.accountID)", "error": "\(error)"])
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Please try again",
                body: "<p class=\"error\">We could not start connecting Klaviyo just now. Please try again.</p>"
                    + HTMLPage.backLink(link.returnTo))
        }
    }

    /// The callback: consumes the state, then completes only in the browser that started the flow (its cookie
    /// nonce matches the state's binding); Klaviyo's `error` is shown as a fixed message, never echoed. Every
    /// answer clears the cookie.
    func oauthCallback(_ request: Request) async -> Response {
        var response = await oauthCallbackPage(request)
        response.headers[.setCookie] = OAuthBrowserCookie.clear
        return response
    }

    func oauthCallbackPage(_ request: Request) async -> Response {
        let parameters = query(request)
        guard let connector = try? runtime.oauthConnector() else {
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Klaviyo sign-in unavailable",
                body: "<p class=\"error\">Connecting with Klaviyo is not configured on this server.</p>")
        }
        let context: OAuthConnector.StateContext?
        do {
            context = try await connector.takeState(parameters["state"] ?? "")
        } catch {
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Please try again",
                body: "<p class=\"error\">We could not finish connecting Klaviyo just now. Please start again.</p>")
        }
        guard let context else {
            return HTMLPage.response(
                status: .badRequest, title: "Link expired or already used",
                body: "<p class=\"error\">This Klaviyo sign-in has expired, was already used, or did not start here. "
                    + "Nothing was stored. Open Klaviyo settings from your HeroPixel dashboard and connect again.</p>")
        }
        guard context.isBound(to: OAuthBrowserCookie.nonce(in: request)) else {
            runtime.logger.warning(
                "OAuth callback from a browser that did not start the flow; refused",
                metadata: ["account_id": "\(context.accountID)"])
            return HTMLPage.response(
                status: .forbidden, title: "Klaviyo not connected",
                body: "<p class=\"error\" id=\"message\">This Klaviyo sign-in was not started in this browser, so "
                    + "nothing was connected and nothing was stored. To connect Klaviyo, open Klaviyo settings from "
                    + "your own HeroPixel dashboard.</p>")
        }
        let back = context.returnTo.map { HTMLPage.backLink($0) } ?? ""
        let again = startAgainLink(context)
        if let error = parameters["error"] {
            return HTMLPage.response(
                status: .ok, title: "Klaviyo not connected",
                body: "<p class=\"error\" id=\"message\">\(HTMLPage.escape(Self.oauthErrorMessage(error)))</p>" + again
                    + back)
        }
        guard let code = parameters["code"], !code.isEmpty else {
            return HTMLPage.response(
                status: .badRequest, title: "Klaviyo not connected",
                body: "<p class=\"error\" id=\"message\">Klaviyo sent no authorization code. Nothing was stored.</p>"
                    + again + back)
        }
        do {
            let record = try await connector.complete(code: code, context: context)
            await lifecycle.connectedWithOAuth(record)
            runtime.logger.info("connected with OAuth", metadata: ["account_id": "\(record.accountID)"])
            if let returnTo = context.returnTo { return Response(status: .found, headers: [.location: returnTo]) }
            return HTMLPage.response(status: .ok, title: "Klaviyo connected", body: "<p>Klaviyo is connected.</p>")
        } catch let failure as OAuthConnector.Failure {
            let message =
                failure.code == "invalid_grant"
                ? "The Klaviyo authorization expired or was already used. Nothing was stored; please connect again."
                : "We could not finish connecting Klaviyo. Nothing was stored; please try again."
            return HTMLPage.response(
                status: failure.code == "invalid_grant" ? .badRequest : .badGateway, title: "Klaviyo not connected",
                body: "<p class=\"error\" id=\"message\">\(HTMLPage.escape(message))</p>" + again + back)
        } catch {
            return HTMLPage.response(
                status: .badGateway, title: "Klaviyo not connected",
                body: "<p class=\"error\" id=\"message\">We could not finish connecting Klaviyo. Please try again.</p>"
                    + again + back)
        }
    }

    /// The message for Klaviyo's `error` parameter (RFC 6749 §4.1.2.1 codes): fixed text per known code, one
    /// generic text otherwise. Neither `error` nor `error_description` is ever shown.
    static func oauthErrorMessage(_ code: String) -> String {
        switch code {
        case "access_denied":
            "You cancelled connecting Klaviyo, so HeroPixel was not connected. Nothing was stored."
        case "invalid_request":
            "Klaviyo could not process the sign-in request. Nothing was stored. Please try again; if it keeps "
                + "happening, contact HeroPixel support."
        case "unauthorized_client":
            "Klaviyo does not allow HeroPixel to connect this way right now. Nothing was stored. Please contact "
                + "HeroPixel support."
        case "invalid_scope":
            "Klaviyo did not grant the permissions HeroPixel needs. Nothing was stored. Please connect again and "
                + "allow the requested access."
        case "server_error":
            "Klaviyo had a problem completing the sign-in. Nothing was stored. Please try again."
        case "temporarily_unavailable":
            "Klaviyo is temporarily unavailable. Nothing was stored. Please try again in a few minutes."
        default:
            "Klaviyo did not connect HeroPixel. Nothing was stored. Please try again."
        }
    }

    /// A start link for the same account and return URL with the ORIGINAL link's expiry (so a failed flow cannot
    /// renew a link), when signing is configured and that link has not expired yet.
    func startAgainLink(_ context: OAuthConnector.StateContext) -> String {
        guard let secret = configuration.linkSecret, let returnTo = context.returnTo,
            let expires = context.linkExpires, expires >= Timestamp.nowSeconds()
        else { return "" }
        let link = SignedLink.sign(
            action: .oauthStart, accountID: context.accountID, returnTo: returnTo, expires: expires, secret: secret)
        return "<p><a id=\"start-again\" href=\"\(HTMLPage.escape(link.pathAndQuery))\">"
            + "Connect with Klaviyo again</a></p>"
    }

    func settingsPage(_ request: Request) async -> Response {
        let link: SignedLink
        do { link = try signedLink(.settings, query(request)) } catch { return refusalPage(error) }
        return await renderSettings(link, error: nil)
    }

    func renderSettings(_ link: SignedLink, error: String?, status: HTTPResponse.Status = .ok) async -> Response {
        let record: ConnectionRecord?
        var unreadable = false
        do {
            record = try await runtime.credentialStore.load(accountID: link.accountID)
        } catch let failure as CredentialUnreadable {
            runtime.logger.warning(
                "settings page: stored connection cannot be read; offering to reconnect",
                metadata: ["account_id": "\(link.accountID)", "key_id": "\(failure.keyID)"])
            record = nil
            unreadable = true
        } catch {
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Klaviyo settings",
                body:
                    "<p class=\"error\">We could not load your Klaviyo connection just now. Please reload the page.</p>"
            )
        }
        let hidden = [
            ("account_id", link.accountID), ("return_to", link.returnTo), ("expires", String(link.expires)),
            ("sig", link.signature),
        ].map { "<input type=\"hidden\" name=\"\($0.0)\" value=\"\(HTMLPage.escape($0.1))\">" }.joined()
        var body = ""
        if let error { body += "<p class=\"error\" id=\"message\">\(HTMLPage.escape(error))</p>" }
        if let record, record.state == .connected {
            let method = record.method == .oauth ? "Klaviyo sign-in (OAuth)" : "Private API key"
            body += """
                <h2 id="status">Connected</h2>
                <dl><dt>Klaviyo account</dt><dd id="klaviyo-account">\(HTMLPage.escape(record.klaviyoAccountName ?? "-")) (\(HTMLPage.escape(record.klaviyoAccountID ?? "-")))</dd>
                <dt>Method</dt><dd id="method">\(method)</dd><dt>Status</dt><dd>connected</dd></dl>
                <form method="post" action="/settings/klaviyo/disconnect">\(hidden)<button id="disconnect" type="submit">Disconnect</button></form>
                <h3>Switch method</h3>
                """
        } else if unreadable {
            body += """
                <h2 id="status">Reconnect needed</h2>
                <p class="error" id="reconnect-reason">HeroPixel can no longer read the stored Klaviyo connection \
                (it was protected with a key this server no longer has). Syncing with Klaviyo is paused for this \
                account. Please connect again below; nothing else is lost.</p>
                """
        } else {
            body += "<h2 id=\"status\">Not connected</h2>"
            if record?.state == .reauthRequired {
                body +=
                    "<p class=\"error\">Klaviyo no longer accepts this connection (the app was removed or the access expired). Please connect again.</p>"
            }
        }
        // The same account, return URL and expiry, signed for the OAuth start (a verified link implies a secret).
        let start = link.resigned(for: .oauthStart, secret: configuration.linkSecret ?? "")
        body += """
            <p><a id="connect" class="button" href="\(HTMLPage.escape(start.pathAndQuery))">Connect with Klaviyo</a></p>
            <form method="post" action="/settings/klaviyo/api-key">\(hidden)
            <label for="api_key">Or use a private API key</label>
            <input id="api_key" name="api_key" type="password" autocomplete="off" placeholder="pk_…">
            <button id="save-key" type="submit">Connect with API key</button></form>
            \(HTMLPage.backLink(link.returnTo))
            """
        return HTMLPage.response(status: status, title: "Klaviyo settings", body: body)
    }

    func settingsRedirect(_ link: SignedLink) -> Response {
        Response(status: .seeOther, headers: [.location: link.pathAndQuery])
    }

    func settingsAPIKey(_ request: Request) async -> Response {
        let fields = await form(request)
        let link: SignedLink
        do { link = try signedLink(.settings, fields) } catch { return refusalPage(error) }
        do {
            _ = try await lifecycle.connectAPIKey(
                accountID: link.accountID, apiKey: fields["api_key"] ?? "", connector: apiKeyConnector)
            return settingsRedirect(link)
        } catch let failure as APIKeyConnector.Failure {
            guard let retryAfter = failure.retryAfter else {
                return await renderSettings(link, error: failure.description, status: .unprocessableContent)
            }
            var response = await renderSettings(link, error: failure.description, status: .tooManyRequests)
            response.headers[.retryAfter] = String(retryAfter.components.seconds)
            return response
        } catch {
            return await renderSettings(
                link, error: "Something went wrong; please try again.", status: .serviceUnavailable)
        }
    }

    func settingsDisconnect(_ request: Request) async -> Response {
        let fields = await form(request)
        let link: SignedLink
        do { link = try signedLink(.settings, fields) } catch { return refusalPage(error) }
        do {
            try await lifecycle.disconnect(accountID: link.accountID)
            return settingsRedirect(link)
        } catch let failure as ConnectionLifecycle.Failure {
            return await renderSettings(link, error: failure.description, status: .serviceUnavailable)
        } catch {
            return await renderSettings(
                link, error: "Something went wrong; please try again.", status: .serviceUnavailable)
        }
    }
}

/// The cookie that binds an OAuth flow to the browser that started it: `kr_oauth=<random nonce>`, HttpOnly,
/// Secure, SameSite=Lax (sent on Klaviyo's top-level redirect back to the callback), scoped to `/oauth/klaviyo`,
/// living as long as the state. The state in Redis keeps only the nonce's SHA-256.
enum OAuthBrowserCookie {
    static let name = "kr_oauth"
    static let attributes = "Path=/oauth/klaviyo; HttpOnly; Secure; SameSite=Lax"

    static func makeNonce() -> String { PKCE.randomToken() }

    static func set(_ nonce: String, lifetime: Duration) -> String {
        "\(name)=\(nonce); Max-Age=\(lifetime.components.seconds); \(attributes)"
    }

    static var clear: String { "\(name)=; Max-Age=0; \(attributes)" }

    /// The nonce the browser sent, if any.
    static func nonce(in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }
}
