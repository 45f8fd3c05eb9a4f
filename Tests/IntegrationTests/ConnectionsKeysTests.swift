import Foundation
import Klaviyo
import Logging
import Redis
import Relay
import RelayTestSupport
import Synchronization
import Testing

/// Connections of one test in the real Redis, under account ids `rk-<uuid>-…` so `--accounts rk-<uuid>-*` keeps
/// `connections rekey` / `keys` to them (other suites' connections share the database).
final class KeyRotationFixture: Sendable {
    let redis: RedisClient
    let prefix = "rk-\(UUID().uuidString.lowercased().prefix(12))"
    let oldSpec = try! EncryptionKeyRing.generateSpecification(keyID: "old")
    let newSpec = try! EncryptionKeyRing.generateSpecification(keyID: "new")
    let goneSpec = try! EncryptionKeyRing.generateSpecification(keyID: "gone")
    let created = Mutex<[String]>([])

    init() async throws {
        redis = RedisClient(
            configuration: try RedisConfiguration(url: IntegrationEnvironment.redisURL),
            logger: IntegrationEnvironment.logger)
        do {
            try await redis.ping()
        } catch {
            Issue.record("Redis is not reachable at \(IntegrationEnvironment.redisURL): \(error)")
            throw error
        }
    }

    /// The ring after rotation: `new` encrypts, `old` still decrypts.
    var rotatedSpec: String { "\(newSpec),\(oldSpec)" }

    func store(_ specification: String) throws -> CredentialStore {
        CredentialStore(redis: redis, keys: try EncryptionKeyRing(specification: specification))
    }

    func account(_ name: String) -> String {
        let id = "\(prefix)-\(name)"
        created.withLock { $0.append(id) }
        return id
    }

    /// An OAuth connection (access and refresh token) sealed under `specification`.
    func saveOAuth(_ accountID: String, under specification: String) async throws -> ConnectionRecord {
        var record = ConnectionRecord(
            accountID: accountID, method: .oauth, state: .connected, klaviyoAccountID: "K\(accountID)",
            scope: "accounts:read", expiresAt: Timestamp.nowSeconds() + 3600, connectedAt: Timestamp.now(),
            updatedAt: "2026-01-01T00:00:00Z", accessToken: "at-\(UUID().uuidString)",
            refreshToken: "rt-\(UUID().uuidString)")
        record.version = try await store(specification).replace(record)
        return record
    }

    func fields(_ accountID: String) async throws -> [String: String] {
        try await redis.hashGetAll(RedisKeys.connection(accountID))
    }

    /// The key id prefix of each secret field.
    func keyIDs(_ accountID: String) async throws -> [String: String] {
        try await fields(accountID).filter { CredentialStore.secretFieldNames.contains($0.key) }
            .compactMapValues { SealedSecret(stored: $0)?.keyID }
    }

    func version(_ accountID: String) async throws -> String? { try await fields(accountID)["version"] }

    /// `klaviyo-relay connections <arguments> --accounts <prefix>-*` with `RELAY_ENCRYPTION_KEY=specification`.
    func cli(_ arguments: [String], key specification: String) async throws -> RelayRun {
        let directory = FileManager.default.temporaryDirectory
        let out = directory.appendingPathComponent("relay-cli-\(UUID().uuidString).out")
        let err = directory.appendingPathComponent("relay-cli-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        let binary = IntegrationEnvironment.relayBinary
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            Issue.record("relay binary missing at \(binary): build it first (swift build)")
            throw TimedOut(what: "relay binary")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments =
            ["connections"] + arguments + ["--accounts", "\(prefix)-*", "--dev", "--log-level", "warning"]
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where key.hasPrefix("RELAY_") { environment[key] = nil }
        environment["RELAY_REDIS_URL"] = IntegrationEnvironment.redisURL
        environment["RELAY_ENCRYPTION_KEY"] = specification
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        let finished = ExitStatus()
        process.terminationHandler = { ended in finished.value.withLock { $0 = ended.terminationStatus } }
        try process.run()
        try await eventually("klaviyo-relay connections \(arguments.joined(separator: " "))", timeout: .seconds(60)) {
            finished.value.withLock { $0 != nil }
        }
        return RelayRun(
            status: finished.value.withLock { $0! }, stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    func tearDown() async {
        let keys = created.withLock { $0 }.flatMap { [RedisKeys.connection($0), RedisKeys.lock($0)] }
        if !keys.isEmpty { _ = try? await redis.delete(keys) }
        await redis.shutdown()
    }
}

func withKeyRotation(_ body: (KeyRotationFixture) async throws -> Void) async throws {
    let fixture = try await KeyRotationFixture()
    do {
        try await body(fixture)
    } catch {
        await fixture.tearDown()
        throw error
    }
    await fixture.tearDown()
}

extension CredentialStore {
    /// The secret fields of a connection hash (test access).
    static var secretFieldNames: Set<String> { ["api_key", "access_token", "refresh_token"] }
}

/// `klaviyo-relay connections rekey` and `connections keys` against the real Redis (issue #9 item 2).
@Suite("Connections rekey and keys", .timeLimit(.minutes(3)))
struct ConnectionsKeysTests {
    func keyEntry(_ run: RelayRun, _ keyID: String) -> JSONValue? {
        let json = try? JSONValue.parse(Array(run.stdout.utf8))
        return json?["keys"]?.arrayValue?.first { $0["key_id"]?.stringValue == keyID }
    }

    @Test func rekeyMovesEverySecretToTheCurrentKeyOnceAndTheOldKeyBecomesRetirable() async throws {
        try await withKeyRotation { fixture in
            let apiKeyAccount = fixture.account("apikey")
            let oauthAccount = fixture.account("oauth")
            let disconnectedAccount = fixture.account("disconnected")
            let currentAccount = fixture.account("current")
            let oldStore = try fixture.store(fixture.oldSpec)
            try await oldStore.saveAPIKey(
                accountID: apiKeyAccount, apiKey: "pk_rotate_me", klaviyoAccountID: "K1", klaviyoAccountName: nil)
            let oauth = try await fixture.saveOAuth(oauthAccount, under: fixture.oldSpec)
            try await oldStore.saveAPIKey(
                accountID: disconnectedAccount, apiKey: "pk_gone", klaviyoAccountID: "K3", klaviyoAccountName: nil)
            try await oldStore.changeState(accountID: disconnectedAccount, to: .disconnected)
            try await fixture.store(fixture.rotatedSpec).saveAPIKey(
                accountID: currentAccount, apiKey: "pk_current", klaviyoAccountID: "K4", klaviyoAccountName: nil)
            let all = [apiKeyAccount, oauthAccount, disconnectedAccount, currentAccount]
            var before: [String: [String: String]] = [:]
            for account in all { before[account] = try await fixture.fields(account) }

            // keys, before: old still seals 3 fields of 2 accounts; not retirable.
            let keysBefore = try await fixture.cli(["keys", "--json"], key: fixture.rotatedSpec)
            #expect(keysBefore.status == 0, "\(keysBefore.stderr)")
            #expect(keyEntry(keysBefore, "old")?["fields"] == .int(3))
            #expect(keyEntry(keysBefore, "old")?["accounts"] == .int(2))
            #expect(keyEntry(keysBefore, "old")?["status"]?.stringValue == "configured")
            #expect(keyEntry(keysBefore, "old")?["retirable"] == .bool(false))
            #expect(keyEntry(keysBefore, "new")?["status"]?.stringValue == "current")
            #expect(keyEntry(keysBefore, "new")?["fields"] == .int(1))
            let tableBefore = try await fixture.cli(["keys"], key: fixture.rotatedSpec)
            #expect(tableBefore.stdout.contains("old: still seals 3 field(s) of 2 account(s)"), "\(tableBefore.stdout)")

            // A dry run counts and writes nothing.
            let dry = try await fixture.cli(["rekey", "--dry-run"], key: fixture.rotatedSpec)
            #expect(dry.status == 0, "\(dry.stderr)")
            #expect(dry.stdout.contains("would re-encrypt 2 (3 fields), already current 2, unreadable 0, done"))
            for account in all { #expect(try await fixture.fields(account) == before[account]) }

            let run = try await fixture.cli(["rekey", "--progress-every", "1"], key: fixture.rotatedSpec)
            #expect(run.status == 0, "\(run.stdout) \(run.stderr)")
            #expect(
                run.stdout.contains("re-encrypted 2 (3 fields), already current 2, unreadable 0, done"), "\(run.stdout)"
            )
            #expect(run.stdout.contains("resume with --cursor"), "progress lines name the cursor: \(run.stdout)")
            #expect(!run.stdout.contains("pk_rotate_me") && !run.stdout.contains(oauth.refreshToken!))

            // Every secret is now under `new`; versions bumped once where something changed; updated_at kept.
            for account in [apiKeyAccount, oauthAccount] {
                let after = try await fixture.fields(account)
                #expect(try await fixture.keyIDs(account).values.allSatisfy { $0 == "new" })
                #expect(Int(after["version"] ?? "") == Int(before[account]?["version"] ?? "")! + 1)
                #expect(after["updated_at"] == before[account]?["updated_at"])
                #expect(after["key_id"] == "new")
            }
            #expect(try await fixture.fields(disconnectedAccount) == before[disconnectedAccount])
            #expect(try await fixture.fields(currentAccount) == before[currentAccount])
            // Readable with the new key alone: the old one can go.
            let newOnly = try fixture.store(fixture.newSpec)
            #expect(try await newOnly.load(accountID: apiKeyAccount)?.apiKey == "pk_rotate_me")
            let reloaded = try #require(try await newOnly.load(accountID: oauthAccount))
            #expect(reloaded.accessToken == oauth.accessToken && reloaded.refreshToken == oauth.refreshToken)
            #expect(reloaded.expiresAt == oauth.expiresAt && reloaded.scope == oauth.scope)

            // Idempotent: a second run changes nothing and says so.
            var afterFirst: [String: [String: String]] = [:]
            for account in all { afterFirst[account] = try await fixture.fields(account) }
            let again = try await fixture.cli(["rekey"], key: fixture.rotatedSpec)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("nothing to do"), "\(again.stdout)")
            #expect(again.stdout.contains("re-encrypted 0 (0 fields), already current 4"), "\(again.stdout)")
            for account in all { #expect(try await fixture.fields(account) == afterFirst[account]) }

            // keys, after: old seals nothing and can be retired.
            let keysAfter = try await fixture.cli(["keys", "--json"], key: fixture.rotatedSpec)
            #expect(keyEntry(keysAfter, "old")?["fields"] == .int(0))
            #expect(keyEntry(keysAfter, "old")?["retirable"] == .bool(true))
            #expect(keyEntry(keysAfter, "new")?["fields"] == .int(4))
            #expect(keyEntry(keysAfter, "new")?["accounts"] == .int(3))
            let tableAfter = try await fixture.cli(["keys"], key: fixture.rotatedSpec)
            #expect(tableAfter.stdout.contains("old: unused; it can be retired"), "\(tableAfter.stdout)")
        }
    }

    @Test func anAccountUnderAnUnknownKeyIsReportedSkippedAndFailsTheRun() async throws {
        try await withKeyRotation { fixture in
            let readable = fixture.account("readable")
            let unreadable = fixture.account("unreadable")
            try await fixture.store(fixture.oldSpec).saveAPIKey(
                accountID: readable, apiKey: "pk_readable", klaviyoAccountID: "K1", klaviyoAccountName: nil)
            try await fixture.store(fixture.goneSpec).saveAPIKey(
                accountID: unreadable, apiKey: "pk_unreadable", klaviyoAccountID: "K2", klaviyoAccountName: nil)
            let untouched = try await fixture.fields(unreadable)

            let keys = try await fixture.cli(["keys"], key: fixture.rotatedSpec)
            #expect(keys.status == 0)
            #expect(keys.stdout.contains("NOT CONFIGURED"), "\(keys.stdout)")
            #expect(keys.stdout.contains("gone: NOT CONFIGURED: 1 account(s) cannot be read"), "\(keys.stdout)")

            let run = try await fixture.cli(["rekey"], key: fixture.rotatedSpec)
            #expect(run.status != 0)
            #expect(
                run.stdout.contains("unreadable: account \(unreadable) field api_key key id gone (unknown_key_id)"),
                "\(run.stdout)")
            #expect(run.stdout.contains("re-encrypted 1 (1 fields), already current 0, unreadable 1, done"))
            #expect(run.stderr.contains("1 account(s) were not re-encrypted"), "\(run.stderr)")
            #expect(!run.stdout.contains("pk_unreadable") && !run.stderr.contains("pk_unreadable"))
            #expect(try await fixture.keyIDs(readable) == ["api_key": "new"])
            #expect(try await fixture.fields(unreadable) == untouched)
        }
    }

    @Test func aRunResumedFromAPrintedCursorFinishesTheWalk() async throws {
        try await withKeyRotation { fixture in
            let accounts = (0..<6).map { fixture.account("resume-\($0)") }
            for account in accounts {
                try await fixture.store(fixture.oldSpec).saveAPIKey(
                    accountID: account, apiKey: "pk_\(account)", klaviyoAccountID: account, klaviyoAccountName: nil)
            }
            // A dry run in small pages prints the cursor of every step; resume a real run from a later one.
            let dry = try await fixture.cli(
                ["rekey", "--dry-run", "--scan-count", "1", "--progress-every", "1"], key: fixture.rotatedSpec)
            let cursors = dry.stdout.split(separator: "\n").compactMap { line in
                line.range(of: "resume with --cursor ").map { String(line[$0.upperBound...]) }
            }
            #expect(cursors.count >= 5, "\(dry.stdout)")
            let resumeFrom = try #require(cursors.dropFirst(2).first { $0 != "0" })
            let partial = try await fixture.cli(["rekey", "--cursor", resumeFrom], key: fixture.rotatedSpec)
            #expect(partial.status == 0, "\(partial.stderr)")
            #expect(partial.stdout.contains(", done"))
            var movedByPartial = 0
            for account in accounts {
                if try await fixture.keyIDs(account) == ["api_key": "new"] { movedByPartial += 1 }
            }
            #expect(movedByPartial >= 1, "\(partial.stdout)")
            #expect(movedByPartial < accounts.count, "a resumed walk skips what came before its cursor")
            // From the start: the rest, and only the rest.
            let rest = try await fixture.cli(["rekey"], key: fixture.rotatedSpec)
            #expect(rest.stdout.contains("re-encrypted \(accounts.count - movedByPartial) "), "\(rest.stdout)")
            for account in accounts { #expect(try await fixture.keyIDs(account) == ["api_key": "new"]) }

            let bad = try await fixture.cli(["rekey", "--cursor", "abc"], key: fixture.rotatedSpec)
            #expect(bad.status != 0)
        }
    }

    @Test func theResealWriteIsVersionCheckedAndWaitsForARefreshInFlight() async throws {
        try await withKeyRotation { fixture in
            let account = fixture.account("race")
            let oldStore = try fixture.store(fixture.oldSpec)
            let rotated = try fixture.store(fixture.rotatedSpec)
            let first = try await oldStore.saveAPIKey(
                accountID: account, apiKey: "pk_first", klaviyoAccountID: "K", klaviyoAccountName: nil)
            // Read, then another writer (a reconnect, a refresh) moves the version before the rekey writes.
            let stale = try rotated.keys.seal("pk_first", context: RedisKeys.connection(account) + "#api_key")
            let second = try await oldStore.saveAPIKey(
                accountID: account, apiKey: "pk_second", klaviyoAccountID: "K", klaviyoAccountName: nil)
            #expect(second.version == first.version + 1)
            let fenced = try await rotated.reseal(
                accountID: account, expectedVersion: first.version, fields: ["api_key": stale])
            #expect(fenced == .versionMoved)
            #expect(try await rotated.load(accountID: account)?.apiKey == "pk_second")
            #expect(try await fixture.version(account) == String(second.version))

            // A token refresh holds the account's lock: nothing is written, even at the right version.
            let fresh = try rotated.keys.seal("pk_second", context: RedisKeys.connection(account) + "#api_key")
            _ = try await fixture.redis.send(["SET", RedisKeys.lock(account), "someone", "PX", "30000"])
            let busy = try await rotated.reseal(
                accountID: account, expectedVersion: second.version, fields: ["api_key": fresh])
            #expect(busy == .refreshInProgress)
            #expect(try await fixture.keyIDs(account) == ["api_key": "old"])
            var rekey = CredentialRekey(store: rotated)
            rekey.maxAttempts = 3
            rekey.busyPause = .milliseconds(10)
            #expect(try await rekey.rekey(accountID: account) == .contended)
            #expect(try await fixture.version(account) == String(second.version))

            // Lock released: the rekey writes the newest value, never the stale one.
            _ = try await fixture.redis.delete([RedisKeys.lock(account)])
            #expect(try await rekey.rekey(accountID: account) == .reencrypted(fields: 1, version: second.version + 1))
            #expect(try await fixture.store(fixture.newSpec).load(accountID: account)?.apiKey == "pk_second")

            // The exact version matters: a deleted connection is not recreated by a stale reseal.
            _ = try await fixture.redis.delete([RedisKeys.connection(account)])
            let gone = try await rotated.reseal(
                accountID: account, expectedVersion: second.version + 1, fields: ["api_key": fresh])
            #expect(gone == .versionMoved)
            #expect(try await fixture.fields(account).isEmpty)
        }
    }
}
