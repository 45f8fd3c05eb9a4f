import AMQP
import ArgumentParser
import Foundation
import Hummingbird
import Klaviyo
import Logging
import Prometheus
import Relay
import ServiceLifecycle

/// `klaviyo-relay serve`: the HTTP surface (DESIGN §2): the JSON API for the dashboard backend (bearer
/// `RELAY_API_TOKEN`), the signed browser entry points (OAuth start and callback, settings page), health and
/// metrics. Stateless: all state lives in Redis.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve the connection API, the OAuth flow and the settings page over HTTP.")

    @OptionGroup var options: GlobalOptions

    @Option(help: "Port (overrides RELAY_HTTP_PORT).")
    var port: Int?

    func run() async throws {
        let runtime = try Runtime.make(options, label: "klaviyo-relay.serve", connectionName: "klaviyo-relay serve")
        let metrics = MetricsBootstrap.bootstrap()
        let app = RelayHTTP(runtime: runtime).application(
            port: port ?? runtime.configuration.httpPort, registry: metrics)
        if runtime.configuration.apiToken == nil {
            runtime.logger.warning("RELAY_API_TOKEN is not set: the JSON API answers 401 to every call")
        }
        if runtime.configuration.linkSecret == nil {
            runtime.logger.warning("RELAY_LINK_SECRET is not set: every signed browser link is refused")
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: runtime.amqp), .init(service: app)],
                gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: runtime.logger))
        runtime.logger.info(
            "serving",
            metadata: ["port": "\(port ?? runtime.configuration.httpPort)", "config": "\(runtime.configuration)"])
        try await group.run()
        await runtime.redis.shutdown()
        await runtime.http.shutdown()
    }
}

/// `klaviyo-relay sign-link`: prints a signed browser link (what the dashboard backend does).
struct SignLinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-link",
        abstract: "Print a signed link to the settings page or the OAuth start (HMAC-SHA256 with RELAY_LINK_SECRET).")

    @Option(help: "HeroPixel account id.")
    var account: String

    @Option(help: "Where the browser returns afterwards (must match RELAY_RETURN_TO_ALLOWLIST).")
    var returnTo: String

    @Option(help: "Lifetime of the link (e.g. 10m).")
    var ttl = "10m"

    @Option(help: "/settings/klaviyo or /oauth/klaviyo/start.")
    var path = "/settings/klaviyo"

    @Option(help: "Base URL of `serve` (default http://127.0.0.1:<RELAY_HTTP_PORT>).")
    var baseURL: String?

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let secret = environment["RELAY_LINK_SECRET"], !secret.isEmpty else {
            throw CLIError("RELAY_LINK_SECRET is not set")
        }
        guard path == "/settings/klaviyo" || path == "/oauth/klaviyo/start" else {
            throw ValidationError("--path must be /settings/klaviyo or /oauth/klaviyo/start")
        }
        guard let lifetime = RelayConfiguration.parseDuration(ttl) else { throw ValidationError("--ttl: e.g. 10m") }
        let allowlist = (environment["RELAY_RETURN_TO_ALLOWLIST"] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        if !SignedLink.isAllowed(returnTo: returnTo, allowlist: allowlist) {
            FileHandle.standardError.write(Data("warning: --return-to is not in RELAY_RETURN_TO_ALLOWLIST\n".utf8))
        }
        let base = baseURL ?? "http://127.0.0.1:\(environment["RELAY_HTTP_PORT"] ?? "8080")"
        let link = SignedLink.sign(
            accountID: account, returnTo: returnTo, expires: Timestamp.nowSeconds() + lifetime.components.seconds,
            secret: secret)
        print(base + path + "?" + link.query)
    }
}

/// The routes of `serve`.
struct RelayHTTP: Sendable {
    let runtime: Runtime
    let lifecycle: ConnectionLifecycle

    init(runtime: Runtime) {
        self.runtime = runtime
        lifecycle = runtime.connectionLifecycle()
    }

    var configuration: RelayConfiguration { runtime.configuration }

    func application(port: Int, registry: PrometheusCollectorRegistry) -> some ApplicationProtocol {
        let router = Router()
        HealthServer.addRoutes(to: router, registry: registry, amqp: runtime.amqp, redis: runtime.redis)
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
            let record = try await lifecycle.connectAPIKey(
                accountID: account, apiKey: key,
                connector: APIKeyConnector(klaviyo: runtime.klaviyo, store: runtime.credentialStore))
            runtime.logger.info("connected with an API key", metadata: ["account_id": "\(record.accountID)"])
            return json(.ok, try await lifecycle.status(accountID: account))
        } catch let failure as APIKeyConnector.Failure {
            return jsonError(
                failure.isRetriable ? .serviceUnavailable : .unprocessableContent, failure.code, failure.description)
        }
    }

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

    func signedLink(_ parameters: [String: String]) throws(SignedLink.Refusal) -> SignedLink {
        try SignedLink.verify(
            accountID: parameters["account_id"], returnTo: parameters["return_to"], expires: parameters["expires"],
            signature: parameters["sig"], secret: configuration.linkSecret, allowlist: configuration.returnToAllowlist)
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
        do { link = try signedLink(query(request)) } catch { return refusalPage(error) }
        guard let connector = try? runtime.oauthConnector() else {
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Klaviyo sign-in unavailable",
                body:
                    "<p class=\"error\">Connecting with Klaviyo is not configured on this server. Use an API key instead.</p>"
                    + HTMLPage.backLink(link.returnTo))
        }
        do {
            let started = try await connector.start(accountID: link.accountID, returnTo: link.returnTo)
            return Response(status: .found, headers: [.location: started.url])
        } catch {
            runtime.logger.error(
                "could not start OAuth", metadata: ["account_id": "\(link.accountID)", "error": "\(error)"])
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Please try again",
                body: "<p class=\"error\">We could not start connecting Klaviyo just now. Please try again.</p>"
                    + HTMLPage.backLink(link.returnTo))
        }
    }

    func oauthCallback(_ request: Request) async -> Response {
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
        let back = context.returnTo.map { HTMLPage.backLink($0) } ?? ""
        let again = startAgainLink(context)
        if let error = parameters["error"] {
            let message =
                error == "access_denied"
                ? "You cancelled connecting Klaviyo, so HeroPixel was not connected. Nothing was stored."
                : "Klaviyo did not connect (\(error)). Nothing was stored."
            return HTMLPage.response(
                status: .ok, title: "Klaviyo not connected",
                body: "<p class=\"error\" id=\"message\">\(HTMLPage.escape(message))</p>" + again + back)
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

    /// A fresh signed start link for the same account and return URL (10 minutes), when signing is configured.
    func startAgainLink(_ context: OAuthConnector.StateContext) -> String {
        guard let secret = configuration.linkSecret, let returnTo = context.returnTo else { return "" }
        let link = SignedLink.sign(
            accountID: context.accountID, returnTo: returnTo, expires: Timestamp.nowSeconds() + 600, secret: secret)
        return
            "<p><a id=\"start-again\" href=\"/oauth/klaviyo/start?\(HTMLPage.escape(link.query))\">Connect with Klaviyo again</a></p>"
    }

    func settingsPage(_ request: Request) async -> Response {
        let link: SignedLink
        do { link = try signedLink(query(request)) } catch { return refusalPage(error) }
        return await renderSettings(link, error: nil)
    }

    func renderSettings(_ link: SignedLink, error: String?, status: HTTPResponse.Status = .ok) async -> Response {
        let record: ConnectionRecord?
        do {
            record = try await runtime.credentialStore.load(accountID: link.accountID)
        } catch {
            return HTMLPage.response(
                status: .serviceUnavailable, title: "Klaviyo settings",
                body:
                    "<p class=\"error\">We could not load your Klaviyo connection just now. Please reload the page.</p>"
            )
        }
        let q = HTMLPage.escape(link.query)
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
        } else {
            body += "<h2 id=\"status\">Not connected</h2>"
            if record?.state == .reauthRequired {
                body +=
                    "<p class=\"error\">Klaviyo no longer accepts this connection (the app was removed or the access expired). Please connect again.</p>"
            }
        }
        body += """
            <p><a id="connect" class="button" href="/oauth/klaviyo/start?\(q)">Connect with Klaviyo</a></p>
            <form method="post" action="/settings/klaviyo/api-key">\(hidden)
            <label for="api_key">Or use a private API key</label>
            <input id="api_key" name="api_key" type="password" autocomplete="off" placeholder="pk_…">
            <button id="save-key" type="submit">Connect with API key</button></form>
            \(HTMLPage.backLink(link.returnTo))
            """
        return HTMLPage.response(status: status, title: "Klaviyo settings", body: body)
    }

    func settingsRedirect(_ link: SignedLink) -> Response {
        Response(status: .seeOther, headers: [.location: "/settings/klaviyo?" + link.query])
    }

    func settingsAPIKey(_ request: Request) async -> Response {
        let fields = await form(request)
        let link: SignedLink
        do { link = try signedLink(fields) } catch { return refusalPage(error) }
        do {
            _ = try await lifecycle.connectAPIKey(
                accountID: link.accountID, apiKey: fields["api_key"] ?? "",
                connector: APIKeyConnector(klaviyo: runtime.klaviyo, store: runtime.credentialStore))
            return settingsRedirect(link)
        } catch let failure as APIKeyConnector.Failure {
            return await renderSettings(link, error: failure.description, status: .unprocessableContent)
        } catch {
            return await renderSettings(
                link, error: "Something went wrong; please try again.", status: .serviceUnavailable)
        }
    }

    func settingsDisconnect(_ request: Request) async -> Response {
        let fields = await form(request)
        let link: SignedLink
        do { link = try signedLink(fields) } catch { return refusalPage(error) }
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

/// Plain server-rendered pages (no JavaScript).
enum HTMLPage {
    static func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }

    static func backLink(_ returnTo: String) -> String {
        "<p><a id=\"back\" href=\"\(escape(returnTo))\">Back to HeroPixel</a></p>"
    }

    static func response(status: HTTPResponse.Status, title: String, body: String) -> Response {
        let page = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}
            .error{color:#a40000;font-weight:600}.button,button{padding:.5rem 1rem}</style></head>
            <body><h1>\(escape(title))</h1>
            \(body)
            </body></html>
            """
        return Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store", .init("X-Frame-Options")!: "DENY",
            ],
            body: .init(byteBuffer: ByteBuffer(string: page)))
    }
}
