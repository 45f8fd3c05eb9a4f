public import Klaviyo

/// Which encryption key ids the stored connections use (`klaviyo-relay connections keys`): per key id, how many
/// accounts and secret fields are sealed with it, and whether `RELAY_ENCRYPTION_KEY` holds it. A configured key
/// that is not current and seals nothing can be retired. Reads only the `kid:` prefixes: nothing is decrypted.
public struct CredentialKeyUsage: Sendable, Hashable {
    /// How a key id relates to the configured key ring.
    public enum Status: String, Sendable, Hashable {
        /// The first key of `RELAY_ENCRYPTION_KEY`: new secrets are sealed with it.
        case current
        /// Configured (decrypts) but not current.
        case configured
        /// Found in Redis but not configured: those secrets cannot be read.
        case notConfigured = "not_configured"
    }

    /// One key id.
    public struct Entry: Sendable, Hashable {
        /// The key id.
        public var keyID: String
        /// Its status.
        public var status: Status
        /// Accounts with at least one secret sealed under it.
        public var accounts: Int
        /// Secret fields sealed under it.
        public var fields: Int

        /// A configured, non-current key that seals nothing: safe to remove from `RELAY_ENCRYPTION_KEY`.
        public var retirable: Bool { status == .configured && fields == 0 }
    }

    /// Every configured key id (current first, in ring order), then the unconfigured ones found, by name.
    public var entries: [Entry]
    /// Connection hashes visited.
    public var accountsScanned = 0
    /// Connections with no secret at all (disconnected, reauth required).
    public var accountsWithoutSecrets = 0
    /// Secret fields that are not `kid:ciphertext` at all (unreadable whatever the keys).
    public var malformedFields = 0

    /// Counts the key ids of already-read connection hashes against a key ring.
    public init(keys: EncryptionKeyRing, connections: [(accountID: String, fields: [String: String])]) {
        var fieldCounts: [String: Int] = [:]
        var accountCounts: [String: Int] = [:]
        for connection in connections {
            accountsScanned += 1
            var used = Set<String>()
            var secrets = 0
            for name in CredentialStore.secretFields {
                guard let stored = connection.fields[name] else { continue }
                secrets += 1
                guard let sealed = SealedSecret(stored: stored),
                    EncryptionKeyRing.isWellFormedKeyID(Substring(sealed.keyID))
                else {
                    malformedFields += 1
                    continue
                }
                fieldCounts[sealed.keyID, default: 0] += 1
                used.insert(sealed.keyID)
            }
            if secrets == 0 { accountsWithoutSecrets += 1 }
            for keyID in used { accountCounts[keyID, default: 0] += 1 }
        }
        var entries = keys.keyIDs.map { keyID in
            Entry(
                keyID: keyID, status: keyID == keys.currentKeyID ? .current : .configured,
                accounts: accountCounts[keyID] ?? 0, fields: fieldCounts[keyID] ?? 0)
        }
        for keyID in fieldCounts.keys.sorted() where !keys.holds(keyID) {
            entries.append(
                Entry(
                    keyID: keyID, status: .notConfigured, accounts: accountCounts[keyID] ?? 0,
                    fields: fieldCounts[keyID] ?? 0))
        }
        self.entries = entries
    }

    /// Scans every `kr:{*}:conn` hash (or those of the account ids matching the glob `accounts`) through `store`
    /// and counts its key ids.
    public static func survey(
        store: CredentialStore, accounts: String = "*", scanCount: Int = 500
    ) async throws -> CredentialKeyUsage {
        var connections: [(accountID: String, fields: [String: String])] = []
        var seen = Set<String>()
        var cursor = "0"
        repeat {
            let page = try await store.scanPage(cursor: cursor, count: scanCount, accounts: accounts)
            for accountID in page.accountIDs where seen.insert(accountID).inserted {
                var fields = try await store.loadSealed(accountID: accountID)
                guard !fields.isEmpty else { continue }
                // Only the key id prefixes are kept in memory, never a ciphertext.
                for name in CredentialStore.secretFields {
                    if let stored = fields[name] {
                        fields[name] = SealedSecret(stored: stored).map { "\($0.keyID):" } ?? ""
                    }
                }
                connections.append((accountID, fields))
            }
            cursor = page.cursor
        } while cursor != "0"
        return CredentialKeyUsage(keys: store.keys, connections: connections)
    }

    /// `{"current", "accounts_scanned", "accounts_without_secrets", "malformed_fields",
    /// "keys": [{"key_id", "status", "accounts", "fields", "retirable"}]}`.
    public var json: JSONValue {
        .object([
            "current": .string(entries.first { $0.status == .current }?.keyID ?? ""),
            "accounts_scanned": .int(Int64(accountsScanned)),
            "accounts_without_secrets": .int(Int64(accountsWithoutSecrets)),
            "malformed_fields": .int(Int64(malformedFields)),
            "keys": .array(
                entries.map {
                    .object([
                        "key_id": .string($0.keyID), "status": .string($0.status.rawValue),
                        "accounts": .int(Int64($0.accounts)), "fields": .int(Int64($0.fields)),
                        "retirable": .bool($0.retirable),
                    ])
                }),
        ])
    }

    /// A table for operators, with a line of advice per key that needs attention.
    public var report: [String] {
        var lines = ["KEY ID                STATUS           ACCOUNTS    FIELDS"]
        for entry in entries {
            let status: String
            switch entry.status {
            case .current: status = "current"
            case .configured: status = "configured"
            case .notConfigured: status = "NOT CONFIGURED"
            }
            lines.append(
                entry.keyID.padded(to: 22) + status.padded(to: 17) + String(entry.accounts).padded(to: 12)
                    + String(entry.fields))
        }
        lines.append(
            "\(accountsScanned) connection(s) scanned, \(accountsWithoutSecrets) without secrets"
                + (malformedFields > 0 ? ", \(malformedFields) malformed secret field(s) (not kid:ciphertext)" : ""))
        for entry in entries {
            switch entry.status {
            case .configured where entry.retirable:
                lines.append("\(entry.keyID): unused; it can be retired (removed from RELAY_ENCRYPTION_KEY)")
            case .configured:
                lines.append(
                    "\(entry.keyID): still seals \(entry.fields) field(s) of \(entry.accounts) account(s); run "
                        + "`klaviyo-relay connections rekey` before retiring it")
            case .notConfigured:
                lines.append(
                    "\(entry.keyID): NOT CONFIGURED: \(entry.accounts) account(s) cannot be read; add the key back to "
                        + "RELAY_ENCRYPTION_KEY (then rekey) or have those customers reconnect")
            case .current:
                break
            }
        }
        return lines
    }
}

extension String {
    /// Left-aligned in `width` columns (at least one space after).
    fileprivate func padded(to width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
