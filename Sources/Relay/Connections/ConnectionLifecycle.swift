public import Klaviyo
public import Logging

/// Connect, replace and disconnect (docs/operations.md, `serve`; docs/contracts.md, "Connection events"), shared by
/// `serve` and, later, the `connection.disconnect` command: disconnecting an OAuth connection revokes its refresh token
/// at `/oauth/revoke` (`token_type_hint=refresh_token`), deletes the stored secrets, sets the state to `disconnected`
/// and publishes `connection.disconnected`; connecting replaces the previous connection under the account's refresh
/// lock (an OAuth connection replaced by an API key, or by OAuth to another Klaviyo account, is then revoked) and
/// publishes `connection.connected`.
public struct ConnectionLifecycle: Sendable {
    /// Why a disconnect did not happen.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// `klaviyo_unavailable`, `oauth_disabled`, `connection_busy` (a token refresh held the account's lock
        /// for longer than its TTL).
        public var code: String
        /// One line for people (never a secret).
        public var description: String
    }

    /// Publishes a connection event on `klaviyo.connections`.
    public typealias Publisher = @Sendable (ConnectionEvent) async throws -> Void

    /// Points where tests observe the lifecycle.
    public struct Hooks: Sendable {
        /// A change found the account's refresh lock held and waits for it.
        public var waitingForLock: (@Sendable (String) async -> Void)?

        /// No hooks.
        public init(waitingForLock: (@Sendable (String) async -> Void)? = nil) {
            self.waitingForLock = waitingForLock
        }
    }

    let store: CredentialStore
    let oauth: KlaviyoOAuthClient?
    let publish: Publisher
    let logger: Logger
    /// The account's refresh lock, held from reading the refresh token to the state change (see ``AccountLock``).
    let lock: AccountLock

    /// Creates the lifecycle; `oauth` is nil when OAuth is not configured (OAuth connections then cannot be
    /// revoked and disconnecting one fails with `oauth_disabled`). `lockTTL` is the token manager's
    /// (`RELAY_TOKEN_LOCK_TTL`).
    public init(
        store: CredentialStore, oauth: KlaviyoOAuthClient?, lockTTL: Duration = .seconds(15), hooks: Hooks = Hooks(),
        logger: Logger, publish: @escaping Publisher
    ) {
        self.store = store
        self.oauth = oauth
        self.logger = logger
        self.publish = publish
        self.lock = AccountLock(redis: store.redis, ttl: lockTTL, hooks: .init(waiting: hooks.waitingForLock))
    }

    /// Connects with a private API key; a previous OAuth connection is revoked at Klaviyo once the new key
    /// is validated and stored (so a bad key never loses a working connection). The previous connection is read
    /// and replaced under the account's refresh lock, so its refresh token is the latest one (no refresh can
    /// rotate it in between, and none starts after the replace).
    public func connectAPIKey(
        accountID: String, apiKey: String, connector: APIKeyConnector
    ) async throws -> ConnectionRecord {
        let validated: APIKeyConnector.ValidatedKey
        do {
            validated = try await connector.validate(accountID: accountID, apiKey: apiKey)
        } catch {
            throw logged(error, accountID: accountID)
        }
        let previous: ConnectionRecord?
        let record: ConnectionRecord
        do {
            (previous, record) = try await replaceHoldingLock(accountID: accountID) {
                try await connector.save(validated)
            }
        } catch let busy as AccountLock.Busy {
            throw APIKeyConnector.Failure(
                code: "connection_busy",
                description: "The key is valid but \(busy); nothing was stored. Try again in a few seconds.",
                isRetriable: true)
        } catch let failure as APIKeyConnector.Failure {
            throw logged(failure, accountID: accountID)
        }
        if let previous, previous.method == .oauth, let refreshToken = previous.refreshToken {
            await revokeBestEffort(refreshToken, accountID: accountID)
        }
        await announce(
            ConnectionEvent(accountID: accountID, state: .connected, reason: "connected with a private API key"))
        return record
    }

    /// Reads the previous connection (nil when none or unreadable) and stores its replacement (`store`), holding
    /// the account's refresh lock: the previous refresh token is the latest one, and no refresh starts after.
    func replaceHoldingLock(
        accountID: String, _ store: () async throws -> ConnectionRecord
    ) async throws -> (previous: ConnectionRecord?, record: ConnectionRecord) {
        try await lock.run(accountID: accountID) {
            let previous = try? await self.store.load(accountID: accountID)
            return (previous, try await store())
        }
    }

    /// Logs what went wrong underneath a refusal (the person sees only its fixed description).
    func logged(_ failure: APIKeyConnector.Failure, accountID: String) -> APIKeyConnector.Failure {
        if let underlying = failure.underlying {
            logger.warning(
                "could not connect with a private API key",
                metadata: [
                    LogKeys.accountID: "\(accountID)", LogKeys.errorCode: "\(failure.code)",
                    LogKeys.errorDetail: "\(underlying)",
                ])
        }
        return failure
    }

    /// Connects with OAuth from the callback's `code` and its consumed state: exchanges the code and reads the
    /// Klaviyo account (``OAuthConnector/exchange(code:context:)``), then reads the previous connection and
    /// replaces it under the account's refresh lock, as ``connectAPIKey(accountID:apiKey:connector:)`` does, and
    /// publishes `connection.connected`. A previous OAuth connection is then revoked at Klaviyo (best effort) only
    /// when it was to another Klaviyo account (``revokesReplacedGrant(_:by:)``).
    public func connectOAuth(
        code: String, context: OAuthConnector.StateContext, connector: OAuthConnector
    ) async throws -> ConnectionRecord {
        let authorized = try await connector.exchange(code: code, context: context)
        let accountID = authorized.accountID
        let previous: ConnectionRecord?
        let record: ConnectionRecord
        do {
            (previous, record) = try await replaceHoldingLock(accountID: accountID) {
                var stored = authorized
                stored.version = try await store.replace(authorized)
                return stored
            }
        } catch let busy as AccountLock.Busy {
            // The grant stays installed at Klaviyo unknown to us: revoking it could uninstall the app from a
            // Klaviyo account that the stored connection (or another account's) still uses.
            logger.warning(
                "Klaviyo authorized a connection that could not be stored: the account's lock was held",
                metadata: [LogKeys.accountID: "\(accountID)"])
            throw OAuthConnector.Failure(
                code: "connection_busy",
                description: "Klaviyo authorized the connection but \(busy); nothing was stored. Connect again in a "
                    + "few seconds.")
        }
        if let previous, Self.revokesReplacedGrant(previous, by: record), let refreshToken = previous.refreshToken {
            await revokeBestEffort(refreshToken, accountID: accountID)
        }
        await announce(ConnectionEvent(accountID: accountID, state: .connected, reason: "connected with OAuth"))
        return record
    }

    /// Finishes a flow started with `connections oauth-url` from the `code` and `state` Klaviyo redirected back
    /// with (`connections oauth-callback`): takes the state (single use), then connects as `serve`'s callback does
    /// (``connectOAuth(code:context:connector:)``: under the account's lock, revoking a replaced grant to another
    /// Klaviyo account, publishing `connection.connected`). A flow started by `serve` is bound to the browser that
    /// started it and is refused here (`browser_bound`), as `serve` refuses it from another browser.
    public func completeOAuth(code: String, state: String, connector: OAuthConnector) async throws -> ConnectionRecord {
        guard let context = try await connector.takeState(state) else {
            throw OAuthConnector.Failure(
                code: "unknown_state",
                description: "This sign-in link has expired or was already used. Start connecting Klaviyo again.")
        }
        guard context.browserBinding == nil else {
            logger.warning(
                "OAuth callback of a browser's flow finished outside that browser; refused",
                metadata: [LogKeys.accountID: "\(context.accountID)"])
            throw OAuthConnector.Failure(
                code: "browser_bound",
                description: "This sign-in was started in a browser and can only be finished there; nothing was "
                    + "stored. Start connecting Klaviyo again.")
        }
        return try await connectOAuth(code: code, context: context, connector: connector)
    }

    /// Whether an OAuth connection replacing `previous` revokes `previous`'s refresh token: only when `previous`
    /// is an OAuth connection to another Klaviyo account. Klaviyo keeps one install of an app per Klaviyo account
    /// (klaviyo-sim does the same: `installByClientAndAccount`); authorizing it again adds tokens to that install,
    /// and revoking any of its refresh tokens uninstalls it, the new tokens with it. So a reconnect to the same
    /// Klaviyo account (same id) keeps the old refresh token unrevoked: it belongs to the install the new tokens
    /// use. When either Klaviyo account id is unknown nothing is revoked either: an extra live token is less harm
    /// than the connection just made going dead.
    static func revokesReplacedGrant(_ previous: ConnectionRecord, by replacement: ConnectionRecord) -> Bool {
        guard previous.method == .oauth, let token = previous.refreshToken, token != replacement.refreshToken,
            let replaced = previous.klaviyoAccountID, let current = replacement.klaviyoAccountID
        else { return false }
        return replaced != current
    }

    /// Disconnects an account. Returns false when there was nothing to disconnect. A revoke that Klaviyo
    /// answers with `invalid_grant` (already revoked) still disconnects; a transient failure throws and keeps
    /// the connection, so the user can try again. A connection whose secrets cannot be decrypted
    /// (``CredentialUnreadable``) cannot be revoked at Klaviyo from here; it is disconnected locally (its sealed
    /// secrets deleted) with a warning.
    @discardableResult
    public func disconnect(accountID: String, reason: String = "disconnected by the user") async throws -> Bool {
        // Read → revoke → state change under the refresh lock: the token revoked is the one Klaviyo holds.
        let disconnected: Bool
        do {
            disconnected = try await disconnectHoldingLock(accountID: accountID)
        } catch let busy as AccountLock.Busy {
            throw Failure(
                code: "connection_busy", description: "\(busy); still connected. Try again in a few seconds.")
        }
        guard disconnected else { return false }
        await announce(ConnectionEvent(accountID: accountID, state: .disconnected, reason: reason))
        return true
    }

    func disconnectHoldingLock(accountID: String) async throws -> Bool {
        try await lock.run(accountID: accountID) { () async throws -> Bool in
            let loaded: ConnectionRecord?
            do {
                loaded = try await store.load(accountID: accountID)
            } catch let unreadable as CredentialUnreadable {
                logger.warning(
                    "disconnecting a connection whose secrets cannot be decrypted: the Klaviyo app stays installed",
                    metadata: [LogKeys.accountID: "\(accountID)", LogKeys.keyID: "\(unreadable.keyID)"])
                return try await store.changeState(accountID: accountID, to: .disconnected)
            }
            guard let record = loaded, record.state != .disconnected else { return false }
            if record.method == .oauth, let refreshToken = record.refreshToken {
                try await revoke(refreshToken, accountID: accountID)
            }
            return try await store.changeState(accountID: accountID, to: .disconnected)
        }
    }

    /// Revokes the refresh token (the app's install) at Klaviyo; `invalid_grant` means it already was. The call
    /// ends within 60 % of the lock's TTL, like a token refresh, so it never outlives the lock.
    func revoke(_ refreshToken: String, accountID: String) async throws {
        guard let oauth else {
            throw Failure(
                code: "oauth_disabled",
                description: "OAuth is not configured here, so the Klaviyo app cannot be uninstalled; nothing changed.")
        }
        do {
            try await oauth.revoke(refreshToken: refreshToken, timeout: lock.ttl * 0.6)
        } catch  where error.isInvalidGrant {
            logger.info("refresh token was already revoked", metadata: [LogKeys.accountID: "\(accountID)"])
        } catch {
            logger.warning(
                "could not revoke the refresh token at Klaviyo; still connected",
                metadata: [LogKeys.accountID: "\(accountID)", LogKeys.errorDetail: "\(error)"])
            throw Failure(
                code: "klaviyo_unavailable",
                description: "Could not reach Klaviyo to uninstall the app just now; still connected. Try again.")
        }
    }

    func revokeBestEffort(_ refreshToken: String, accountID: String) async {
        guard let oauth else { return }
        do {
            try await oauth.revoke(refreshToken: refreshToken)
        } catch {
            logger.warning(
                "could not revoke the replaced OAuth connection",
                metadata: ["account_id": "\(accountID)", "error": "\(error)"])
        }
    }

    func announce(_ event: ConnectionEvent) async {
        do {
            try await publish(event)
        } catch {
            logger.error(
                "could not publish connection event",
                metadata: ["account_id": "\(event.accountID)", "event": "\(event.routingKey)", "error": "\(error)"])
        }
    }

    /// The status the dashboard sees (never a secret): method, state, Klaviyo account, scopes, token
    /// expiry, and the sync status hash `kr:{<account>}:sync` when present (its `history`, a JSON array,
    /// is cut to the last `historyLimit` entries).
    /// A connection whose secrets cannot be read (``CredentialUnreadable``) has `"state": "reconnect_needed"`.
    public func status(accountID: String, historyLimit: Int = 20) async throws -> JSONValue {
        var fields: [String: JSONValue] = ["account_id": .string(accountID)]
        var loaded: ConnectionRecord?
        var unreadable = false
        do { loaded = try await store.load(accountID: accountID) } catch is CredentialUnreadable { unreadable = true }
        if unreadable {
            fields["connected"] = .bool(false)
            fields["state"] = "reconnect_needed"
        } else if let record = loaded {
            fields["connected"] = .bool(record.state == .connected)
            fields["method"] = .string(record.method.rawValue)
            fields["state"] = .string(record.state.rawValue)
            fields["klaviyo_account_id"] = record.klaviyoAccountID.map(JSONValue.string) ?? .null
            fields["klaviyo_account_name"] = record.klaviyoAccountName.map(JSONValue.string) ?? .null
            fields["scopes"] =
                record.scope.map { .array($0.split(separator: " ").map { .string(String($0)) }) } ?? .null
            fields["token_expires_at"] = record.expiresAt.map(JSONValue.int) ?? .null
            fields["connected_at"] = record.connectedAt.map(JSONValue.string) ?? .null
            fields["updated_at"] = record.updatedAt.map(JSONValue.string) ?? .null
        } else {
            fields["connected"] = .bool(false)
            fields["state"] = "not_connected"
        }
        let sync = try await store.redis.hashGetAll(RedisKeys.sync(accountID))
        var syncFields: [String: JSONValue] = [:]
        for (name, value) in sync {
            if name == "history", let parsed = try? JSONValue.parse(Array(value.utf8)), let entries = parsed.arrayValue
            {
                syncFields[name] = .array(Array(entries.suffix(historyLimit)))
            } else {
                syncFields[name] = .string(value)
            }
        }
        fields["last_sync_success_at"] = syncFields["last_success_at"] ?? .null
        fields["last_sync_error"] = syncFields["last_error"] ?? .null
        fields["sync"] = syncFields.isEmpty ? .null : .object(syncFields)
        return .object(fields)
    }
}
