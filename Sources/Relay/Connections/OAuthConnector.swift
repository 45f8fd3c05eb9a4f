import Crypto
import Foundation
public import Klaviyo
import Redis

/// Connects an account with OAuth2 + PKCE (Klaviyo's OAuth guide; docs/operations.md): ``start(accountID:)`` makes the
/// authorize URL and keeps the verifier under a random single-use `state` in `kr:oauth:state:<state>` (short TTL);
/// ``takeState(_:)`` consumes the state and ``exchange(code:context:)`` exchanges the code and identifies the Klaviyo
/// account. ``ConnectionLifecycle`` stores the tokens (encrypted) under the account's lock, for `serve`'s callback and
/// for `connections oauth-callback` alike.
///
/// A flow started from a browser is bound to that browser: `serve` gives it a random nonce in an HttpOnly cookie
/// and the state keeps only the nonce's SHA-256 (``browserBinding(for:)``); the callback completes the flow only
/// when the same browser brings the nonce back (``StateContext/isBound(to:)``).
///
/// Starts are limited per account (``StartLimit``, a fixed-window counter in `kr:{<account_id>}:oauth_starts`
/// that expires with its window), so a start link opened in a loop cannot fill Redis with states: beyond the
/// limit ``start(accountID:scope:returnTo:browserBinding:linkExpires:)`` throws `too_many_starts` and stores
/// nothing.
public struct OAuthConnector: Sendable {
    /// Why connecting failed (a human-readable description, never a secret).
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// `unknown_state`, `invalid_grant`, `klaviyo_unavailable`, `oauth_error`, `too_many_starts`,
        /// `connection_busy` (set by ``ConnectionLifecycle``: a token refresh held the account's lock),
        /// `browser_bound` (``ConnectionLifecycle/completeOAuth(code:state:connector:)``: the flow belongs to a
        /// browser).
        public var code: String
        /// One line for people.
        public var description: String
        /// For `too_many_starts`: when the window ends.
        public var retryAfter: Duration? = nil
    }

    /// At most `maxStarts` flows started per account in each `window`.
    public struct StartLimit: Sendable, Hashable {
        /// Starts allowed per window.
        public var maxStarts: Int
        /// Length of the window (it starts with the first start).
        public var window: Duration

        /// Creates a limit.
        public init(maxStarts: Int, window: Duration) {
            self.maxStarts = maxStarts
            self.window = window
        }

        /// 20 starts per account per 10 minutes (`RELAY_OAUTH_START_LIMIT` sets the count): the window is a
        /// state's lifetime, so an account holds at most 40 live states (two windows' worth) at any time.
        public static let standard = StartLimit(maxStarts: 20, window: .seconds(600))
    }

    /// The least-privilege scopes for this relay's commands (Klaviyo's OAuth scopes).
    public static let defaultScopes =
        "accounts:read profiles:read profiles:write lists:read lists:write events:write subscriptions:write "
        + "campaigns:read campaigns:write flows:read flows:write"

    let oauth: KlaviyoOAuthClient
    let klaviyo: KlaviyoClient
    let store: CredentialStore
    let authorizeURL: String
    let redirectURI: String
    let stateTTL: Duration
    let startLimit: StartLimit?

    /// Creates a connector; `startLimit` nil starts every flow (the operator's CLI); `serve` passes its
    /// configured limit (``StartLimit/standard`` by default).
    public init(
        oauth: KlaviyoOAuthClient, klaviyo: KlaviyoClient, store: CredentialStore, authorizeURL: String,
        redirectURI: String, stateTTL: Duration = .seconds(600), startLimit: StartLimit? = nil
    ) {
        self.oauth = oauth
        self.klaviyo = klaviyo
        self.store = store
        self.authorizeURL = authorizeURL
        self.redirectURI = redirectURI
        self.stateTTL = stateTTL
        self.startLimit = startLimit
    }

    /// The start counter of an account (under the account's hash tag).
    public static func startsKey(_ accountID: String) -> String { "kr:{\(accountID)}:oauth_starts" }

    /// The lifetime of a state (and of the browser cookie bound to it).
    public var stateLifetime: Duration { stateTTL }

    /// What the state keeps of a browser nonce: its SHA-256, hex.
    public static func browserBinding(for nonce: String) -> String {
        SHA256.hash(data: Data(nonce.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Starts a connection: returns the URL to send the user to, and its `state`.
    /// `returnTo` (where the browser goes afterwards) is kept with the state; so are `browserBinding`
    /// (``browserBinding(for:)`` of the browser's cookie nonce) and `linkExpires` (the expiry of the signed link
    /// that started the flow, so a "connect again" link never outlives it). Beyond the ``StartLimit``, throws
    /// `too_many_starts` (with ``Failure/retryAfter``) and stores nothing.
    public func start(
        accountID: String, scope: String = OAuthConnector.defaultScopes, returnTo: String? = nil,
        browserBinding: String? = nil, linkExpires: Int64? = nil
    ) async throws -> (url: String, state: String) {
        if let startLimit {
            let window = FixedWindow(limit: startLimit.maxStarts, length: startLimit.window)
            if let wait = try await window.hit(Self.startsKey(accountID), redis: store.redis) {
                throw Failure(
                    code: "too_many_starts",
                    description: "Connecting Klaviyo was started too many times for this account in a short time. "
                        + "Wait \(FixedWindow.describe(wait)) and try again.",
                    retryAfter: wait)
            }
        }
        let verifier = PKCE.makeVerifier()
        let state = PKCE.randomToken()
        var fields: [String: JSONValue] = [
            "account_id": .string(accountID), "code_verifier": .string(verifier), "redirect_uri": .string(redirectURI),
            "created_at": .string(Timestamp.now()),
        ]
        if let returnTo { fields["return_to"] = .string(returnTo) }
        if let browserBinding { fields["browser_binding"] = .string(browserBinding) }
        if let linkExpires { fields["link_expires"] = .int(linkExpires) }
        let context = JSONValue.object(fields)
        let stored = try await store.redis.set(
            RedisKeys.oauthState(state), String(decoding: context.jsonBytes(), as: UTF8.self), expiry: stateTTL,
            onlyIfAbsent: true)
        guard stored else {
            throw Failure(code: "state_collision", description: "could not reserve a fresh state; try again")
        }
        let url = KlaviyoOAuthClient.authorizeURL(
            authorizeBase: authorizeURL, clientID: oauth.clientID, redirectURI: redirectURI, scope: scope, state: state,
            codeChallenge: PKCE.challenge(for: verifier))
        return (url, state)
    }

    /// Reads and deletes a state in one step (single use).
    static let takeStateScript = RedisScript(
        """
        local value = redis.call('GET', KEYS[1])
        if value then redis.call('DEL', KEYS[1]) end
        return value
        """)

    /// What was kept under a `state` by ``start(accountID:scope:returnTo:)``.
    public struct StateContext: Sendable, Hashable {
        /// HeroPixel account id.
        public var accountID: String
        /// PKCE verifier.
        public var codeVerifier: String
        /// The redirect URI sent to authorize.
        public var redirectURI: String
        /// Where the browser goes afterwards, if given.
        public var returnTo: String?
        /// SHA-256 (hex) of the nonce in the cookie of the browser that started the flow; nil when the flow was
        /// not started from a browser (`connections oauth-url`).
        public var browserBinding: String?
        /// Expiry (Unix seconds) of the signed link that started the flow, if any.
        public var linkExpires: Int64?

        /// Whether the browser's cookie nonce is the one the flow was started with (constant time). A flow
        /// without a binding is bound to no browser.
        public func isBound(to nonce: String?) -> Bool {
            guard let browserBinding, let nonce, !nonce.isEmpty, nonce.utf8.count <= 256 else { return false }
            return constantTimeEquals(OAuthConnector.browserBinding(for: nonce), browserBinding)
        }
    }

    /// Reads and deletes a state (single use); nil when it is unknown, expired or already used.
    public func takeState(_ state: String) async throws -> StateContext? {
        guard !state.isEmpty, state.count <= 256 else { return nil }
        let reply = try await store.redis.run(Self.takeStateScript, keys: [RedisKeys.oauthState(state)], arguments: [])
        guard let text = reply.string, let context = try? JSONValue.parse(Array(text.utf8)),
            let accountID = context["account_id"]?.stringValue, let verifier = context["code_verifier"]?.stringValue,
            let redirect = context["redirect_uri"]?.stringValue
        else { return nil }
        var linkExpires: Int64?
        if case .int(let value)? = context["link_expires"] { linkExpires = value }
        return StateContext(
            accountID: accountID, codeVerifier: verifier, redirectURI: redirect,
            returnTo: context["return_to"]?.stringValue, browserBinding: context["browser_binding"]?.stringValue,
            linkExpires: linkExpires)
    }

    /// Exchanges the callback's `code` of an already consumed state and reads the Klaviyo account: the
    /// connection to store (version 0), not stored yet.
    public func exchange(code: String, context: StateContext) async throws -> ConnectionRecord {
        let accountID = context.accountID
        let verifier = context.codeVerifier
        let redirect = context.redirectURI
        let tokens: KlaviyoTokenResponse
        do {
            tokens = try await oauth.exchangeCode(code, codeVerifier: verifier, redirectURI: redirect)
        } catch {
            if error.isInvalidGrant {
                throw Failure(
                    code: "invalid_grant",
                    description:
                        "Klaviyo did not accept the authorization (it expired or was already used). Start again.")
            }
            throw Failure(
                code: error.isRetriable ? "klaviyo_unavailable" : "oauth_error",
                description: "Could not finish connecting with Klaviyo (\(error)); nothing was stored.")
        }
        let account: KlaviyoAccount
        do {
            account = try await klaviyo.getAccountPatiently(credential: .bearer(tokens.accessToken))
        } catch {
            throw Failure(
                code: "klaviyo_unavailable",
                description:
                    "Connected, but could not read the Klaviyo account (\(error)); nothing was stored. Try again.")
        }
        let now = Timestamp.now()
        return ConnectionRecord(
            accountID: accountID, method: .oauth, state: .connected, klaviyoAccountID: account.id,
            klaviyoAccountName: account.organizationName, scope: tokens.scope,
            expiresAt: Timestamp.nowSeconds() + tokens.expiresIn, connectedAt: now, updatedAt: now,
            accessToken: tokens.accessToken, refreshToken: tokens.refreshToken)
    }
}
