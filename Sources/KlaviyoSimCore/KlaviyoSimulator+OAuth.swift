import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// An OAuth-style error answer: `{"error": "...", "error_description": "..."}`.
struct OAuthError: Error, Sendable {
    var status: Int
    var error: String
    var description: String

    static func invalidGrant(_ d: String) -> Self { .init(status: 400, error: "invalid_grant", description: d) }
    static func invalidRequest(_ d: String) -> Self { .init(status: 400, error: "invalid_request", description: d) }
    static let invalidClient = Self(status: 401, error: "invalid_client", description: "Client authentication failed.")
}

extension KlaviyoSimulator {
    static let verifierCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// `/oauth/authorize`, `/oauth/token`, `/oauth/revoke`.
    func handleOAuth(_ request: Request) async -> Response {
        var req = request
        let bytes = (try? await req.collectBody(upTo: 1024 * 1024)).map { Array($0.readableBytesView) } ?? []
        let method = request.method.rawValue
        let path = request.uri.path.hasSuffix("/") ? String(request.uri.path.dropLast()) : request.uri.path
        let response: Response
        var accountId: String?
        switch (method, path) {
        case ("GET", "/oauth/authorize"), ("POST", "/oauth/authorize"):
            var params = HTTPHelpers.queryItems(request.uri.query)
            if method == "POST" { params += HTTPHelpers.queryItems(String(decoding: bytes, as: UTF8.self)) }
            response = authorize(params)
        case ("POST", "/oauth/token"):
            (response, accountId) = token(request, body: bytes)
            let client = authenticateClient(request.headers[.authorization])?.clientId
            let delay = oauth.withLock { $0.tokenLatency(for: client) }
            if delay > .zero { try? await Task.sleep(for: delay) }
        case ("POST", "/oauth/revoke"):
            (response, accountId) = revoke(request, body: bytes)
        default:
            response = oauthError(.init(status: 404, error: "not_found", description: "Unknown OAuth endpoint."))
        }
        let status = Int(response.status.code)
        stats.count(operation: "\(method) \(path)", status: status)
        var headers: [String: String] = [:]
        if let ct = request.headers[.contentType] { headers["content-type"] = ct }
        if let ua = request.headers[.userAgent] { headers["user-agent"] = ua }
        if let auth = request.headers[.authorization] { headers["authorization"] = RequestRecorder.redact(auth) }
        var form: [String: JSONValue] = [:]
        for (k, v) in HTTPHelpers.queryItems(String(decoding: bytes, as: UTF8.self)) {
            form[k] = ["code", "code_verifier", "refresh_token", "token"].contains(k) ? "…REDACTED" : .string(v)
        }
        recorder.record(
            .init(
                seq: 0, method: method, path: path, query: request.uri.query ?? "", headers: headers,
                body: bytes.isEmpty ? nil : .object(form), status: status, accountId: accountId))
        return response
    }

    func oauthError(_ e: OAuthError) -> Response {
        if e.error == "invalid_grant" { stats.countTokenCall("invalid_grant") }
        return HTTPHelpers.response(
            status: e.status, body: ["error": .string(e.error), "error_description": .string(e.description)],
            contentType: "application/json")
    }

    static func html(_ status: Int, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(
            status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func redirect(_ uri: String, _ params: [(String, String?)]) -> Response {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let q = params.compactMap { k, v in
            v.map { "\(k)=\($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0)" }
        }
        .joined(separator: "&")
        var headers = HTTPFields()
        headers[.location] = uri + (uri.contains("?") ? "&" : "?") + q
        return Response(status: .found, headers: headers)
    }

    /// The consent page (GET) and the decision (`decision=allow|deny`, from the page's form or the query).
    func authorize(_ items: [(String, String)]) -> Response {
        var p: [String: String] = [:]
        for (k, v) in items where p[k] == nil { p[k] = v }
        let clientId = p["client_id"] ?? ""
        let redirectURI = p["redirect_uri"] ?? ""
        let state = p["state"]
        let (app, login): (OAuthApp?, String?) = oauth.withLock { ($0.apps[clientId], $0.loginAccountId) }
        guard let app else { return Self.html(400, "<h1>Invalid client_id</h1>") }
        guard app.redirectURIs.contains(redirectURI) else {
            return Self.html(
                400, "<h1>Invalid redirect_uri</h1><p>It must exactly match a registered redirect URI.</p>")
        }
        guard p["response_type"] == "code" else {
            return Self.redirect(
                redirectURI,
                [
                    ("error", "unsupported_response_type"), ("error_description", "response_type must be code."),
                    ("state", state),
                ])
        }
        guard let challenge = p["code_challenge"], !challenge.isEmpty, p["code_challenge_method"] == "S256" else {
            return Self.redirect(
                redirectURI,
                [
                    ("error", "invalid_request"),
                    ("error_description", "PKCE with code_challenge_method=S256 is required."), ("state", state),
                ])
        }
        let requested = Set((p["scope"] ?? "").split(separator: " ").map(String.init))
        guard !requested.isEmpty, requested.isSubset(of: app.scopes) else {
            return Self.redirect(
                redirectURI,
                [
                    ("error", "invalid_scope"),
                    ("error_description", "Requested scopes are not configured on the app."), ("state", state),
                ])
        }
        guard let accountId = p["login_account"] ?? login, let box = registry.box(accountId) else {
            return Self.html(
                400, "<h1>No Klaviyo account is logged in</h1><p>POST /_sim/oauth/login or pass login_account.</p>")
        }
        switch p["decision"] {
        case "deny"?:
            return Self.redirect(
                redirectURI,
                [
                    ("error", "access_denied"), ("error_description", "The user denied the authorization request."),
                    ("state", state),
                ])
        case "allow"?:
            let code = SimIdentifiers.token(bytes: 24)
            oauth.withLock {
                $0.codes[code] = .init(
                    clientId: clientId, accountId: accountId, redirectURI: redirectURI, scopes: requested,
                    codeChallenge: challenge, expiresAt: .now + .seconds(300))
            }
            return Self.redirect(redirectURI, [("code", code), ("state", state)])
        default:
            let hidden = p.filter { $0.key != "decision" }.sorted { $0.key < $1.key }
                .map { "<input type=\"hidden\" name=\"\(Self.escape($0.key))\" value=\"\(Self.escape($0.value))\">" }
                .joined(separator: "\n")
            let name = Self.escape(box.account.name)
            let scopes = requested.sorted().map { "<li>\(Self.escape($0))</li>" }.joined()
            return Self.html(
                200,
                """
                <!doctype html><html><head><title>Authorize \(Self.escape(clientId))</title></head><body>
                <h1>Allow \(Self.escape(clientId)) to access \(name)?</h1>
                <p>Klaviyo account: \(name) (\(Self.escape(box.account.klaviyoAccountId)))</p>
                <ul>\(scopes)</ul>
                <form method="post" action="/oauth/authorize">
                \(hidden)
                <button type="submit" name="decision" value="allow">Allow</button>
                <button type="submit" name="decision" value="deny">Deny</button>
                </form></body></html>
                """)
        }
    }

    /// Parses `Authorization: Basic base64(client_id:client_secret)` and checks it against the registered apps.
    func authenticateClient(_ header: String?) -> OAuthApp? {
        guard let header, header.hasPrefix("Basic "),
            let data = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        let id = String(text[..<colon])
        let secret = String(text[text.index(after: colon)...])
        return oauth.withLock { s in s.apps[id].flatMap { $0.clientSecret == secret ? $0 : nil } }
    }

    static func isFormEncoded(_ contentType: String?) -> Bool {
        contentType?.lowercased().split(separator: ";").first?.trimmingCharacters(in: .whitespaces)
            == "application/x-www-form-urlencoded"
    }

    /// `POST /oauth/token`: authorization_code (PKCE S256) and refresh_token grants.
    func token(_ request: Request, body: [UInt8]) -> (Response, String?) {
        guard let app = authenticateClient(request.headers[.authorization]) else {
            stats.countTokenCall("invalid_client")
            return (oauthError(.invalidClient), nil)
        }
        guard Self.isFormEncoded(request.headers[.contentType]) else {
            return (
                oauthError(
                    .init(
                        status: 400, error: "invalid_grant_type",
                        description: "The request body must be application/x-www-form-urlencoded.")), nil
            )
        }
        var p: [String: String] = [:]
        for (k, v) in HTTPHelpers.queryItems(String(decoding: body, as: UTF8.self)) where p[k] == nil { p[k] = v }
        let ttl = settings.withLock { $0.accessTokenTTL }
        let now = ContinuousClock.now
        let result: Result<(JSONValue, String), OAuthError>
        switch p["grant_type"] {
        case "authorization_code"?:
            guard let code = p["code"], let verifier = p["code_verifier"], let redirectURI = p["redirect_uri"] else {
                return (oauthError(.invalidRequest("code, code_verifier and redirect_uri are required.")), nil)
            }
            guard (43...128).contains(verifier.count), verifier.allSatisfy(Self.verifierCharacters.contains) else {
                return (oauthError(.invalidRequest("Invalid \"code_verifier\"")), nil)
            }
            let digest = Data(SHA256.hash(data: Data(verifier.utf8))).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            result = oauth.withLock { s in
                guard let pending = s.codes[code], pending.clientId == app.clientId, pending.expiresAt > now else {
                    s.codes[code] = nil
                    return .failure(.invalidGrant("The authorization code is invalid, expired or already used."))
                }
                guard pending.redirectURI == redirectURI else {
                    return .failure(.invalidGrant("redirect_uri does not match the authorization request."))
                }
                guard pending.codeChallenge == digest else { return .failure(.invalidGrant("Code challenge failed.")) }
                s.codes[code] = nil
                let key = "\(app.clientId)|\(pending.accountId)"
                let installId = s.installByClientAndAccount[key] ?? SimIdentifiers.short(10)
                var install =
                    s.installs[installId]
                    ?? .init(
                        id: installId, clientId: app.clientId, accountId: pending.accountId, scopes: pending.scopes)
                install.scopes = pending.scopes
                let refresh = SimIdentifiers.token()
                install.refreshTokens.insert(refresh)
                s.refreshTokens[refresh] = installId
                let access = self.issueAccessToken(&install, ttl: ttl, now: now)
                s.installs[installId] = install
                s.installByClientAndAccount[key] = installId
                let body = Self.tokenBody(access, refresh, ttl, install.scopes, advertised: s.advertisedExpiresIn)
                return .success((body, install.accountId))
            }
            if case .success = result { stats.countTokenCall("authorization_code", client: app.clientId) }
        case "refresh_token"?:
            guard let refresh = p["refresh_token"] else {
                return (oauthError(.invalidRequest("refresh_token is required.")), nil)
            }
            result = oauth.withLock { s in
                guard let installId = s.refreshTokens[refresh], var install = s.installs[installId],
                    install.clientId == app.clientId
                else {
                    return .failure(.invalidGrant("The refresh token is invalid because it is expired or revoked."))
                }
                var returned = refresh
                if s.rotates(for: app.clientId) {
                    install.refreshTokens.remove(refresh)
                    s.refreshTokens[refresh] = nil
                    returned = SimIdentifiers.token()
                    install.refreshTokens.insert(returned)
                    s.refreshTokens[returned] = installId
                }
                let access = self.issueAccessToken(&install, ttl: ttl, now: now)
                s.installs[installId] = install
                let body = Self.tokenBody(access, returned, ttl, install.scopes, advertised: s.advertisedExpiresIn)
                return .success((body, install.accountId))
            }
            if case .success = result { stats.countTokenCall("refresh_token", client: app.clientId) }
        default:
            return (
                oauthError(
                    .init(
                        status: 400, error: "invalid_grant_type",
                        description: "Supported grant types: authorization_code, refresh_token.")), nil
            )
        }
        switch result {
        case .success(let (body, accountId)):
            return (HTTPHelpers.response(status: 200, body: body, contentType: "application/json"), accountId)
        case .failure(let e):
            if e.error == "invalid_grant" {
                // oauthError counts it globally; this app's own count as well.
                stats.state.withLock {
                    $0.tokenCallsByClient[app.clientId, default: [:]]["invalid_grant", default: 0] += 1
                }
            }
            return (oauthError(e), nil)
        }
    }

    /// Registers a new access token for `install` (the registry resolves Bearer tokens).
    func issueAccessToken(_ install: inout OAuthState.Install, ttl: Duration, now: ContinuousClock.Instant) -> String {
        let access = SimIdentifiers.token()
        install.accessTokens.insert(access)
        let grant = AccessTokenGrant(
            accountId: install.accountId, installId: install.id, scopes: install.scopes, expiresAt: now + ttl)
        registry.state.withLock { $0.accessTokens[access] = grant }
        return access
    }

    /// A token answer; `advertised` replaces the `expires_in` it states (see `OAuthState.advertisedExpiresIn`).
    static func tokenBody(
        _ access: String, _ refresh: String, _ ttl: Duration, _ scopes: Set<String>, advertised: JSONValue? = nil
    ) -> JSONValue {
        [
            "access_token": .string(access), "token_type": "Bearer",
            "expires_in": advertised ?? .int(Int(ttl.components.seconds)),
            "refresh_token": .string(refresh), "scope": .string(scopes.sorted().joined(separator: " ")),
        ]
    }

    /// Removes an install and every token it holds. Caller holds the OAuth lock.
    func uninstall(_ installId: String, in s: inout OAuthState) {
        guard let install = s.installs.removeValue(forKey: installId) else { return }
        for r in install.refreshTokens { s.refreshTokens[r] = nil }
        s.installByClientAndAccount["\(install.clientId)|\(install.accountId)"] = nil
        registry.state.withLock { r in for a in install.accessTokens { r.accessTokens[a] = nil } }
    }

    /// `POST /oauth/revoke`: revokes the whole install that the token (refresh or access) belongs to. Answers 200
    /// for unknown tokens too (RFC 7009).
    func revoke(_ request: Request, body: [UInt8]) -> (Response, String?) {
        guard let app = authenticateClient(request.headers[.authorization]) else {
            stats.countTokenCall("invalid_client")
            return (oauthError(.invalidClient), nil)
        }
        guard Self.isFormEncoded(request.headers[.contentType]) else {
            return (oauthError(.invalidRequest("The request body must be application/x-www-form-urlencoded.")), nil)
        }
        var p: [String: String] = [:]
        for (k, v) in HTTPHelpers.queryItems(String(decoding: body, as: UTF8.self)) where p[k] == nil { p[k] = v }
        guard let token = p["token"] else { return (oauthError(.invalidRequest("token is required.")), nil) }
        let accessInstall = registry.state.withLock { $0.accessTokens[token]?.installId }
        let accountId: String? = oauth.withLock { s in
            guard let installId = s.refreshTokens[token] ?? accessInstall, let install = s.installs[installId],
                install.clientId == app.clientId
            else { return nil }
            uninstall(installId, in: &s)
            return install.accountId
        }
        stats.countTokenCall("revoke", client: app.clientId)
        return (HTTPHelpers.response(status: 200, body: [:], contentType: "application/json"), accountId)
    }
}
