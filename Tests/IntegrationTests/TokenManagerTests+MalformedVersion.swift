import Klaviyo
import Redis
import Relay
import Testing

/// A connection hash whose `version` field the relay did not write (absent, `abc`, `007`, beyond Int64): the
/// fenced scripts compare the stored text with the version the store decoded (0, or 7 for `007`), so they never
/// matched, and a refresher polled Redis in a tight loop (two round trips per turn, no pause) until its wait
/// timeout, for every command of the account and in every keep-alive sweep.
extension TokenManagerTests {
    @Test(arguments: [nil, "abc", "007", "99999999999999999999"])
    func malformedVersionNeverSpins(stored: String?) async throws {
        try await withRelayStack { stack in
            try await stack.setRotation(false)
            let app = try await stack.createOAuthApp()
            var record = try await stack.connectOAuth(app)
            record.expiresAt = Timestamp.nowSeconds() - 1
            _ = try await stack.credentialStore.replace(record)
            let connKey = RedisKeys.connection(record.accountID)
            if let stored {
                try await stack.redis.hashSet(connKey, ["version": stored])
            } else {
                _ = try await stack.redis.send(["HDEL", connKey, "version"])
            }
            let loaded = try #require(try await stack.credentialStore.load(accountID: record.accountID))
            #expect(loaded.version == stored.flatMap { Int64($0) } ?? 0, "as the store decodes it")
            // A spinning refresher would poll until this wait timeout; the bound below is half of it, far above what the
            // calls take even on a loaded machine.
            let manager = stack.tokenManager(app, waitTimeout: .seconds(20))
            let before = try await stack.tokenCalls()
            let started = ContinuousClock.now
            if stored == nil {
                // No version is version 0, as the store reads it: refreshed and committed at version 1.
                let fresh = try await manager.usableConnection(loaded)
                #expect(fresh.version == 1)
                #expect(manager.stats.refreshCalls == 1 && manager.stats.committed == 1)
                #expect(try await stack.redis.hashGet(connKey, "version") == "1")
            } else {
                // Final at once, before any token call (its rotated refresh token could never be stored).
                await #expect {
                    _ = try await manager.usableConnection(loaded)
                } throws: { error in
                    if case .notConnected? = error as? TokenManager.Failure { return true }
                    return false
                }
                #expect(manager.stats.refreshCalls == 0)
                #expect(delta(try await stack.tokenCalls(), before, "refresh_token") == 0)
                #expect(try await stack.redis.hashGet(connKey, "version") == stored)
                // Reconnecting mends the hash: the replace restarts a version it cannot count from.
                var reconnected = loaded
                reconnected.version = try await stack.credentialStore.replace(loaded)
                #expect(try await stack.redis.hashGet(connKey, "version") == String(reconnected.version))
                #expect(try await manager.usableConnection(reconnected).version == reconnected.version + 1)
            }
            let elapsed = ContinuousClock.now - started
            #expect(elapsed < .seconds(10), "no polling until the wait timeout: \(elapsed)")
        }
    }

    /// The refresh margin is half the stored token's lifetime (`expires_at` minus `updated_at`), both read from the
    /// hash: an absurd pair must not trap (a crash takes every account's in-flight commands with it).
    @Test func absurdStoredExpiryDoesNotCrashTheProcess() async throws {
        try await withRelayStack { stack in
            let app = try await stack.createOAuthApp()
            let record = try await stack.connectOAuth(app)
            let connKey = RedisKeys.connection(record.accountID)
            try await stack.redis.hashSet(
                connKey, ["expires_at": String(Int64.max), "updated_at": "0001-01-01T00:00:00Z"])
            let loaded = try #require(try await stack.credentialStore.load(accountID: record.accountID))
            let manager = TokenManager(
                store: stack.credentialStore, oauth: app.client(stack), logger: IntegrationEnvironment.logger
            ) { _ in }
            #expect(try await manager.usableConnection(loaded).version == loaded.version, "fresh: no refresh")
            #expect(manager.stats.refreshCalls == 0)
        }
    }
}
