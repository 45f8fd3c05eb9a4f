public import Redis
import Synchronization

/// Reads and writes connections in Redis (`kr:{<account_id>}:conn`), encrypting every secret with
/// AES-256-GCM before it leaves the process. Each ciphertext is bound to its account and field, and
/// carries the id of the key that made it.
public struct CredentialStore: Sendable {
    /// The Redis client.
    public let redis: RedisClient
    /// Encryption keys.
    public let keys: EncryptionKeyRing

    /// Creates a store.
    public init(redis: RedisClient, keys: EncryptionKeyRing) {
        self.redis = redis
        self.keys = keys
    }

    static let secretFields = ["api_key", "access_token", "refresh_token"]

    /// Replaces the whole hash and bumps `version` atomically; returns the new version. A `version` that is not a
    /// whole number the relay could have written (`abc`, `1e99`) restarts at 1, so reconnecting mends such a hash
    /// (it made the script fail, and no fenced write ever matches it).
    static let replaceScript = RedisScript(
        """
        -- A key of another type (written by something else) is replaced too, from version 1.
        local version = 0
        if redis.call('TYPE', KEYS[1]).ok == 'hash' then
            version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
        end
        if not version or version < 0 or version >= 2^53 or version % 1 ~= 0 then version = 0 end
        version = version + 1
        redis.call('DEL', KEYS[1])
        redis.call('HSET', KEYS[1], 'version', version, unpack(ARGV))
        return version
        """)

    /// Sets the state, deletes the secrets and bumps `version`; returns the new version or 0 if absent. A key of
    /// another type than a hash (``CredentialUnreadable/Reason/notAHash``) holds nothing to keep: it is deleted.
    static let changeStateScript = RedisScript(
        """
        local kind = redis.call('TYPE', KEYS[1]).ok
        if kind == 'none' then return 0 end
        if kind ~= 'hash' then
            redis.call('DEL', KEYS[1])
            return 1
        end
        local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
        redis.call('HDEL', KEYS[1], 'api_key', 'access_token', 'refresh_token')
        redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated_at', ARGV[2])
        return version
        """)

    /// Commits refreshed OAuth tokens only if `version` is still the one read before refreshing and the
    /// connection is still `connected` (fencing: a stalled refresher never overwrites newer tokens).
    /// ARGV: expected version, then field/value pairs. Returns the new version, or 0 when fenced off. A hash
    /// without `version` is at version 0 (as ``decode(accountID:fields:)`` reads it), here and in every fenced script.
    static let commitTokensScript = RedisScript(
        """
        if (redis.call('HGET', KEYS[1], 'version') or '0') ~= ARGV[1] then return 0 end
        if redis.call('HGET', KEYS[1], 'state') ~= 'connected' then return 0 end
        local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
        redis.call('HSET', KEYS[1], unpack(ARGV, 2))
        return version
        """)

    /// Moves a `connected` connection at the expected version to `reauth_required`, deletes its tokens and
    /// writes the caller's marker (`reauth_by`, ARGV[3]). Returns the new version, or 0 when the version moved or
    /// the state was already changed (so exactly one caller wins and announces it). A caller that runs it again
    /// with the same marker (its reply was lost: a connection failure, a Redis Cluster failover retry) gets the
    /// version back, so it still knows it made the change and announces it.
    static let markReauthScript = RedisScript(
        """
        local state = redis.call('HGET', KEYS[1], 'state')
        if state == 'reauth_required' and redis.call('HGET', KEYS[1], 'reauth_by') == ARGV[3] then
            return tonumber(redis.call('HGET', KEYS[1], 'version'))
        end
        if (redis.call('HGET', KEYS[1], 'version') or '0') ~= ARGV[1] then return 0 end
        if state ~= 'connected' then return 0 end
        local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
        redis.call('HDEL', KEYS[1], 'api_key', 'access_token', 'refresh_token')
        redis.call('HSET', KEYS[1], 'state', 'reauth_required', 'updated_at', ARGV[2], 'reauth_by', ARGV[3])
        return version
        """)

    /// Re-encrypts secrets in place (`connections rekey`): writes the field/value pairs and bumps `version` only
    /// if `version` is still the one the caller read and no token refresh holds the account's lock (a refresh
    /// in flight would otherwise be fenced off by the new version and lose a rotated refresh token).
    /// `updated_at` is left alone: the keep-alive sweep reads it as the time of the last token refresh.
    /// KEYS: connection, lock. ARGV: expected version, then field/value pairs.
    /// Returns the new version, 0 when the version moved (or the hash is gone), -1 when the lock is held.
    static let resealScript = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        if (redis.call('HGET', KEYS[1], 'version') or '0') ~= ARGV[1] then return 0 end
        if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
        local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
        redis.call('HSET', KEYS[1], unpack(ARGV, 2))
        return version
        """)

    /// What ``reseal(accountID:expectedVersion:fields:)`` did.
    public enum ResealOutcome: Sendable, Hashable {
        /// Written; the connection's new version.
        case written(version: Int64)
        /// Another writer changed the connection since it was read (or deleted it): nothing was written.
        case versionMoved
        /// A token refresh holds the account's lock: nothing was written; try again shortly.
        case refreshInProgress
    }

    /// Writes already-sealed secret fields (`kid:ciphertext`) and `key_id`, version-checked like every other
    /// write (see ``resealScript``): a concurrent token refresh is never overwritten.
    public func reseal(
        accountID: String, expectedVersion: Int64, fields: [String: SealedSecret]
    ) async throws -> ResealOutcome {
        var arguments = [String(expectedVersion), "key_id", keys.currentKeyID]
        for name in Self.secretFields {
            if let sealed = fields[name] { arguments += [name, sealed.stored] }
        }
        let result = try await redis.run(
            Self.resealScript, keys: [RedisKeys.connection(accountID), RedisKeys.lock(accountID)],
            arguments: arguments)
        let version = result.int ?? 0
        if version > 0 { return .written(version: version) }
        return version < 0 ? .refreshInProgress : .versionMoved
    }

    /// One `SCAN` page over the connection hashes (`MATCH kr:{<accounts>}:conn`, by default `kr:{*}:conn`): the
    /// next cursor ("0" when done) and the account ids of the page. A resumable walk: pass the returned cursor
    /// to continue. `accounts` is a Redis glob over account ids (`*`, `?`, `[…]`).
    public func scanPage(
        cursor: String, count: Int, accounts: String = "*"
    ) async throws -> (cursor: String, accountIDs: [String]) {
        let match = RedisKeys.connection(accounts)
        let reply = try await redis.send(["SCAN", cursor, "MATCH", match, "COUNT", String(max(1, count))])
        guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let batch = parts[1].array else {
            throw RedisError(
                code: .protocolError, message: "SCAN answered \(reply), not a cursor and keys", isRetriable: false)
        }
        return (next, batch.compactMap { $0.string.flatMap(KeepAliveService.accountID(fromConnectionKey:)) })
    }

    /// The raw hash of a connection (secrets still sealed; empty when absent), for the key tools.
    public func loadSealed(accountID: String) async throws -> [String: String] {
        try await redis.hashGetAll(RedisKeys.connection(accountID))
    }

    /// Stores refreshed tokens if the connection is still at `expectedVersion` (see ``commitTokensScript``).
    /// Returns the new version, or nil when another writer got there first.
    public func commitRefreshedTokens(
        accountID: String, expectedVersion: Int64, accessToken: String, refreshToken: String?, expiresAt: Int64,
        scope: String?
    ) async throws -> Int64? {
        let context = RedisKeys.connection(accountID)
        var arguments = [
            String(expectedVersion), "key_id", keys.currentKeyID, "expires_at", String(expiresAt), "updated_at",
            Timestamp.now(), "access_token", try keys.seal(accessToken, context: context + "#access_token").stored,
        ]
        if let refreshToken {
            arguments += ["refresh_token", try keys.seal(refreshToken, context: context + "#refresh_token").stored]
        }
        if let scope { arguments += ["scope", scope] }
        let result = try await redis.run(Self.commitTokensScript, keys: [context], arguments: arguments)
        let version = result.int ?? 0
        return version > 0 ? version : nil
    }

    /// Marks a connection `reauth_required` if it is still `connected` at `expectedVersion`; true for the one
    /// caller that made the change, also when it calls again with the same `marker` (unique per caller) because
    /// it did not get the first reply.
    public func markReauthRequired(accountID: String, expectedVersion: Int64, marker: String) async throws -> Bool {
        let result = try await redis.run(
            Self.markReauthScript, keys: [RedisKeys.connection(accountID)],
            arguments: [String(expectedVersion), Timestamp.now(), marker])
        return (result.int ?? 0) > 0
    }

    /// Loads and decrypts a connection; nil when the account was never connected. Throws
    /// ``CredentialUnreadable`` when a secret cannot be decrypted (not retriable), other errors for Redis.
    public func load(accountID: String) async throws -> ConnectionRecord? {
        let fields: [String: String]
        do {
            fields = try await redis.hashGetAll(RedisKeys.connection(accountID))
        } catch let error as RedisError where error.serverErrorPrefix == "WRONGTYPE" {
            // Not an outage: retrying cannot help until the record is replaced (a reconnect does).
            throw CredentialUnreadable(accountID: accountID, field: "connection", keyID: "", reason: .notAHash)
        }
        guard !fields.isEmpty else { return nil }
        return try decode(accountID: accountID, fields: fields)
    }

    /// Stores a connection made with a private API key (replacing any earlier one).
    @discardableResult
    public func saveAPIKey(
        accountID: String, apiKey: String, klaviyoAccountID: String, klaviyoAccountName: String?
    )
        async throws -> ConnectionRecord
    {
        let now = Timestamp.now()
        var record = ConnectionRecord(
            accountID: accountID, method: .apiKey, state: .connected, klaviyoAccountID: klaviyoAccountID,
            klaviyoAccountName: klaviyoAccountName, connectedAt: now, updatedAt: now, apiKey: apiKey)
        record.version = try await replace(record)
        return record
    }

    /// Writes a whole record (secrets encrypted) and returns its new version.
    public func replace(_ record: ConnectionRecord) async throws -> Int64 {
        var arguments: [String] = [
            "method", record.method.rawValue, "state", record.state.rawValue, "key_id", keys.currentKeyID,
        ]
        func add(_ name: String, _ value: String?) {
            if let value { arguments += [name, value] }
        }
        add("klaviyo_account_id", record.klaviyoAccountID)
        add("klaviyo_account_name", record.klaviyoAccountName)
        add("scope", record.scope)
        add("expires_at", record.expiresAt.map(String.init))
        add("connected_at", record.connectedAt)
        add("updated_at", record.updatedAt ?? Timestamp.now())
        let context = RedisKeys.connection(record.accountID)
        add("api_key", try record.apiKey.map { try keys.seal($0, context: context + "#api_key").stored })
        add("access_token", try record.accessToken.map { try keys.seal($0, context: context + "#access_token").stored })
        add(
            "refresh_token",
            try record.refreshToken.map { try keys.seal($0, context: context + "#refresh_token").stored })
        let result = try await redis.run(Self.replaceScript, keys: [context], arguments: arguments)
        return result.int ?? 0
    }

    /// Marks a connection `disconnected` or `reauth_required` and deletes its secrets. Returns false when the
    /// account had no connection.
    @discardableResult
    public func changeState(accountID: String, to state: ConnectionRecord.State) async throws -> Bool {
        let result = try await redis.run(
            Self.changeStateScript, keys: [RedisKeys.connection(accountID)],
            arguments: [state.rawValue, Timestamp.now()])
        return (result.int ?? 0) > 0
    }

    /// Deletes everything stored for a connection.
    public func delete(accountID: String) async throws {
        _ = try await redis.delete([RedisKeys.connection(accountID)])
    }

    /// Decrypts a stored hash. A secret that cannot be read throws ``CredentialUnreadable`` naming the account,
    /// the field and the key id (never material): an unknown key id is `.unknownKeyID`; a field that is not
    /// `kid:base64`, or whose ciphertext does not authenticate, is `.decryptionFailed`.
    public func decode(accountID: String, fields: [String: String]) throws(CredentialUnreadable) -> ConnectionRecord {
        let context = RedisKeys.connection(accountID)
        func secret(_ name: String) throws(CredentialUnreadable) -> String? {
            guard let stored = fields[name] else { return nil }
            guard let sealed = SealedSecret(stored: stored),
                EncryptionKeyRing.isWellFormedKeyID(Substring(sealed.keyID))
            else {
                throw CredentialUnreadable(accountID: accountID, field: name, keyID: "", reason: .decryptionFailed)
            }
            guard keys.holds(sealed.keyID) else {
                throw CredentialUnreadable(
                    accountID: accountID, field: name, keyID: sealed.keyID, reason: .unknownKeyID)
            }
            do {
                return try keys.open(sealed, context: context + "#" + name)
            } catch {
                throw CredentialUnreadable(
                    accountID: accountID, field: name, keyID: sealed.keyID, reason: .decryptionFailed)
            }
        }
        return ConnectionRecord(
            accountID: accountID,
            method: ConnectionRecord.Method(rawValue: fields["method"] ?? "") ?? .apiKey,
            state: ConnectionRecord.State(rawValue: fields["state"] ?? "") ?? .disconnected,
            klaviyoAccountID: fields["klaviyo_account_id"], klaviyoAccountName: fields["klaviyo_account_name"],
            scope: fields["scope"], expiresAt: fields["expires_at"].flatMap { Int64($0) },
            version: fields["version"].flatMap { Int64($0) } ?? 0, connectedAt: fields["connected_at"],
            updatedAt: fields["updated_at"], apiKey: try secret("api_key"), accessToken: try secret("access_token"),
            refreshToken: try secret("refresh_token"))
    }
}

/// A short-lived per-process cache of decrypted connections, so a busy consumer does not read and decrypt
/// the same hash for every command. Entries live `ttl`; ``invalidate(_:)`` drops one at once (after a 401).
///
/// A connection that cannot be decrypted (``CredentialUnreadable``) is remembered for `ttl` too, so a flood of
/// one broken account's commands costs one Redis read per `ttl`, and never longer: a customer who reconnects
/// (new secrets under the current key) is seen within `ttl`. Redis errors are never cached.
public final class CredentialCache: Sendable {
    struct Entry {
        var result: Result<ConnectionRecord?, CredentialUnreadable>
        var fetchedAt: ContinuousClock.Instant

        var record: ConnectionRecord? { try? result.get() }
    }

    let store: CredentialStore
    let ttl: Duration
    let entries = Mutex<[String: Entry]>([:])

    /// Creates a cache over a store.
    public init(store: CredentialStore, ttl: Duration) {
        self.store = store
        self.ttl = ttl
    }

    /// The connection of an account (nil: never connected). Throws ``CredentialUnreadable`` (cached for `ttl`)
    /// or a Redis error (not cached).
    public func connection(for accountID: String) async throws -> ConnectionRecord? {
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[accountID] }), now - entry.fetchedAt < ttl {
            return try entry.result.get()
        }
        let result: Result<ConnectionRecord?, CredentialUnreadable>
        do {
            result = .success(try await store.load(accountID: accountID))
        } catch let unreadable as CredentialUnreadable {
            result = .failure(unreadable)
        }
        entries.withLock { $0[accountID] = Entry(result: result, fetchedAt: now) }
        return try result.get()
    }

    /// Replaces an account's cached connection with a newer one (after a token refresh); an older version
    /// never replaces a newer one.
    public func store(_ record: ConnectionRecord) {
        entries.withLock { entries in
            if let current = entries[record.accountID]?.record, current.version > record.version { return }
            entries[record.accountID] = Entry(result: .success(record), fetchedAt: ContinuousClock.now)
        }
    }

    /// Forgets an account's cached connection.
    public func invalidate(_ accountID: String) {
        _ = entries.withLock { $0.removeValue(forKey: accountID) }
    }
}
