import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Redis
import Relay
import RelayTestSupport
import Synchronization
import Testing

/// An OAuth app registered in klaviyo-sim for one test stack.
struct SimOAuthApp {
    let clientID: String
    let clientSecret: String
    let redirectURI = "http://127.0.0.1:1/oauth/klaviyo/callback"
    static let scopes = ["accounts:read", "profiles:read", "profiles:write"]

    /// The consumer environment that enables OAuth with this app.
    var consumerEnvironment: [String: String] {
        ["RELAY_KLAVIYO_CLIENT_ID": clientID, "RELAY_KLAVIYO_CLIENT_SECRET": clientSecret]
    }

    func client(_ stack: RelayStack) -> KlaviyoOAuthClient {
        KlaviyoOAuthClient(
            baseURL: IntegrationEnvironment.simURL, clientID: clientID, clientSecret: clientSecret,
            transport: stack.http,
            userAgent: "integration-tests")
    }
}

extension RelayStack {
    var credentialStore: CredentialStore { CredentialStore(redis: redis, keys: keys) }

    /// A token manager over this stack's store and `app`, waiting at most `waitTimeout` for another refresher.
    func tokenManager(_ app: SimOAuthApp, waitTimeout: Duration) -> TokenManager {
        var settings = TokenManager.Settings()
        settings.waitTimeout = waitTimeout
        return TokenManager(
            store: credentialStore, oauth: app.client(self), settings: settings, logger: IntegrationEnvironment.logger
        ) { _ in }
    }

    /// Registers an OAuth app in klaviyo-sim.
    func createOAuthApp() async throws -> SimOAuthApp {
        let app = SimOAuthApp(clientID: oauthClientID, clientSecret: "secret-\(UUID().uuidString.lowercased())")
        try await simAdmin(
            .POST, "/_sim/oauth/apps",
            [
                "client_id": .string(app.clientID), "client_secret": .string(app.clientSecret),
                "redirect_uris": [.string(app.redirectURI)], "scopes": .array(SimOAuthApp.scopes.map { .string($0) }),
            ])
        return app
    }

    /// Creates a Klaviyo account in the sim, installs the app through the real authorize (Allow) and token
    /// endpoints with PKCE, and stores the connection (method oauth) as the relay would.
    func connectOAuth(_ app: SimOAuthApp, accountID: String? = nil) async throws -> ConnectionRecord {
        let account = accountID ?? "acct-oauth-\(UUID().uuidString.lowercased().prefix(10))"
        try await simAdmin(
            .POST, "/_sim/accounts",
            [
                "account_id": .string(account), "name": "OAuth Store",
                "api_key": .string("pk_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"),
            ])
        let verifier = PKCE.makeVerifier()
        let state = PKCE.randomToken()
        let url =
            KlaviyoOAuthClient.authorizeURL(
                authorizeBase: IntegrationEnvironment.simURL + "/oauth/authorize", clientID: app.clientID,
                redirectURI: app.redirectURI, scope: SimOAuthApp.scopes.joined(separator: " "), state: state,
                codeChallenge: PKCE.challenge(for: verifier)) + "&login_account=\(account)&decision=allow"
        let response = try await http.execute(HTTPRequest(method: .GET, url: url))
        #expect(response.status == 302, "authorize → \(response.status) \(response.bodyString)")
        let location = try #require(response.headers["Location"])
        let query = try #require(URLComponents(string: location)?.queryItems)
        #expect(query.first { $0.name == "state" }?.value == state)
        let code = try #require(query.first { $0.name == "code" }?.value)
        let tokens = try await app.client(self).exchangeCode(code, codeVerifier: verifier, redirectURI: app.redirectURI)
        let now = Timestamp.now()
        var record = ConnectionRecord(
            accountID: account, method: .oauth, state: .connected, klaviyoAccountID: account,
            klaviyoAccountName: "OAuth Store", scope: tokens.scope,
            expiresAt: Timestamp.nowSeconds() + tokens.expiresIn,
            connectedAt: now, updatedAt: now, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken)
        record.version = try await credentialStore.replace(record)
        return record
    }

    /// klaviyo-sim's refresh-token rotation mode for this stack's OAuth app only (the simulator is shared by
    /// every suite: its global settings stay untouched).
    func setRotation(_ on: Bool) async throws {
        try await simAdmin(
            .PUT, "/_sim/oauth/settings", ["client_id": .string(oauthClientID), "rotate_refresh_tokens": .bool(on)])
    }

    /// Delay of this stack's OAuth app's token answers.
    func setTokenLatency(milliseconds: Int) async throws {
        try await simAdmin(
            .PUT, "/_sim/oauth/settings",
            ["client_id": .string(oauthClientID), "token_latency_ms": .int(Int64(milliseconds))])
    }

    /// Token-endpoint outcomes of one OAuth app, by default this stack's (`token_calls_by_client` of
    /// klaviyo-sim's stats).
    func tokenCalls(client: String? = nil) async throws -> [String: Int] {
        let stats = try await simAdmin(.GET, "/_sim/stats")
        var calls: [String: Int] = [:]
        for (name, value) in stats["token_calls_by_client"]?[client ?? oauthClientID]?.objectValue ?? [:] {
            if case .int(let count) = value { calls[name] = Int(count) }
        }
        return calls
    }

    /// The client id ``createOAuthApp()`` registers for this stack.
    var oauthClientID: String { "app-\(prefix)" }

    func upsert(_ name: String, account: String) -> (id: String, body: [UInt8]) {
        let id = self.id(name)
        return (
            id,
            commandBody(
                id: id, type: "profile.upsert", accountID: account,
                payload: ["profile": ["email": .string("\(name)@\(prefix).example.com")]])
        )
    }
}

/// Holds a refresher at a hook until the test opens it.
final class Gate: Sendable {
    let state = Mutex<(reached: Bool, open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, false, []))

    var reached: Bool { state.withLock { $0.reached } }

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                state.reached = true
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

@Suite("Token manager", .serialized, .timeLimit(.minutes(5)))
struct TokenManagerTests {
    func delta(_ after: [String: Int], _ before: [String: Int], _ key: String) -> Int {
        (after[key] ?? 0) - (before[key] ?? 0)
    }

    /// N separate `consume` processes, many commands of one OAuth account whose access token just expired
    /// in Klaviyo: exactly one refresh, every command succeeds. With rotation on: zero invalid_grant.
    @Test(arguments: [false, true])
    func raceOfConsumerProcessesRefreshesOnce(rotation: Bool) async throws {
        let processes = Int(IntegrationEnvironment.environment["RACE_PROCESSES"] ?? "") ?? 8
        let commands = Int(IntegrationEnvironment.environment["RACE_COMMANDS"] ?? "") ?? 1600
        try await withRelayStack { stack in
            let app = try await stack.createOAuthApp()
            let connected = try await stack.connectOAuth(app)
            let account = connected.accountID
            try await stack.setRotation(rotation)
            // 1,600 upserts for one account exceed Klaviyo's 700/min for the endpoint: with the relay's rate
            // limiter on, most would wait minutes in retry tiers. This test is about the token refresh (the
            // limiter has its own), so its consumers run without it, against a simulator without limits.
            var environment = app.consumerEnvironment
            environment["RELAY_RATE_LIMIT"] = "off"
            for _ in 0..<processes {
                _ = try stack.startConsumer(concurrency: 16, environment: environment)
            }
            try await stack.waitForConsumers(processes)
            // Klaviyo expires the access token. Without rotation only Klaviyo knows (the relay learns from the
            // 401s); with rotation our stored expiry has passed too (the refresh-ahead path).
            try await stack.simAdmin(.POST, "/_sim/oauth/expire-access-tokens", ["account_id": .string(account)])
            if rotation {
                var expired = try #require(try await stack.credentialStore.load(accountID: account))
                expired.expiresAt = Timestamp.nowSeconds() - 1
                _ = try await stack.credentialStore.replace(expired)
            }
            let before = try await stack.tokenCalls()
            let versionBefore = try #require(try await stack.credentialStore.load(accountID: account)).version
            let started = ContinuousClock.now
            var ids: [String] = []
            for index in 0..<commands {
                let command = stack.upsert("race-\(rotation)-\(index)", account: account)
                ids.append(command.id)
                try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            }
            try await stack.waitForCollected(commands, timeout: .seconds(240))
            let elapsed = ContinuousClock.now - started
            let after = try await stack.tokenCalls()
            #expect(stack.deadLetters.isEmpty, "dead letters: \(stack.deadLetters.map { $0.properties.headers })")
            let succeeded = Set(
                stack.deliveries.compactMap { try? JSONValue.parse($0.body) }.compactMap(CommandResult.init(json:))
                    .filter { $0.outcome == .succeeded }.map(\.commandID))
            #expect(succeeded.isSuperset(of: ids) && stack.deliveries.count == commands)
            #expect(delta(after, before, "refresh_token") == 1, "token calls before \(before) after \(after)")
            #expect(delta(after, before, "invalid_grant") == 0)
            let stored = try #require(try await stack.credentialStore.load(accountID: account))
            #expect(stored.version == versionBefore + 1, "exactly one commit")
            #expect(stored.accessToken != connected.accessToken)
            if rotation {
                #expect(stored.refreshToken != connected.refreshToken, "the rotated refresh token is stored")
            }
            print(
                "race: \(processes) processes, \(commands) commands, rotation \(rotation): "
                    + "refreshes \(delta(after, before, "refresh_token")), invalid_grant \(delta(after, before, "invalid_grant")), "
                    + "\(elapsed)")
        }
    }

    /// Many concurrent callers in one process: one token call.
    @Test func inProcessCallersShareOneRefresh() async throws {
        try await withRelayStack { stack in
            try await stack.setRotation(false)
            let app = try await stack.createOAuthApp()
            var record = try await stack.connectOAuth(app)
            // An hour-long token refreshed an hour ago: 10 s left, inside the 5-minute margin.
            record.expiresAt = Timestamp.nowSeconds() + 10
            record.updatedAt = Timestamp.format(milliseconds: (Timestamp.nowSeconds() - 3590) * 1000)
            record.version = try await stack.credentialStore.replace(record)
            let manager = TokenManager(
                store: stack.credentialStore, oauth: app.client(stack), logger: IntegrationEnvironment.logger
            ) { _ in }
            let before = try await stack.tokenCalls()
            let snapshot = record
            let versions = try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in 0..<50 { group.addTask { try await manager.usableConnection(snapshot).version } }
                return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
            }
            let after = try await stack.tokenCalls()
            #expect(versions == [record.version + 1])
            #expect(manager.stats.refreshCalls == 1)
            #expect(delta(after, before, "refresh_token") == 1)
        }
    }

    /// Across processes, as the issue describes it: a `consume` process holding the refresh lock is frozen with
    /// SIGSTOP while its token call is in flight (klaviyo-sim answers /oauth/token after 4 s), past the lock's TTL;
    /// another refresher takes the lock and commits newer tokens. When the frozen process resumes, it does not
    /// commit: its token call has outlived its bound (60 % of the lock's TTL, wall-clock), so it gives up, and the
    /// command is retried with the newer tokens, which stay in Redis. (A commit that does get its answer is fenced
    /// off by the version: ``stalledRefresherCannotOverwriteNewerTokens``.)
    @Test func sigstoppedLockHolderCannotOverwriteNewerTokens() async throws {
        try await withRelayStack { stack in
            try await stack.setRotation(false)
            let app = try await stack.createOAuthApp()
            var record = try await stack.connectOAuth(app)
            record.expiresAt = Timestamp.nowSeconds() - 10  // expired: the next command refreshes first
            record.version = try await stack.credentialStore.replace(record)
            try await stack.setTokenLatency(milliseconds: 4000)
            let refreshesBefore = try await stack.tokenCalls()["refresh_token", default: 0]
            // A 3 s lock bounds the token call at 1.8 s: time enough to freeze the process mid-call on a loaded host.
            let frozen = try stack.startConsumer(
                concurrency: 1,
                environment: [
                    "RELAY_KLAVIYO_CLIENT_ID": app.clientID, "RELAY_KLAVIYO_CLIENT_SECRET": app.clientSecret,
                    "RELAY_TOKEN_LOCK_TTL": "3s", "RELAY_KEEPALIVE_INTERVAL": "0",
                ])
            try await stack.waitForConsumers(1)
            let command = stack.upsert("frozen-holder", account: record.accountID)
            try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            // klaviyo-sim counts the token call when it arrives, before its delay: the consumer holds the lock and
            // its call is in flight.
            try await eventually("the consumer's refresh call to reach klaviyo-sim", timeout: .seconds(20)) {
                try await stack.tokenCalls()["refresh_token", default: 0] > refreshesBefore
            }
            kill(frozen.pid, SIGSTOP)
            let lockKey = RedisKeys.lock(record.accountID)
            do {
                #expect(try await stack.redis.exists(lockKey), "the frozen process holds the lock")
                try await eventually("the frozen holder's lock to expire", timeout: .seconds(10)) {
                    !(try await stack.redis.exists(lockKey))
                }
                try await stack.setTokenLatency(milliseconds: 0)
                let other = TokenManager(
                    store: stack.credentialStore, oauth: app.client(stack), logger: IntegrationEnvironment.logger
                ) { _ in }
                let newer = try await other.refreshAfterUnauthorized(record)
                #expect(newer.version == record.version + 1)
                kill(frozen.pid, SIGCONT)
                try await stack.waitForCollected(1)
                #expect(stack.results(for: command.id).first?.outcome == .succeeded)
                try await eventually("the resumed process to report its abandoned refresh", timeout: .seconds(20)) {
                    frozen.log.contains("token refresh failed") || frozen.log.contains("refreshed tokens discarded")
                }
                #expect(!frozen.log.contains("access token refreshed"), "the frozen process committed nothing")
                let stored = try #require(try await stack.credentialStore.load(accountID: record.accountID))
                #expect(stored.accessToken == newer.accessToken, "the newer tokens stay")
                #expect(stored.version == newer.version)
            } catch {
                kill(frozen.pid, SIGCONT)
                try? await stack.setTokenLatency(milliseconds: 0)
                throw error
            }
        }
    }

    /// The first refresher is frozen after its token call until its lock has expired; a second one refreshes
    /// meanwhile. When the first resumes, its commit is fenced off and the newer tokens stay.
    @Test func stalledRefresherCannotOverwriteNewerTokens() async throws {
        try await withRelayStack { stack in
            try await stack.setRotation(false)
            let app = try await stack.createOAuthApp()
            let record = try await stack.connectOAuth(app)
            let gate = Gate()
            var short = TokenManager.Settings()
            short.lockTTL = .milliseconds(300)
            let stalled = TokenManager(
                store: stack.credentialStore, oauth: app.client(stack), settings: short,
                logger: IntegrationEnvironment.logger, hooks: .init(beforeCommit: { _ in await gate.wait() })
            ) { _ in }
            let second = TokenManager(
                store: stack.credentialStore, oauth: app.client(stack), logger: IntegrationEnvironment.logger
            ) { _ in }
            let first = Task { try await stalled.refreshAfterUnauthorized(record) }
            try await eventually("the first refresher holds new tokens and is frozen", timeout: .seconds(10)) {
                gate.reached
            }
            let lockKey = RedisKeys.lock(record.accountID)
            try await eventually("the first refresher's lock expired", timeout: .seconds(10)) {
                try await !stack.redis.exists(lockKey)
            }
            let newer = try await second.refreshAfterUnauthorized(record)
            #expect(newer.version == record.version + 1)
            #expect(second.stats.committed == 1)
            gate.open()
            let resumed = try await first.value
            #expect(stalled.stats.refreshCalls == 1)
            #expect(stalled.stats.fenced == 1)
            #expect(stalled.stats.committed == 0)
            #expect(resumed.accessToken == newer.accessToken, "the stalled refresher hands out the newer token")
            let stored = try #require(try await stack.credentialStore.load(accountID: record.accountID))
            #expect(stored.version == newer.version)
            #expect(stored.accessToken == newer.accessToken)
            #expect(try await !stack.redis.exists(lockKey))
        }
    }

    /// While another process holds the lock and never commits, a caller polls with backoff and gives up after
    /// the wait timeout with a retryable failure, leaving the other owner's lock alone.
    @Test func waitersGiveUpRetryablyWhenTheLockIsHeld() async throws {
        try await withRelayStack { stack in
            try await stack.setRotation(false)
            let app = try await stack.createOAuthApp()
            var record = try await stack.connectOAuth(app)
            record.expiresAt = Timestamp.nowSeconds() - 1
            record.version = try await stack.credentialStore.replace(record)
            let lockKey = RedisKeys.lock(record.accountID)
            try await stack.redis.set(lockKey, "another-process", expiry: .seconds(30))
            let manager = stack.tokenManager(app, waitTimeout: .milliseconds(600))
            let before = try await stack.tokenCalls()
            let started = ContinuousClock.now
            await #expect {
                _ = try await manager.usableConnection(record)
            } throws: { error in
                if case .unavailable? = error as? TokenManager.Failure { return true }
                return false
            }
            let waited = ContinuousClock.now - started
            #expect(waited >= .milliseconds(600) && waited < .seconds(5), "bounded wait: \(waited)")
            #expect(manager.stats.refreshCalls == 0)
            #expect(delta(try await stack.tokenCalls(), before, "refresh_token") == 0)
            #expect(try await stack.redis.get(lockKey) == "another-process", "only the owner deletes its lock")
            _ = try await stack.redis.delete([lockKey])
        }
    }

    /// The user removed the app inside Klaviyo: the next command makes one refresh attempt, the account
    /// becomes reauth_required, one connection event is published, its other commands are dead-lettered
    /// without calling Klaviyo, and another account keeps working.
    @Test func appRemovedInKlaviyo() async throws {
        try await withRelayStack { stack in
            try await stack.setRotation(false)
            let app = try await stack.createOAuthApp()
            let removed = try await stack.connectOAuth(app).accountID
            let other = try await stack.connectOAuth(app).accountID
            let (events, eventCollector) = try await stack.collectConnectionEvents()
            defer { eventCollector.cancel() }
            _ = try stack.startConsumer(concurrency: 16, environment: app.consumerEnvironment)
            try await stack.waitForConsumers(1)

            try await stack.simAdmin(
                .POST, "/_sim/accounts/\(removed)/revoke-app", ["client_id": .string(app.clientID)])
            let before = try await stack.tokenCalls()
            let first = stack.upsert("removed-first", account: removed)
            try await stack.publish(first.body, routingKey: "profile.upsert", messageID: first.id)
            try await stack.waitForCollected(1)
            #expect(stack.deadLetters.count == 1)
            #expect(
                stack.deadLetters.first?.properties.headers[DeadLetter.Header.errorCode]?.stringValue
                    == "reauth_required")
            let afterFirst = try await stack.tokenCalls()
            #expect(delta(afterFirst, before, "invalid_grant") == 1, "one refresh attempt")
            #expect(delta(afterFirst, before, "refresh_token") == 0)
            #expect(try await stack.credentialStore.load(accountID: removed)?.state == .reauthRequired)
            try await eventually("the connection event", timeout: .seconds(10)) {
                events.items.withLock { $0.count } >= 1
            }
            let apiCallsBefore = try await stack.klaviyoRequests(account: removed)
                .filter { $0["path"]?.stringValue?.hasPrefix("/api") == true }.count

            var queued: [String] = []
            for index in 0..<20 {
                let command = stack.upsert("removed-\(index)", account: removed)
                queued.append(command.id)
                try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            }
            var unaffected: [String] = []
            for index in 0..<5 {
                let command = stack.upsert("other-\(index)", account: other)
                unaffected.append(command.id)
                try await stack.publish(command.body, routingKey: "profile.upsert", messageID: command.id)
            }
            try await stack.waitForCollected(26)
            let codes = stack.deadLetters.compactMap { letter -> (String, String)? in
                guard let id = letter.properties.headers[DeadLetter.Header.commandID]?.stringValue,
                    let code = letter.properties.headers[DeadLetter.Header.errorCode]?.stringValue
                else { return nil }
                return (id, code)
            }
            #expect(codes.count == 21)
            #expect(codes.allSatisfy { $0.1 == "reauth_required" })
            #expect(Set(codes.map(\.0)) == Set(queued + [first.id]))
            for id in unaffected { #expect(stack.results(for: id).first?.outcome == .succeeded) }
            let apiCallsAfter = try await stack.klaviyoRequests(account: removed)
                .filter { $0["path"]?.stringValue?.hasPrefix("/api") == true }.count
            #expect(apiCallsAfter == apiCallsBefore, "queued commands never reach Klaviyo")
            let after = try await stack.tokenCalls()
            #expect(delta(after, before, "invalid_grant") == 1)
            let received = events.items.withLock { $0 }
            #expect(received.count == 1)
            let event = try JSONValue.parse(try #require(received.first).body)
            #expect(received.first?.routingKey == "connection.reauth_required")
            #expect(event["account_id"]?.stringValue == removed)
            #expect(event["state"]?.stringValue == "reauth_required")
            #expect(event["reason"]?.stringValue?.isEmpty == false)
            #expect(event["at"]?.stringValue != nil)
        }
    }
}

/// Idle OAuth connections are refreshed in the background before Klaviyo's 90-day idle expiry (in the
/// serialized token-manager suite: klaviyo-sim's token counters are global).
extension TokenManagerTests {
    @Test func idleConnectionsAreRefreshedAndFreshOnesLeftAlone() async throws {
        try await withRelayStack { stack in
            let app = try await stack.createOAuthApp()
            let record = try await stack.connectOAuth(app)
            let manager = TokenManager(
                store: stack.credentialStore, oauth: app.client(stack), logger: IntegrationEnvironment.logger
            ) { _ in }
            // Connected a moment ago: not idle for a 30-day keep-alive age.
            let monthly = KeepAliveService(
                store: stack.credentialStore, tokenManager: manager, idleAge: .seconds(30 * 24 * 3600),
                interval: .seconds(3600), logger: IntegrationEnvironment.logger)
            #expect(await monthly.sweep(accountIDs: [record.accountID]) == 0)
            #expect(manager.stats.refreshCalls == 0)
            // Pretend 31 days passed: the connection is idle and gets exactly one refresh.
            let later = Timestamp.nowMilliseconds() + 31 * 24 * 3600 * 1000
            #expect(await monthly.sweep(accountIDs: [record.accountID], nowMilliseconds: later) == 1)
            #expect(manager.stats.refreshCalls == 1)
            let refreshed = try #require(try await stack.credentialStore.load(accountID: record.accountID))
            #expect(refreshed.version == record.version + 1)
            #expect(refreshed.accessToken != record.accessToken)
            // Just refreshed: the next sweep at the real time leaves it alone.
            #expect(await monthly.sweep(accountIDs: [record.accountID]) == 0)
            #expect(manager.stats.refreshCalls == 1)
        }
    }

    @Test func connectionKeysNameTheirAccount() {
        #expect(KeepAliveService.accountID(fromConnectionKey: "kr:{org_42}:conn") == "org_42")
        #expect(KeepAliveService.accountID(fromConnectionKey: "kr:{org_42}:lock") == nil)
        #expect(KeepAliveService.accountID(fromConnectionKey: "kr:idem:x") == nil)
    }
}
