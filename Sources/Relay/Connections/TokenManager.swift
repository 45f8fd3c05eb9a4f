public import Klaviyo
public import Logging
import Redis
import Synchronization

/// `connection.*` events published to the `klaviyo.connections` exchange, routing key `connection.<state>`.
public struct ConnectionEvent: Sendable, Hashable {
    /// HeroPixel account id.
    public var accountID: String
    /// The new state (`reauth_required`, …).
    public var state: ConnectionRecord.State
    /// Why, in words (never a secret).
    public var reason: String
    /// When (RFC 3339).
    public var at: String

    /// Creates an event.
    public init(accountID: String, state: ConnectionRecord.State, reason: String, at: String = Timestamp.now()) {
        self.accountID = accountID
        self.state = state
        self.reason = reason
        self.at = at
    }

    /// `connection.<state>`.
    public var routingKey: String { "connection.\(state.rawValue)" }

    /// `{"account_id","state","reason","at"}`.
    public func encoded() -> [UInt8] {
        JSONValue.object([
            "account_id": .string(accountID), "state": .string(state.rawValue), "reason": .string(reason),
            "at": .string(at),
        ]).jsonBytes()
    }
}

/// Hands out valid OAuth access tokens and refreshes them, one refresh at a time per account across every
/// process (docs/architecture.md, step 4):
///
/// - in-process coalescing: one refresh task per account, everybody else awaits it;
/// - across processes: a Redis lock `kr:{<account>}:lock` (`SET NX PX` with a random owner token, released by
///   compare-and-delete in Lua); waiters poll the hash `version` with capped backoff and give up after
///   ``Settings/waitTimeout`` with a retryable ``Failure/unavailable(_:)``;
/// - fencing: new tokens are committed by a Lua script that checks the `version` read before refreshing, so a
///   refresher that stalled past its lock can never overwrite newer tokens;
/// - whatever `refresh_token` the response carries is stored (rotation);
/// - `invalid_grant` moves the connection to `reauth_required` once (atomically, version-checked) and the
///   one process that made the change publishes `connection.reauth_required`;
/// - a stored connection that cannot be decrypted throws ``CredentialUnreadable`` at once (never retried,
///   never a refresh call).
public final class TokenManager: Sendable {
    /// Tunables.
    public struct Settings: Sendable {
        /// Refresh when the access token expires within this margin (`RELAY_TOKEN_REFRESH_MARGIN`).
        public var refreshMargin: Duration = .seconds(300)
        /// Lifetime of the refresh lock (`RELAY_TOKEN_LOCK_TTL`); longer than a token call takes.
        public var lockTTL: Duration = .seconds(15)
        /// Longest a token call may take: 60 % of ``lockTTL``, so the call and the commit end while the lock is
        /// still ours. (Left to the HTTP timeout, 30 s, a slow answer outlived the lock: another process took it
        /// and refreshed with the refresh token the slow call had just rotated, got `invalid_grant`, and marked a
        /// healthy account `reauth_required`.)
        public var tokenCallTimeout: Duration { lockTTL * 0.6 }
        /// How long a caller waits for another refresher before failing retryably (`RELAY_TOKEN_WAIT_TIMEOUT`).
        public var waitTimeout: Duration = .seconds(20)
        /// First and longest pause between polls of `version` while another process holds the lock.
        public var pollInitial: Duration = .milliseconds(20)
        /// Longest pause between polls.
        public var pollMax: Duration = .milliseconds(400)

        /// Defaults.
        public init() {}
    }

    /// Why no token could be handed out.
    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// The grant is gone: the connection is (now) `reauth_required`.
        case reauthRequired(String)
        /// The account has no usable OAuth connection.
        case notConnected(String)
        /// Transient: the token endpoint or Redis failed, or another refresher took too long. Retry later.
        case unavailable(String)

        /// One line.
        public var description: String {
            switch self {
            case .reauthRequired(let detail): return "reauth required: \(detail)"
            case .notConnected(let detail): return "not connected: \(detail)"
            case .unavailable(let detail): return "token unavailable: \(detail)"
            }
        }
    }

    /// Points where tests may suspend a refresher (to freeze it past its lock TTL).
    public struct Hooks: Sendable {
        /// After the lock was taken, before the token call.
        public var afterLockAcquired: (@Sendable (String) async -> Void)?
        /// After the token call succeeded, before the fenced commit.
        public var beforeCommit: (@Sendable (String) async -> Void)?

        /// No hooks.
        public init(
            afterLockAcquired: (@Sendable (String) async -> Void)? = nil,
            beforeCommit: (@Sendable (String) async -> Void)? = nil
        ) {
            self.afterLockAcquired = afterLockAcquired
            self.beforeCommit = beforeCommit
        }
    }

    /// Counters (per process), for tests and logs.
    public struct Stats: Sendable, Hashable {
        /// Token calls made by this process.
        public var refreshCalls = 0
        /// Commits that won.
        public var committed = 0
        /// Commits rejected by the version fence.
        public var fenced = 0
        /// `invalid_grant` answers.
        public var invalidGrants = 0
    }

    let store: CredentialStore
    let oauth: KlaviyoOAuthClient
    let settings: Settings
    let cache: CredentialCache?
    let publishEvent: @Sendable (ConnectionEvent) async throws -> Void
    let hooks: Hooks
    let logger: Logger
    let inflight = Mutex<[String: Task<ConnectionRecord, any Error>]>([:])
    let counters = Mutex(Stats())

    /// Compare-and-delete: releases the lock only if we still own it.
    static let releaseScript = RedisScript(
        """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)

    /// One round trip per poll: 0 when `version` moved away from ARGV[1]; else 1 when the lock was taken
    /// (`SET NX PX`), 2 when someone else holds it. A hash without `version` is at version 0, as
    /// ``CredentialStore`` reads it.
    static let acquireScript = RedisScript(
        """
        if (redis.call('HGET', KEYS[1], 'version') or '0') ~= ARGV[1] then return 0 end
        if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
        return 2
        """)

    /// Creates a manager.
    public init(
        store: CredentialStore, oauth: KlaviyoOAuthClient, settings: Settings = Settings(),
        cache: CredentialCache? = nil,
        logger: Logger, hooks: Hooks = Hooks(),
        publishEvent: @escaping @Sendable (ConnectionEvent) async throws -> Void
    ) {
        self.store = store
        self.oauth = oauth
        self.settings = settings
        self.cache = cache
        self.logger = logger
        self.hooks = hooks
        self.publishEvent = publishEvent
    }

    /// This process's counters.
    public var stats: Stats { counters.withLock { $0 } }

    var redis: RedisClient { store.redis }

    /// Whether the record's access token is good for at least the refresh margin.
    func isFresh(_ record: ConnectionRecord, now: Int64 = Timestamp.nowSeconds()) -> Bool {
        guard record.state == .connected, record.accessToken != nil else { return false }
        guard let expiresAt = record.expiresAt else { return true }
        let margin = Self.refreshMargin(
            configured: settings.refreshMargin.components.seconds, expiresAt: expiresAt,
            refreshedAt: record.updatedAt.flatMap(Timestamp.parseMilliseconds).map { $0 / 1000 })
        return expiresAt > now + margin
    }

    /// The refresh margin of a token: the configured one, but at most half the token's lifetime (`expires_at`
    /// minus `updated_at`, the time of the refresh that stored it). A token Klaviyo issued for less than twice the
    /// margin was otherwise due again the moment it was stored: every command refreshed it, and every process
    /// waiting for the lock refreshed once more.
    /// Both times come from the stored hash: the lifetime saturates (an `expires_at` of Int64.max with an
    /// `updated_at` before 1970 trapped, taking every account's commands in the process down with it).
    static func refreshMargin(configured: Int64, expiresAt: Int64, refreshedAt: Int64?) -> Int64 {
        guard let refreshedAt, expiresAt > refreshedAt else { return configured }
        return min(configured, Clamp.difference(expiresAt, refreshedAt) / 2)
    }

    /// The connection with an access token that is valid for at least the refresh margin (refreshing if needed).
    public func usableConnection(_ record: ConnectionRecord) async throws -> ConnectionRecord {
        if isFresh(record) { return record }
        return try await coalesced(accountID: record.accountID, seenVersion: record.version, force: false)
    }

    /// After Klaviyo answered 401 to the token of `record`: a connection with a different token (refreshed by
    /// us or by someone else), or a ``Failure``.
    public func refreshAfterUnauthorized(_ record: ConnectionRecord) async throws -> ConnectionRecord {
        try await coalesced(accountID: record.accountID, seenVersion: record.version, force: true)
    }

    func coalesced(accountID: String, seenVersion: Int64, force: Bool) async throws -> ConnectionRecord {
        let task = inflight.withLock { tasks in
            if let running = tasks[accountID] { return running }
            let task = Task {
                try await CommandTracing.withSpan("relay.token.refresh") {
                    try await self.refresh(accountID: accountID, seenVersion: seenVersion, force: force)
                }
            }
            tasks[accountID] = task
            return task
        }
        let result = await task.result
        inflight.withLock { tasks in
            if tasks[accountID] == task { tasks[accountID] = nil }
        }
        let record = try result.get()
        cache?.store(record)
        return record
    }

    /// What a freshly read record means for a caller who saw `seenVersion`: done, failed, or refresh needed.
    func settled(
        _ record: ConnectionRecord?, accountID: String, seenVersion: Int64, force: Bool
    ) throws -> ConnectionRecord? {
        guard let record else { throw Failure.notConnected("account \(accountID) has no Klaviyo connection") }
        switch record.state {
        case .reauthRequired:
            cache?.invalidate(accountID)
            throw Failure.reauthRequired("account \(accountID) must reconnect Klaviyo")
        case .disconnected:
            cache?.invalidate(accountID)
            throw Failure.notConnected("account \(accountID) disconnected Klaviyo")
        case .connected:
            break
        }
        guard record.method == .oauth, record.refreshToken != nil else {
            throw Failure.notConnected("account \(accountID) has no OAuth refresh token")
        }
        if isFresh(record) && (!force || record.version != seenVersion) { return record }
        return nil
    }

    /// Reads the connection. ``CredentialUnreadable`` passes through as it is (not retriable: no refresh can
    /// read a token sealed under a missing key); a Redis failure is ``Failure/unavailable(_:)``.
    func load(_ accountID: String) async throws -> ConnectionRecord? {
        do {
            return try await store.load(accountID: accountID)
        } catch let unreadable as CredentialUnreadable {
            cache?.invalidate(accountID)
            throw unreadable
        } catch {
            throw Failure.unavailable("could not read the connection: \(error)")
        }
    }

    /// The refresh protocol (one task per account per process).
    func refresh(accountID: String, seenVersion: Int64, force: Bool) async throws -> ConnectionRecord {
        let deadline = ContinuousClock.now + settings.waitTimeout
        var pause = settings.pollInitial
        var record = try await load(accountID)
        if let done = try settled(record, accountID: accountID, seenVersion: seenVersion, force: force) { return done }
        let owner = PKCE.randomToken()
        let connKey = RedisKeys.connection(accountID)
        let lockKey = RedisKeys.lock(accountID)
        var waitStarted: ContinuousClock.Instant?  // when another process's lock first held us up (metrics)
        while true {
            guard let current = record else {
                throw Failure.notConnected("account \(accountID) has no Klaviyo connection")
            }
            let acquired: Int64
            do {
                acquired =
                    try await redis.run(
                        Self.acquireScript, keys: [connKey, lockKey],
                        arguments: [String(current.version), owner, String(settings.lockTTL.wholeMilliseconds)]
                    ).int ?? 2
            } catch {
                throw Failure.unavailable("refresh lock: \(error)")
            }
            if let started = waitStarted, acquired != 2 {
                RelayMetrics.lockWaited(acquired == 1 ? .acquired : .refreshedByOther, ContinuousClock.now - started)
                waitStarted = nil
            }
            switch acquired {
            case 1:
                let outcome: Result<ConnectionRecord?, any Error>
                do {
                    outcome = .success(try await refreshHoldingLock(current))
                } catch {
                    outcome = .failure(error)
                }
                await release(lockKey, owner: owner)
                if let done = try outcome.get() { return done }
                // Fenced off or lost a race: somebody else's tokens are newer; read them.
                record = try await load(accountID)
                if let done = try settled(record, accountID: accountID, seenVersion: current.version, force: true) {
                    return done
                }
            case 0:
                // The version moved: someone committed new tokens (or changed the state).
                record = try await load(accountID)
                if let reloaded = record, reloaded.version == current.version,
                    try await hasMalformedVersion(connKey, reads: reloaded.version)
                {
                    // It did not: the stored `version` is not the number it reads as (`abc`, `007`, beyond Int64),
                    // so no fenced write can ever match it. Polling again would spin on Redis until the deadline,
                    // and a token call would rotate a refresh token its commit could never store.
                    throw Failure.notConnected(
                        "the stored connection of \(accountID) has a malformed version field; reconnect the account")
                }
                if let done = try settled(record, accountID: accountID, seenVersion: current.version, force: true) {
                    return done
                }
            default:
                if waitStarted == nil { waitStarted = ContinuousClock.now }
                guard ContinuousClock.now < deadline else {
                    if let started = waitStarted { RelayMetrics.lockWaited(.timedOut, ContinuousClock.now - started) }
                    throw Failure.unavailable(
                        "another process has been refreshing the token of \(accountID) for over \(settings.waitTimeout)"
                    )
                }
                try? await Task.sleep(for: pause * Double.random(in: 0.5...1.0))
                pause = min(pause * 2, settings.pollMax)
            }
            guard ContinuousClock.now < deadline else {
                throw Failure.unavailable("could not get a fresh token for \(accountID) within \(settings.waitTimeout)")
            }
        }
    }

    /// Whether the hash's `version` field is present and not the canonical form of `version` (what
    /// ``CredentialStore`` decoded it as): the fenced scripts compare the stored text, so they never match it.
    func hasMalformedVersion(_ connKey: String, reads version: Int64) async throws -> Bool {
        let stored: String?
        do {
            stored = try await redis.hashGet(connKey, "version")
        } catch {
            throw Failure.unavailable("could not read the connection: \(error)")
        }
        guard let stored else { return false }
        return stored != String(version)
    }

    /// With the lock held: calls the token endpoint and commits, fenced by `record.version`. Returns the new
    /// connection, or nil when the commit was fenced off.
    func refreshHoldingLock(_ record: ConnectionRecord) async throws -> ConnectionRecord? {
        let accountID = record.accountID
        guard let refreshToken = record.refreshToken else {
            throw Failure.notConnected("account \(accountID) has no OAuth refresh token")
        }
        await hooks.afterLockAcquired?(accountID)
        counters.withLock { $0.refreshCalls += 1 }
        let tokens: KlaviyoTokenResponse
        let callStarted = ContinuousClock.now
        do {
            tokens = try await oauth.refresh(refreshToken: refreshToken, timeout: settings.tokenCallTimeout)
        } catch let error where error.isInvalidGrant {
            RelayMetrics.tokenRefreshed(.invalidGrant, tokenCall: ContinuousClock.now - callStarted)
            counters.withLock { $0.invalidGrants += 1 }
            try await markReauthRequired(record, reason: "Klaviyo refused the refresh token (\(error))")
            throw Failure.reauthRequired(
                "Klaviyo refused the refresh token of \(accountID) (\(error)); reconnect, then replay")
        } catch {
            RelayMetrics.tokenRefreshed(.failed, tokenCall: ContinuousClock.now - callStarted)
            logger.warning(
                "token refresh failed", metadata: [LogKeys.accountID: "\(accountID)", LogKeys.errorDetail: "\(error)"])
            throw Failure.unavailable("token refresh failed: \(error)")
        }
        let tokenCall = ContinuousClock.now - callStarted
        await hooks.beforeCommit?(accountID)
        let expiresAt = Timestamp.nowSeconds() + tokens.expiresIn
        // The tokens in hand may be the only copy of a rotated refresh token: a Redis blip must not drop them, so
        // the commit is retried while the lock is still ours (it is fenced by the version either way).
        let commitDeadline = callStarted + settings.lockTTL * 0.9
        var pause = Duration.milliseconds(50)
        let newVersion: Int64?
        while true {
            do {
                newVersion = try await store.commitRefreshedTokens(
                    accountID: accountID, expectedVersion: record.version, accessToken: tokens.accessToken,
                    refreshToken: tokens.refreshToken, expiresAt: expiresAt, scope: tokens.scope)
                break
            } catch {
                guard ContinuousClock.now + pause < commitDeadline else {
                    RelayMetrics.tokenRefreshed(.failed, tokenCall: tokenCall)
                    logger.error(
                        "refreshed tokens could not be stored",
                        metadata: [LogKeys.accountID: "\(accountID)", LogKeys.errorDetail: "\(error)"])
                    throw Failure.unavailable("could not store refreshed tokens: \(error)")
                }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(1))
            }
        }
        guard let newVersion else {
            RelayMetrics.tokenRefreshed(.fenced, tokenCall: tokenCall)
            counters.withLock { $0.fenced += 1 }
            logger.warning(
                "refreshed tokens discarded: the connection changed while refreshing (fenced)",
                metadata: [LogKeys.accountID: "\(accountID)", "version": "\(record.version)"])
            return nil
        }
        RelayMetrics.tokenRefreshed(.committed, tokenCall: tokenCall)
        counters.withLock { $0.committed += 1 }
        logger.info(
            "access token refreshed", metadata: [LogKeys.accountID: "\(accountID)", "version": "\(newVersion)"])
        var updated = record
        updated.accessToken = tokens.accessToken
        if let rotated = tokens.refreshToken { updated.refreshToken = rotated }
        updated.expiresAt = expiresAt
        if let scope = tokens.scope { updated.scope = scope }
        updated.version = newVersion
        return updated
    }

    /// `invalid_grant`: state → `reauth_required` once; the process that made the change announces it.
    /// The change is tried up to three times with one marker: a try whose reply was lost may have made it, and
    /// the marker lets the next try learn that it did (so the event is still published, once).
    func markReauthRequired(_ record: ConnectionRecord, reason: String) async throws {
        let marker = PKCE.randomToken()
        var changed = false
        var pause = Duration.milliseconds(50)
        for attempt in 1...3 {
            do {
                changed = try await store.markReauthRequired(
                    accountID: record.accountID, expectedVersion: record.version, marker: marker)
                break
            } catch {
                guard attempt < 3 else {
                    throw Failure.unavailable("could not mark \(record.accountID) reauth_required: \(error)")
                }
                try? await Task.sleep(for: pause)
                pause = pause * 2
            }
        }
        cache?.invalidate(record.accountID)
        guard changed else { return }
        logger.error(
            "OAuth grant refused by Klaviyo; connection marked reauth_required",
            metadata: [LogKeys.accountID: "\(record.accountID)"])
        let event = ConnectionEvent(accountID: record.accountID, state: .reauthRequired, reason: reason)
        pause = .milliseconds(50)
        for attempt in 1...5 {
            do {
                try await publishEvent(event)
                return
            } catch {
                logger.warning(
                    "could not publish connection event",
                    metadata: [
                        LogKeys.accountID: "\(record.accountID)", LogKeys.attempt: "\(attempt)",
                        LogKeys.errorDetail: "\(error)",
                    ])
                try? await Task.sleep(for: pause)
                pause = pause * 2
            }
        }
    }

    /// Compare-and-delete of the lock; a lock we no longer own (it expired and someone else took it) stays.
    func release(_ lockKey: String, owner: String) async {
        do {
            _ = try await redis.run(Self.releaseScript, keys: [lockKey], arguments: [owner])
        } catch {
            logger.warning(
                "could not release refresh lock (it expires by itself)", metadata: [LogKeys.errorDetail: "\(error)"])
        }
    }
}
