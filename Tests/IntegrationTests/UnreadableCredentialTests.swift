import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Logging
import Redis
import Relay
import RelayTestSupport
import Testing

extension RelayStack {
    /// Creates an account in klaviyo-sim and stores its connection sealed with `keys` (as `saveAPIKey` does after
    /// validating), so a test chooses which key id seals it.
    func connectSealed(
        with keys: EncryptionKeyRing, accountID: String? = nil
    ) async throws -> (accountID: String, apiKey: String) {
        let account = accountID ?? "acct-\(UUID().uuidString.lowercased().prefix(10))"
        let key = "pk_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        try await simAdmin(
            .POST, "/_sim/accounts",
            ["account_id": .string(account), "api_key": .string(key), "name": "Integration Store"])
        try await CredentialStore(redis: redis, keys: keys).saveAPIKey(
            accountID: account, apiKey: key, klaviyoAccountID: account, klaviyoAccountName: "Integration Store")
        return (account, key)
    }

    /// Runs a one-shot `klaviyo-relay <arguments>` for this prefix with extra environment (e.g.
    /// `RELAY_ENCRYPTION_KEY`) and waits for it to exit.
    func runCLI(
        _ arguments: [String], environment extra: [String: String], timeout: Duration = .seconds(60)
    ) async throws -> RelayRun {
        let directory = FileManager.default.temporaryDirectory
        let out = directory.appendingPathComponent("relay-cli-\(UUID().uuidString).out")
        let err = directory.appendingPathComponent("relay-cli-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: IntegrationEnvironment.relayBinary)
        process.arguments = arguments + ["--dev", "--log-level", "warning"]
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where key.hasPrefix("RELAY_") { environment[key] = nil }
        environment.merge(
            [
                "RELAY_QUEUE_PREFIX": prefix, "RELAY_AMQP_URL": IntegrationEnvironment.amqpURL,
                "RELAY_REDIS_URL": IntegrationEnvironment.redisURL,
                "RELAY_DELIVERY_LIMIT": String(topology.deliveryLimit),
            ]
        ) { _, new in new }
        environment.merge(extra) { _, new in new }
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        let finished = ExitStatus()
        process.terminationHandler = { ended in finished.value.withLock { $0 = ended.terminationStatus } }
        try process.run()
        try await eventually("klaviyo-relay \(arguments.joined(separator: " ")) to exit", timeout: timeout) {
            finished.value.withLock { $0 != nil }
        }
        return RelayRun(
            status: finished.value.withLock { $0! }, stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }
}

/// Issue #9 item 2: a connection sealed under a key the consumer does not hold is not an outage. Its commands are
/// dead-lettered `credential_unreadable` at once (no in-process retries, no redelivery), other accounts keep
/// flowing, and the dead letters replay once the key is back.
@Suite("Unreadable credentials end to end", .timeLimit(.minutes(4)))
struct UnreadableCredentialTests {
    func header(_ delivery: AMQPDelivery, _ name: String) -> String? {
        delivery.properties.headers[name]?.stringValue
    }

    @Test func anUnreadableAccountIsDeadLetteredAtOnceWhileAnotherAccountFlows() async throws {
        try await withRelayStack { stack in
            let current = try EncryptionKeyRing.generateSpecification(keyID: "cur")
            let removed = try EncryptionKeyRing.generateSpecification(keyID: "gone")
            let healthy = try await stack.connectSealed(with: try EncryptionKeyRing(specification: current))
            let broken = try await stack.connectSealed(with: try EncryptionKeyRing(specification: removed))
            let metricsPort = try freePort()
            let consumer = try stack.startConsumer(
                environment: ["RELAY_ENCRYPTION_KEY": current, "RELAY_METRICS_PORT": String(metricsPort)])
            try await stack.waitForConsumers(1, queue: .profiles)

            let count = 12
            var brokenIDs: [String] = []
            var healthyIDs: [String] = []
            let started = ContinuousClock.now
            for index in 0..<count {
                // Interleaved: A, B, A, B, …
                for (account, name) in [(broken.accountID, "a"), (healthy.accountID, "b")] {
                    let id = stack.id("\(name)-\(index)")
                    // profile.upsert: Klaviyo's limits for it (75/s burst) admit B's whole burst at once.
                    let payload: JSONValue = [
                        "profile": ["email": .string("\(name).\(index).\(stack.prefix)@example.com")]
                    ]
                    try await stack.publish(
                        commandBody(id: id, type: "profile.upsert", accountID: account, payload: payload),
                        routingKey: "profile.upsert", messageID: id)
                    if name == "a" { brokenIDs.append(id) } else { healthyIDs.append(id) }
                }
            }
            let deadIDs = { Set(stack.deadLetters.compactMap { self.header($0, DeadLetter.Header.commandID) }) }
            // Far below the old behaviour (about 100 backed-off retries per delivery, then redeliveries).
            try await eventually("A's dead letters and B's results", timeout: .seconds(20)) {
                deadIDs().isSuperset(of: brokenIDs) && healthyIDs.allSatisfy { !stack.results(for: $0).isEmpty }
            }
            let elapsed = ContinuousClock.now - started
            #expect(elapsed < .seconds(15), "took \(elapsed)")

            for id in brokenIDs {
                let letters = stack.deadLetters.filter { header($0, DeadLetter.Header.commandID) == id }
                #expect(letters.count == 1, "\(id): \(letters.count) dead letters")
                let letter = try #require(letters.first)
                #expect(header(letter, DeadLetter.Header.errorCode) == "credential_unreadable")
                #expect(letter.properties.headers[DeadLetter.Header.attempts]?.intValue == 1)
                let detail = header(letter, DeadLetter.Header.errorDetail) ?? ""
                #expect(detail.contains(broken.accountID) && detail.contains("key id gone"), "\(detail)")
                #expect(!detail.contains(broken.apiKey))
                #expect(stack.results(for: id).isEmpty)
            }
            for id in healthyIDs {
                #expect(stack.results(for: id).map(\.outcome) == [.succeeded], "\(id)")
            }
            #expect(stack.deadLetters.allSatisfy { header($0, DeadLetter.Header.accountID) == broken.accountID })
            #expect(try await stack.klaviyoRequests(account: broken.accountID).isEmpty, "A reached Klaviyo")
            #expect(try await stack.amqp.messageCount(queue: stack.topology.queueName(.profiles)).messages == 0)

            // Nothing was retried or handed back for redelivery; every A command logged the key id once.
            let lines = consumer.log.split(separator: "\n").compactMap { try? JSONValue.parse(Array($0.utf8)) }
            let aboutBroken = lines.filter { $0["account_id"]?.stringValue == broken.accountID }
            #expect(!aboutBroken.contains { $0["msg"]?.stringValue == "command handed back for redelivery" })
            #expect(!lines.contains { ($0["msg"]?.stringValue ?? "").hasPrefix("credential lookup failed") })
            let unreadableLogs = aboutBroken.filter {
                $0["level"]?.stringValue == "error" && $0["encryption.key_id"]?.stringValue == "gone"
                    && $0["credential.field"]?.stringValue == "api_key"
            }
            #expect(Set(unreadableLogs.compactMap { $0["command_id"]?.stringValue }) == Set(brokenIDs))
            #expect(!consumer.log.contains(broken.apiKey) && !consumer.log.contains(healthy.apiKey))

            // Counted by reason (a closed set of labels), after each dead letter's ack: poll.
            try await eventually("relay_credential_unreadable_total in /metrics", timeout: .seconds(10)) {
                let metrics =
                    (try? await stack.http.execute(HTTPRequest(url: "http://127.0.0.1:\(metricsPort)/metrics"))
                        .bodyString) ?? ""
                return metrics.split(separator: "\n").contains {
                    $0.hasPrefix("relay_credential_unreadable_total{") && $0.contains("reason=\"unknown_key_id\"")
                        && $0.hasSuffix(" \(count)")
                }
            }

            // The key is restored: a consumer holding it, and the dead letters replay into results.
            await consumer.stop()
            _ = try stack.startConsumer(environment: ["RELAY_ENCRYPTION_KEY": "\(current),\(removed)"])
            try await stack.waitForConsumers(1, queue: .profiles)
            let replay = try await stack.runCLI(
                ["dlq", "replay", "--code", "credential_unreadable", "--account", broken.accountID], environment: [:])
            #expect(replay.status == 0, "\(replay.stdout) \(replay.stderr)")
            #expect(replay.stdout.contains("replayed \(count), failed 0"), "\(replay.stdout)")
            try await eventually("A's replayed commands to succeed", timeout: .seconds(30)) {
                brokenIDs.allSatisfy { !stack.results(for: $0).isEmpty }
            }
            for id in brokenIDs {
                #expect(stack.results(for: id).map(\.outcome) == [.succeeded], "\(id)")
            }
        }
    }

    /// A connection key that is not a hash (`WRONGTYPE`: written by something other than the relay) is unreadable,
    /// not an outage: its commands are dead-lettered `credential_unreadable` at once, where each held a consumer
    /// slot through about 100 in-place retries per delivery; a reconnect replaces the key (its script failed on
    /// the old type) and the account flows again.
    @Test func aConnectionKeyThatIsNotAHashIsDeadLetteredAtOnceAndAReconnectRepairsIt() async throws {
        try await withRelayStack { stack in
            let specification = try EncryptionKeyRing.generateSpecification(keyID: "cur")
            let keys = try EncryptionKeyRing(specification: specification)
            let account = try await stack.connectSealed(with: keys)
            _ = try await stack.redis.send(["SET", RedisKeys.connection(account.accountID), "not a hash"])
            // No credential cache: the command after the reconnect must see the new record, not a cached failure.
            _ = try stack.startConsumer(
                environment: ["RELAY_ENCRYPTION_KEY": specification, "RELAY_CREDENTIAL_CACHE_TTL": "0s"])
            try await stack.waitForConsumers(1, queue: .profiles)
            func publish(_ name: String) async throws -> String {
                let id = stack.id(name)
                let payload: JSONValue = ["profile": ["email": .string("\(name).\(stack.prefix)@example.com")]]
                try await stack.publish(
                    commandBody(id: id, type: "profile.upsert", accountID: account.accountID, payload: payload),
                    routingKey: "profile.upsert", messageID: id)
                return id
            }
            var ids: [String] = []
            for index in 0..<4 { ids.append(try await publish("wrongtype-\(index)")) }
            try await eventually("the dead letters", timeout: .seconds(20)) {
                Set(stack.deadLetters.compactMap { self.header($0, DeadLetter.Header.commandID) }).isSuperset(of: ids)
            }
            for id in ids {
                let letter = try #require(stack.deadLetters.first { header($0, DeadLetter.Header.commandID) == id })
                #expect(header(letter, DeadLetter.Header.errorCode) == "credential_unreadable")
                let detail = header(letter, DeadLetter.Header.errorDetail) ?? ""
                #expect(detail.contains("not a hash") && detail.contains(account.accountID), "\(detail)")
            }
            #expect(try await stack.klaviyoRequests(account: account.accountID).isEmpty, "reached Klaviyo")

            // The customer reconnects: the record is replaced, and the account's commands go through again.
            try await CredentialStore(redis: stack.redis, keys: keys).saveAPIKey(
                accountID: account.accountID, apiKey: account.apiKey, klaviyoAccountID: account.accountID,
                klaviyoAccountName: nil)
            let after = try await publish("wrongtype-after")
            try await eventually("the command after the reconnect", timeout: .seconds(20)) {
                !stack.results(for: after).isEmpty
            }
            #expect(stack.results(for: after).map(\.outcome) == [.succeeded])
        }
    }

    /// Disconnecting (or marking for re-authorization) an account whose record is not a hash removes the record,
    /// which held nothing to keep; the script failed on it with `WRONGTYPE`, so the account could not be
    /// disconnected.
    @Test func aConnectionKeyThatIsNotAHashCanBeDisconnected() async throws {
        try await withRelayStack { stack in
            let keys = try EncryptionKeyRing(specification: EncryptionKeyRing.generateSpecification(keyID: "cur"))
            let account = try await stack.connectSealed(with: keys)
            let key = RedisKeys.connection(account.accountID)
            _ = try await stack.redis.send(["SET", key, "not a hash"])
            let store = CredentialStore(redis: stack.redis, keys: keys)
            await #expect(throws: CredentialUnreadable.self) { try await store.load(accountID: account.accountID) }
            #expect(try await store.changeState(accountID: account.accountID, to: .disconnected))
            #expect(try await stack.redis.send(["EXISTS", key]).int == 0)
            #expect(try await store.load(accountID: account.accountID) == nil)
            #expect(try await store.changeState(accountID: account.accountID, to: .disconnected) == false)
        }
    }

    @Test func theCacheKeepsAFailureNoLongerThanItsTTL() async throws {
        try await withRelayStack { stack in
            let current = try EncryptionKeyRing(specification: EncryptionKeyRing.generateSpecification(keyID: "cur"))
            let removed = try EncryptionKeyRing(specification: EncryptionKeyRing.generateSpecification(keyID: "gone"))
            let account = try await stack.connectSealed(with: removed)
            let store = CredentialStore(redis: stack.redis, keys: current)
            let ttl = Duration.milliseconds(400)
            let cache = CredentialCache(store: store, ttl: ttl)
            let firstFetch = ContinuousClock.now
            await #expect(throws: CredentialUnreadable.self) { try await cache.connection(for: account.accountID) }
            // The customer reconnects (secrets sealed under the current key): seen once the TTL is over, not later.
            try await store.saveAPIKey(
                accountID: account.accountID, apiKey: account.apiKey, klaviyoAccountID: account.accountID,
                klaviyoAccountName: nil)
            // Within the TTL the cached failure still answers (checked only while the TTL surely runs: a loaded
            // machine may have spent it on the write above).
            if ContinuousClock.now - firstFetch < ttl / 2 {
                await #expect(throws: CredentialUnreadable.self, "the failure is cached for the TTL") {
                    try await cache.connection(for: account.accountID)
                }
            }
            try await eventually("the reconnected credential", timeout: .seconds(5)) {
                (try? await cache.connection(for: account.accountID))??.apiKey == account.apiKey
            }
            // Not kept beyond its TTL (a failure cached for much longer, or for good, fails this; the margin is
            // scheduling on a loaded machine).
            #expect(ContinuousClock.now - firstFetch < ttl + .seconds(2))
        }
    }

    @Test func theTokenManagerPassesAnUnreadableConnectionThroughWithoutARefresh() async throws {
        try await withRelayStack { stack in
            let app = try await stack.createOAuthApp()
            let record = try await stack.connectOAuth(app)
            // The consumer's ring lacks the key that sealed the stored tokens (the stack's development key).
            let other = try EncryptionKeyRing(specification: EncryptionKeyRing.generateSpecification(keyID: "other"))
            let manager = TokenManager(
                store: CredentialStore(redis: stack.redis, keys: other), oauth: app.client(stack),
                logger: IntegrationEnvironment.logger, publishEvent: { _ in })
            do {
                _ = try await manager.refreshAfterUnauthorized(record)
                Issue.record("refreshed a connection it cannot read")
            } catch let error as CredentialUnreadable {
                #expect(error.accountID == record.accountID)
                #expect(error.reason == .unknownKeyID)
                #expect(error.keyID == stack.keys.currentKeyID)
            }
            #expect(manager.stats.refreshCalls == 0)
            // Still connected under its real key: nothing was marked reauth_required.
            #expect(try await stack.credentialStore.load(accountID: record.accountID)?.state == .connected)
        }
    }

    @Test func anUnreadableConnectionCanStillBeDisconnectedAndShowsReconnectNeeded() async throws {
        try await withRelayStack { stack in
            let removed = try EncryptionKeyRing(specification: EncryptionKeyRing.generateSpecification(keyID: "gone"))
            let account = try await stack.connectSealed(with: removed)
            let lifecycle = ConnectionLifecycle(
                store: stack.credentialStore, oauth: nil, logger: IntegrationEnvironment.logger, publish: { _ in })
            let status = try await lifecycle.status(accountID: account.accountID)
            #expect(status["state"]?.stringValue == "reconnect_needed")
            #expect(try await lifecycle.disconnect(accountID: account.accountID))
            let fields = try await stack.redis.hashGetAll(RedisKeys.connection(account.accountID))
            #expect(fields["state"] == "disconnected")
            #expect(fields["api_key"] == nil)
            #expect(try await lifecycle.disconnect(accountID: account.accountID) == false)
        }
    }
}
