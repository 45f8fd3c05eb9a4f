import Foundation

/// A successful answer of `POST /oauth/token` (Klaviyo's OAuth guide; docs/operations.md).
public struct KlaviyoTokenResponse: Sendable, Hashable, CustomStringConvertible {
    /// The access token (Bearer).
    public var accessToken: String
    /// `Bearer`.
    public var tokenType: String
    /// Lifetime of the access token in seconds, always in `0...Clamp.maxTokenLifetimeSeconds` (one year), so
    /// `now + expiresIn` cannot overflow.
    public var expiresIn: Int64 {
        didSet { expiresIn = Clamp.tokenLifetimeSeconds(expiresIn) }
    }
    /// The refresh token Klaviyo returned (it may have rotated); nil when the response had none.
    public var refreshToken: String?
    /// Granted scopes, space-separated.
    public var scope: String?

    /// Creates a token response; `expiresIn` is clamped like ``expiresIn`` (negative: one hour).
    public init(accessToken: String, tokenType: String, expiresIn: Int64, refreshToken: String?, scope: String?) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresIn = Clamp.tokenLifetimeSeconds(expiresIn)
        self.refreshToken = refreshToken
        self.scope = scope
    }

    /// No secrets.
    public var description: String {
        "KlaviyoTokenResponse(type: \(tokenType), expires_in: \(expiresIn), refresh_token: "
            + "\(refreshToken == nil ? "absent" : "<redacted>"), scope: \(scope ?? "-"))"
    }
}

/// A failed OAuth call: an OAuth error answer (`invalid_grant`, `invalid_client`, …) or no usable answer.
public struct KlaviyoOAuthError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The OAuth `error` value, or one of ours: `transport`, `server_error`, `throttled`, `invalid_response`.
    public var code: String
    /// HTTP status, when there was a response.
    public var status: Int?
    /// `error_description` or a short reason (never a secret).
    public var message: String

    /// Creates an error.
    public init(code: String, status: Int?, message: String) {
        self.code = code
        self.status = status
        self.message = message
    }

    /// The grant (code or refresh token) is dead: expired, revoked, app removed, reused. Never retry.
    public var isInvalidGrant: Bool { code == "invalid_grant" }

    /// Whether a later retry may succeed (network, 5xx, 429, a Cloudflare 403 page); OAuth errors never.
    public var isRetriable: Bool {
        switch code {
        case "transport", "server_error", "throttled": return true
        case "invalid_response": return status == 403
        default: return false
        }
    }

    /// One line, without secrets.
    public var description: String {
        "oauth \(code)" + (status.map { " (HTTP \($0))" } ?? "") + (message.isEmpty ? "" : ": \(message)")
    }
}

/// Klaviyo's OAuth endpoints (Klaviyo's OAuth guide; docs/operations.md): code exchange and refresh at
/// `<base>/oauth/token`, revoke at `<base>/oauth/revoke`, all with HTTP Basic client authentication and form-encoded
/// bodies. Token and revoke calls go to the API host (`a.klaviyo.com`), never `www`.
public struct KlaviyoOAuthClient: Sendable {
    /// API base URL (`https://a.klaviyo.com` or `klaviyo-sim`).
    public let baseURL: String
    /// OAuth client id.
    public let clientID: String
    let clientSecret: String
    /// The HTTP transport.
    public let transport: any KlaviyoTransport
    /// `User-Agent` header value.
    public let userAgent: String

    /// Creates a client.
    public init(
        baseURL: String, clientID: String, clientSecret: String, transport: any KlaviyoTransport, userAgent: String
    ) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.transport = transport
        self.userAgent = userAgent
    }

    /// `Basic base64(client_id:client_secret)`.
    public var basicAuthorization: String {
        "Basic " + Data("\(clientID):\(clientSecret)".utf8).base64EncodedString()
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    public func exchangeCode(
        _ code: String, codeVerifier: String, redirectURI: String
    ) async throws(KlaviyoOAuthError)
        -> KlaviyoTokenResponse
    {
        try await token([
            ("grant_type", "authorization_code"), ("code", code), ("code_verifier", codeVerifier),
            ("redirect_uri", redirectURI),
        ])
    }

    /// Gets a new access token (and possibly a rotated refresh token), within `timeout` when given.
    public func refresh(
        refreshToken: String, timeout: Duration? = nil
    ) async throws(KlaviyoOAuthError) -> KlaviyoTokenResponse {
        try await token([("grant_type", "refresh_token"), ("refresh_token", refreshToken)], timeout: timeout)
    }

    /// Revokes a refresh token (uninstalls the app from the customer's Klaviyo account).
    public func revoke(refreshToken: String, timeout: Duration? = nil) async throws(KlaviyoOAuthError) {
        var request = formRequest(
            path: "/oauth/revoke", [("token", refreshToken), ("token_type_hint", "refresh_token")])
        request.timeout = timeout
        let response = try await send(request)
        guard (200..<300).contains(response.status) else { throw Self.decodeError(response) }
    }

    /// The HTTP request for a form POST to an OAuth endpoint (exposed for tests).
    public func formRequest(path: String, _ fields: [(String, String)]) -> KlaviyoHTTPRequest {
        KlaviyoHTTPRequest(
            method: "POST", url: baseURL + path,
            headers: [
                ("Authorization", basicAuthorization),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept", "application/json"),
                ("User-Agent", userAgent),
            ],
            body: Array(Self.formEncode(fields).utf8))
    }

    func token(
        _ fields: [(String, String)], timeout: Duration? = nil
    ) async throws(KlaviyoOAuthError) -> KlaviyoTokenResponse {
        var request = formRequest(path: "/oauth/token", fields)
        request.timeout = timeout
        let response = try await send(request)
        guard (200..<300).contains(response.status) else { throw Self.decodeError(response) }
        guard let document = try? JSONValue.parse(response.body),
            let accessToken = document["access_token"]?.stringValue, !accessToken.isEmpty
        else {
            throw KlaviyoOAuthError(
                code: "invalid_response", status: response.status, message: "token response without access_token")
        }
        return KlaviyoTokenResponse(
            accessToken: accessToken, tokenType: document["token_type"]?.stringValue ?? "Bearer",
            expiresIn: Clamp.tokenLifetimeSeconds(document["expires_in"]),
            refreshToken: document["refresh_token"]?.stringValue, scope: document["scope"]?.stringValue)
    }

    func send(_ request: KlaviyoHTTPRequest) async throws(KlaviyoOAuthError) -> KlaviyoHTTPResponse {
        do {
            return try await transport.send(request)
        } catch {
            throw KlaviyoOAuthError(code: "transport", status: nil, message: error.message)
        }
    }

    /// Decodes an OAuth error answer (`{"error":…,"error_description":…}`); other bodies are classified by status.
    public static func decodeError(_ response: KlaviyoHTTPResponse) -> KlaviyoOAuthError {
        if let document = try? JSONValue.parse(response.body), let error = document["error"]?.stringValue {
            return KlaviyoOAuthError(
                code: error, status: response.status, message: document["error_description"]?.stringValue ?? "")
        }
        let code: String
        switch response.status {
        case 429: code = "throttled"
        case 500...599: code = "server_error"
        default: code = "invalid_response"
        }
        return KlaviyoOAuthError(
            code: code, status: response.status, message: KlaviyoClient.describeNonJSONBody(response))
    }

    /// `application/x-www-form-urlencoded`: unreserved characters as they are, everything else `%XX`.
    public static func formEncode(_ fields: [(String, String)]) -> String {
        fields.map { percentEncode($0.0) + "=" + percentEncode($0.1) }.joined(separator: "&")
    }

    static func percentEncode(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                encoded += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return encoded
    }

    /// The browser URL that starts an authorization (Klaviyo's OAuth guide), PKCE S256.
    public static func authorizeURL(
        authorizeBase: String, clientID: String, redirectURI: String, scope: String, state: String,
        codeChallenge: String
    ) -> String {
        authorizeBase + (authorizeBase.contains("?") ? "&" : "?")
            + formEncode([
                ("response_type", "code"), ("client_id", clientID), ("redirect_uri", redirectURI), ("scope", scope),
                ("state", state), ("code_challenge", codeChallenge), ("code_challenge_method", "S256"),
            ])
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
