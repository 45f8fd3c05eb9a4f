/// Re-encrypts every stored connection under the current key (`klaviyo-relay connections rekey`), so an old key
/// can be retired from `RELAY_ENCRYPTION_KEY`.
///
/// - Walks `kr:{*}:conn` with `SCAN … MATCH … COUNT`, one page at a time; ``Progress/resumeCursor`` continues an
///   interrupted walk (accounts of the page in progress are visited again, which is harmless).
/// - Idempotent: a field already sealed under the current key id is left as it is, so a second run writes nothing.
/// - Version-checked: each write goes through ``CredentialStore/reseal(accountID:expectedVersion:fields:)``, which
///   refuses when `version` moved or a token refresh holds the account's lock; the account is then read again and
///   retried, so a concurrent refresh is never overwritten (nor fenced off).
/// - An account whose secrets cannot be decrypted is reported (``CredentialUnreadable``: id and key id) and skipped.
public struct CredentialRekey: Sendable {
    /// What happened to one account.
    public enum AccountOutcome: Sendable, Hashable {
        /// `fields` secrets were sealed again under the current key (`version` is nil on a dry run).
        case reencrypted(fields: Int, version: Int64?)
        /// Every secret is already under the current key (or there are none).
        case alreadyCurrent
        /// The hash disappeared between the scan and the read.
        case vanished
        /// A secret cannot be decrypted; nothing was written.
        case unreadable(CredentialUnreadable)
        /// Other writers kept changing the connection (or refreshing it) for ``CredentialRekey/maxAttempts``
        /// reads; nothing was written. Run again.
        case contended
    }

    /// Counts so far, and where to resume.
    public struct Progress: Sendable, Hashable {
        /// Distinct accounts visited.
        public var scanned = 0
        /// Accounts written (on a dry run: that would be written).
        public var reencrypted = 0
        /// Secret fields sealed again.
        public var fieldsReencrypted = 0
        /// Accounts already under the current key (or without secrets).
        public var alreadyCurrent = 0
        /// Accounts that cannot be decrypted.
        public var unreadable: [CredentialUnreadable] = []
        /// Accounts that kept changing under the rekey.
        public var contended: [String] = []
        /// `SCAN` cursor to continue from (`0` once ``finished``: the walk is complete).
        public var resumeCursor = "0"
        /// Whether the whole keyspace has been walked.
        public var finished = false

        /// Creates empty counts.
        public init() {}

        /// Whether some account was left behind (unreadable or contended): the run should exit non-zero.
        public var hasFailures: Bool { !unreadable.isEmpty || !contended.isEmpty }

        /// One line: counts and the cursor.
        public func line(dryRun: Bool) -> String {
            "scanned \(scanned), \(dryRun ? "would re-encrypt" : "re-encrypted") \(reencrypted) "
                + "(\(fieldsReencrypted) fields), already current \(alreadyCurrent), unreadable \(unreadable.count)"
                + (contended.isEmpty ? "" : ", contended \(contended.count)")
                + (finished ? ", done" : ", resume with --cursor \(resumeCursor)")
        }
    }

    /// The store (its key ring's current key is the target).
    public let store: CredentialStore
    /// `COUNT` hint of each `SCAN` page.
    public var scanCount = 200
    /// Which account ids to visit (a Redis glob; `*`: all).
    public var accounts = "*"
    /// Decrypt and count, write nothing.
    public var dryRun = false
    /// Reads per account before giving up on a connection that keeps changing.
    public var maxAttempts = 20
    /// Pause before trying again when a token refresh holds the account's lock.
    public var busyPause: Duration = .milliseconds(100)

    /// Creates a rekey over a store.
    public init(store: CredentialStore, dryRun: Bool = false) {
        self.store = store
        self.dryRun = dryRun
    }

    /// Re-encrypts one account (read, decrypt every secret, seal the stale ones, version-checked write; on a
    /// lost race, read again).
    public func rekey(accountID: String) async throws -> AccountOutcome {
        let context = RedisKeys.connection(accountID)
        for _ in 0..<max(1, maxAttempts) {
            let fields = try await store.loadSealed(accountID: accountID)
            guard !fields.isEmpty else { return .vanished }
            let record: ConnectionRecord
            do {
                record = try store.decode(accountID: accountID, fields: fields)
            } catch {
                return .unreadable(error)
            }
            var resealed: [String: SealedSecret] = [:]
            for name in CredentialStore.secretFields {
                guard let stored = fields[name], let sealed = SealedSecret(stored: stored),
                    sealed.keyID != store.keys.currentKeyID, let plaintext = record.secret(named: name)
                else { continue }
                resealed[name] = try store.keys.seal(plaintext, context: context + "#" + name)
            }
            guard !resealed.isEmpty else { return .alreadyCurrent }
            if dryRun { return .reencrypted(fields: resealed.count, version: nil) }
            switch try await store.reseal(accountID: accountID, expectedVersion: record.version, fields: resealed) {
            case .written(let version):
                return .reencrypted(fields: resealed.count, version: version)
            case .versionMoved:
                continue
            case .refreshInProgress:
                try await Task.sleep(for: busyPause)
            }
        }
        return .contended
    }

    /// Walks every connection from `cursor` (`"0"`: from the start), calling `report` every `progressEvery`
    /// accounts and `unreadable` for each account it must skip. Returns the final counts; a Redis error is
    /// thrown after `report` was given the counts and the cursor to resume from.
    public func run(
        from cursor: String = "0", progressEvery: Int = 100, report: (Progress) -> Void,
        unreadable: (CredentialUnreadable) -> Void = { _ in }
    ) async throws -> Progress {
        var progress = Progress()
        progress.resumeCursor = cursor
        var seen = Set<String>()
        var next = cursor
        do {
            repeat {
                let page = try await store.scanPage(cursor: next, count: scanCount, accounts: accounts)
                for accountID in page.accountIDs where seen.insert(accountID).inserted {
                    progress.scanned += 1
                    switch try await rekey(accountID: accountID) {
                    case .reencrypted(let fields, _):
                        progress.reencrypted += 1
                        progress.fieldsReencrypted += fields
                    case .alreadyCurrent:
                        progress.alreadyCurrent += 1
                    case .vanished:
                        progress.scanned -= 1
                    case .unreadable(let error):
                        progress.unreadable.append(error)
                        unreadable(error)
                    case .contended:
                        progress.contended.append(accountID)
                    }
                    if progressEvery > 0, progress.scanned > 0, progress.scanned % progressEvery == 0 {
                        report(progress)
                    }
                }
                next = page.cursor
                progress.resumeCursor = next
            } while next != "0"
        } catch {
            report(progress)
            throw error
        }
        progress.finished = true
        report(progress)
        return progress
    }
}

extension ConnectionRecord {
    /// The plaintext of a secret field by its stored name.
    func secret(named name: String) -> String? {
        switch name {
        case "api_key": return apiKey
        case "access_token": return accessToken
        case "refresh_token": return refreshToken
        default: return nil
        }
    }
}
