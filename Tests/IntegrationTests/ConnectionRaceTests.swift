import Foundation
import Klaviyo
import Redis
import Relay
import RelayTestSupport
import Testing

/// Connection changes racing a token refresh, against the real Redis and klaviyo-sim with rotating refresh
/// tokens: the refresh token a disconnect revokes is the one Klaviyo holds, and the `reauth_required` change is
/// announced by its maker even when it had to run its change twice.
@Suite("Connection races", .serialized, .timeLimit(.minutes(3)))
struct ConnectionRaceTests {
    /// A refresh holds the account's lock with a rotated refresh token it has not committed yet; a disconnect
    /// starts meanwhile. The disconnect waits for the lock, then revokes the rotated token, so the app is
    /// uninstalled at Klaviyo. (Unlocked, it revoked the rotated-away token, which Klaviyo no longer knew: the
    /// install stayed, holding a token nobody had.)
    @Test func disconnectDuringARotatingRefreshRevokesTheRotatedToken() async throws {
        try await withRelayStack { stack in
            try await stack.setRotation(true)
            let app = try await stack.createOAuthApp()
            let record = try await stack.connectOAuth(app)
            let commit = Gate()
            let refresher = TokenManager(
                store: stack.credentialStore, oauth: app.client(stack), logger: IntegrationEnvironment.logger,
                hooks: .init(beforeCommit: { _ in await commit.wait() })
            ) { _ in }
            let refresh = Task { try await refresher.refreshAfterUnauthorized(record) }
            try await eventually("the refresher holds rotated tokens and the lock", timeout: .seconds(10)) {
                commit.reached
            }
            let waiting = Gate()
            let lifecycle = ConnectionLifecycle(
                store: stack.credentialStore, oauth: app.client(stack),
                hooks: .init(waitingForLock: { _ in waiting.open() }), logger: IntegrationEnvironment.logger
            ) { _ in }
            let disconnect = Task { try await lifecycle.disconnect(accountID: record.accountID) }
            try await eventually("the disconnect waits for the refresh lock", timeout: .seconds(10)) {
                waiting.state.withLock { $0.open }
            }
            commit.open()
            let refreshed = try await refresh.value
            #expect(refresher.stats.committed == 1, "the refresh commits: the disconnect did not change anything yet")
            let rotated = try #require(refreshed.refreshToken)
            #expect(rotated != record.refreshToken, "the sim rotated the refresh token")
            #expect(try await disconnect.value, "the account was connected")

            let stored = try #require(try await stack.credentialStore.load(accountID: record.accountID))
            #expect(stored.state == .disconnected && stored.refreshToken == nil)
            await #expect("the rotated token was revoked with the app's install") {
                _ = try await app.client(stack).refresh(refreshToken: rotated)
            } throws: { error in
                (error as? KlaviyoOAuthError)?.isInvalidGrant == true
            }
            #expect(try await !stack.redis.exists(RedisKeys.lock(record.accountID)), "the disconnect released it")
        }
    }

    /// The lock is held by a process that died (it expires by itself): a disconnect waits for the expiry and
    /// then goes through; it never deletes another owner's lock.
    @Test func disconnectWaitsOutADeadHoldersLock() async throws {
        try await withRelayStack { stack in
            try await stack.setRotation(false)
            let app = try await stack.createOAuthApp()
            let record = try await stack.connectOAuth(app)
            let lockKey = RedisKeys.lock(record.accountID)
            try await stack.redis.set(lockKey, "a-dead-process", expiry: .milliseconds(700))
            let lifecycle = ConnectionLifecycle(
                store: stack.credentialStore, oauth: app.client(stack), lockTTL: .seconds(2),
                logger: IntegrationEnvironment.logger
            ) { _ in }
            #expect(try await lifecycle.disconnect(accountID: record.accountID))
            let stored = try #require(try await stack.credentialStore.load(accountID: record.accountID))
            #expect(stored.state == .disconnected)
            let revoked = try #require(record.refreshToken)
            await #expect("the refresh token was revoked") {
                _ = try await app.client(stack).refresh(refreshToken: revoked)
            } throws: { error in
                (error as? KlaviyoOAuthError)?.isInvalidGrant == true
            }

            // A lock that outlives the wait (TTL + 1 s) is refused as busy, and the connection is left alone.
            let other = try await stack.connectOAuth(app)
            let otherLock = RedisKeys.lock(other.accountID)
            try await stack.redis.set(otherLock, "another-process", expiry: .seconds(30))
            let short = ConnectionLifecycle(
                store: stack.credentialStore, oauth: app.client(stack), lockTTL: .milliseconds(200),
                logger: IntegrationEnvironment.logger
            ) { _ in }
            await #expect {
                _ = try await short.disconnect(accountID: other.accountID)
            } throws: { error in
                (error as? ConnectionLifecycle.Failure)?.code == "connection_busy"
            }
            #expect(try await stack.credentialStore.load(accountID: other.accountID)?.state == .connected)
            #expect(try await stack.redis.get(otherLock) == "another-process", "only the owner deletes its lock")
            _ = try await stack.redis.delete([otherLock])
        }
    }

    /// The `reauth_required` change is made once; its maker may run it again with its marker (its first reply
    /// was lost: a dropped connection, a Redis Cluster failover retry) and still learns it made the change, so
    /// the event is published. Another caller, with another marker, does not.
    @Test func theReauthChangeIsKnownToItsMakerOnARerun() async throws {
        try await withRelayStack { stack in
            let account = "acct-reauth-\(UUID().uuidString.lowercased().prefix(10))"
            let now = Timestamp.now()
            let version = try await stack.credentialStore.replace(
                ConnectionRecord(
                    accountID: account, method: .oauth, state: .connected, klaviyoAccountID: account,
                    connectedAt: now, updatedAt: now, accessToken: "access", refreshToken: "refresh"))
            let store = stack.credentialStore
            #expect(try await store.markReauthRequired(accountID: account, expectedVersion: version, marker: "m1"))
            #expect(
                try await store.markReauthRequired(accountID: account, expectedVersion: version, marker: "m1"),
                "the maker's rerun")
            #expect(
                try await !store.markReauthRequired(accountID: account, expectedVersion: version, marker: "m2"),
                "another caller did not make the change")
            let stored = try #require(try await store.load(accountID: account))
            #expect(stored.state == .reauthRequired && stored.refreshToken == nil && stored.accessToken == nil)
            #expect(stored.version == version + 1, "changed once")
            _ = try await stack.redis.delete([RedisKeys.connection(account)])
        }
    }

    /// The customer replaced the account's private key (a new key connected, the old one deleted in Klaviyo)
    /// while a consumer still held the old one (its credential cache): the 401 for the old key neither deletes
    /// the new connection nor dead-letters the command; the command runs again with the new key. (An unfenced
    /// change used to mark the fresh connection `reauth_required`, deleting its key.)
    @Test func aRefusedOldKeyLeavesTheNewConnectionAlone() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let consumer = try stack.startConsumer(environment: ["RELAY_CREDENTIAL_CACHE_TTL": "120s"])
            try await stack.waitForConsumers(1)
            let first = upsert(stack, "old-key", account: account)
            try await stack.publish(first.body, routingKey: "profile.upsert", messageID: first.id)
            try await stack.waitForCollected(1)
            #expect(stack.results(for: first.id).first?.outcome == .succeeded, "the consumer now caches the old key")

            let newKey = "pk_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
            _ = try await stack.connectAccount(account, apiKey: newKey)
            let second = upsert(stack, "new-key", account: account)
            try await stack.publish(second.body, routingKey: "profile.upsert", messageID: second.id)
            try await stack.waitForCollected(2)
            #expect(stack.results(for: second.id).first?.outcome == .succeeded)
            #expect(
                stack.deadLetters.isEmpty,
                "\(stack.deadLetters.map { $0.properties.headers["x-relay-error-code"] ?? .void })")
            let stored = try #require(try await stack.credentialStore.load(accountID: account))
            #expect(stored.state == .connected && stored.apiKey == newKey)
            #expect(consumer.log.contains("klaviyo refused a key the account has since replaced"), "\(consumer.log)")
        }
    }

    /// A key deleted in Klaviyo with no new one: the account is marked `reauth_required` once, by the process
    /// that made the change, and `connection.reauth_required` is published.
    @Test func aRefusedKeyMarksTheConnectionAndAnnouncesIt() async throws {
        try await withRelayStack { stack in
            let (account, _) = try await stack.connectAccount()
            let before = try #require(try await stack.credentialStore.load(accountID: account))
            // The key is deleted in Klaviyo (the sim account now has another key the relay does not know).
            try await stack.simAdmin(
                .POST, "/_sim/accounts",
                [
                    "account_id": .string(account), "api_key": "pk_deletedoldkeyreplacedbyanother",
                    "name": "Integration Store",
                ])
            let (events, eventCollector) = try await stack.collectConnectionEvents()
            defer { eventCollector.cancel() }
            _ = try stack.startConsumer()
            try await stack.waitForConsumers(1)
            let command = upsert(stack, "refused", account: account)
            try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            try await stack.waitForCollected(1)
            #expect(stack.deadLetters.first?.properties.headers["x-relay-error-code"] == .string("reauth_required"))
            let stored = try #require(try await stack.credentialStore.load(accountID: account))
            #expect(stored.state == .reauthRequired && stored.apiKey == nil && stored.version == before.version + 1)
            try await eventually("connection.reauth_required published", timeout: .seconds(20)) {
                !events.items.withLock { $0 }.isEmpty
            }
            let received = events.items.withLock { $0 }
            #expect(received.count == 1 && received.first?.routingKey == "connection.reauth_required")
            let event = try JSONValue.parse(try #require(received.first).body)
            #expect(event["account_id"]?.stringValue == account && event["state"] == "reauth_required")
        }
    }
}
