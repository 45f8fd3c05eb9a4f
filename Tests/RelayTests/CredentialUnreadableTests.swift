import Klaviyo
import Logging
import Redis
import Relay
import Testing

/// Decoding stored connections whose secrets cannot be read, and the key-usage survey of `connections keys`,
/// without a server (the store's Redis client never connects: nothing here sends a command).
@Suite("Unreadable credentials")
struct CredentialUnreadableTests {
    let oldSpec = try! EncryptionKeyRing.generateSpecification(keyID: "old")
    let newSpec = try! EncryptionKeyRing.generateSpecification(keyID: "new")

    func store(_ specification: String) throws -> CredentialStore {
        let redis = RedisClient(
            configuration: try RedisConfiguration(url: "redis://127.0.0.1:1/0"), logger: Logger(label: "test"))
        return CredentialStore(redis: redis, keys: try EncryptionKeyRing(specification: specification))
    }

    /// The hash `saveAPIKey` would write, sealed with `keys` (only the fields `decode` reads).
    func sealedHash(account: String, apiKey: String, keys: EncryptionKeyRing) throws -> [String: String] {
        [
            "method": "api_key", "state": "connected", "version": "3",
            "api_key": try keys.seal(apiKey, context: "kr:{\(account)}:conn#api_key").stored,
        ]
    }

    @Test func aKeyIDMissingFromTheRingIsUnknownKeyIDNamingAccountFieldAndKey() throws {
        let sealer = try store(oldSpec)
        let fields = try sealedHash(account: "org_a", apiKey: "pk_topsecret", keys: sealer.keys)
        let reader = try store(newSpec)
        do {
            _ = try reader.decode(accountID: "org_a", fields: fields)
            Issue.record("decoded a secret sealed under a key the ring does not hold")
        } catch {
            #expect(
                error == CredentialUnreadable(accountID: "org_a", field: "api_key", keyID: "old", reason: .unknownKeyID)
            )
            #expect(error.description.contains("org_a") && error.description.contains("old"))
            #expect(!error.description.contains("pk_topsecret"))
            #expect(!error.description.contains(String(fields["api_key"]!.dropFirst(4).prefix(12))))
        }
        // The same hash decodes with a ring that still holds the old key.
        let both = try store("\(newSpec),\(oldSpec)")
        #expect(try both.decode(accountID: "org_a", fields: fields).apiKey == "pk_topsecret")
    }

    @Test func aCiphertextThatDoesNotAuthenticateIsDecryptionFailed() throws {
        let keys = try store(oldSpec)
        var fields = try sealedHash(account: "org_a", apiKey: "pk_topsecret", keys: keys.keys)
        // Copied from another account: the context (account, field) is authenticated.
        let copied = try sealedHash(account: "org_b", apiKey: "pk_other", keys: keys.keys)
        fields["api_key"] = copied["api_key"]
        #expect(
            throws: CredentialUnreadable(accountID: "org_a", field: "api_key", keyID: "old", reason: .decryptionFailed)
        ) {
            try keys.decode(accountID: "org_a", fields: fields)
        }
        // Not base64, or too short to be nonce + tag.
        for broken in ["old:!!!notbase64", "old:AAAA"] {
            fields["api_key"] = broken
            #expect(
                throws: CredentialUnreadable(
                    accountID: "org_a", field: "api_key", keyID: "old", reason: .decryptionFailed)
            ) {
                try keys.decode(accountID: "org_a", fields: fields)
            }
        }
    }

    @Test(arguments: ["pk_plaintextkeywithoutcolon", "", "has space:abc", String(repeating: "k", count: 65) + ":abc"])
    func aFieldThatIsNotKidColonCiphertextNeverEchoesItsValue(_ stored: String) throws {
        let keys = try store(oldSpec)
        let fields = ["method": "oauth", "state": "connected", "version": "1", "access_token": stored]
        do {
            _ = try keys.decode(accountID: "org_a", fields: fields)
            Issue.record("decoded \(stored)")
        } catch {
            #expect(error.reason == .decryptionFailed)
            #expect(error.keyID == "")
            #expect(error.field == "access_token")
            if !stored.isEmpty { #expect(!error.description.contains(stored.prefix(8))) }
        }
    }

    @Test func aRecordWithoutSecretsStillDecodes() throws {
        let record = try store(newSpec).decode(
            accountID: "org_a", fields: ["method": "oauth", "state": "reauth_required", "version": "9"])
        #expect(record.state == .reauthRequired && record.version == 9 && record.accessToken == nil)
    }

    @Test func keyUsageCountsAccountsAndFieldsPerKeyAndMarksStatus() throws {
        let ring = try EncryptionKeyRing(
            specification: "\(newSpec),\(oldSpec),\(EncryptionKeyRing.generateSpecification(keyID: "spare"))")
        let usage = CredentialKeyUsage(
            keys: ring,
            connections: [
                ("a", ["api_key": "old:x"]),
                ("b", ["access_token": "old:x", "refresh_token": "new:y"]),
                ("c", ["access_token": "gone:x", "refresh_token": "gone:y"]),
                ("d", ["state": "disconnected"]),
                ("e", ["api_key": "pk_plaintext"]),
            ])
        #expect(usage.accountsScanned == 5)
        #expect(usage.accountsWithoutSecrets == 1)
        #expect(usage.malformedFields == 1)
        let byID = Dictionary(uniqueKeysWithValues: usage.entries.map { ($0.keyID, $0) })
        #expect(usage.entries.map(\.keyID) == ["new", "old", "spare", "gone"])
        #expect(byID["new"]?.status == .current && byID["new"]?.accounts == 1 && byID["new"]?.fields == 1)
        #expect(byID["old"]?.status == .configured && byID["old"]?.accounts == 2 && byID["old"]?.fields == 2)
        #expect(byID["gone"]?.status == .notConfigured && byID["gone"]?.accounts == 1 && byID["gone"]?.fields == 2)
        #expect(byID["spare"]?.fields == 0)
        #expect(usage.entries.filter(\.retirable).map(\.keyID) == ["spare"])
        let report = usage.report.joined(separator: "\n")
        #expect(report.contains("NOT CONFIGURED"))
        #expect(report.contains("spare: unused; it can be retired"))
        #expect(report.contains("old: still seals 2 field(s) of 2 account(s)"))
        #expect(!report.contains("pk_plaintext"))
        let json = usage.json
        #expect(json["current"]?.stringValue == "new")
        let keys = json["keys"]?.arrayValue ?? []
        #expect(keys.count == 4)
        #expect(keys.first { $0["key_id"]?.stringValue == "gone" }?["status"]?.stringValue == "not_configured")
        #expect(keys.first { $0["key_id"]?.stringValue == "spare" }?["retirable"] == .bool(true))
    }

    @Test func progressLineNamesTheCursorUntilDone() {
        var progress = CredentialRekey.Progress()
        progress.scanned = 10
        progress.reencrypted = 4
        progress.fieldsReencrypted = 6
        progress.alreadyCurrent = 6
        progress.resumeCursor = "1536"
        #expect(
            progress.line(dryRun: false)
                == "scanned 10, re-encrypted 4 (6 fields), already current 6, unreadable 0, resume with --cursor 1536")
        progress.finished = true
        #expect(
            progress.line(dryRun: true).hasSuffix(
                "would re-encrypt 4 (6 fields), already current 6, unreadable 0, done"))
        #expect(!progress.hasFailures)
        progress.contended = ["x"]
        #expect(progress.hasFailures)
    }
}
