import Foundation
public import Klaviyo
import Redis

/// Connects an account with a Klaviyo private API key: checks its shape, validates it against
/// `GET /api/accounts` and stores it encrypted. Errors are written for the person who pasted the key.
///
/// Validations are limited per account (``AttemptLimit``, a fixed-window counter in
/// `kr:{<account_id>}:apikey_attempts` that expires with its window), so a leaked settings link or API token
/// cannot be used to try keys against Klaviyo at speed: beyond the limit the key is refused with
/// `too_many_attempts` and Klaviyo is not called.
public struct APIKeyConnector: Sendable {
    /// Why a key was refused. Messages never contain the key.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// Machine code: `invalid_account_id`, `not_a_private_key`, `too_many_attempts`, `key_rejected`,
        /// `missing_scope`, `klaviyo_unavailable`, `storage_failed`, `connection_busy` (set by
        /// ``ConnectionLifecycle``: a token refresh held the account's lock).
        public var code: String
        /// What happened and what to do.
        public var description: String
        /// Whether trying again later may work.
        public var isRetriable: Bool
        /// For `too_many_attempts`: when the window ends.
        public var retryAfter: Duration? = nil
        /// What went wrong underneath (a Klaviyo or Redis error), for the server's log: never shown to the person,
        /// whose ``description`` is fixed text.
        public var underlying: (any Error & Sendable)? = nil
    }

    /// At most `maxAttempts` keys checked with Klaviyo per account in each `window`.
    public struct AttemptLimit: Sendable, Hashable {
        /// Validations allowed per window.
        public var maxAttempts: Int
        /// Length of the window (it starts with the first attempt).
        public var window: Duration

        /// Creates a limit.
        public init(maxAttempts: Int, window: Duration) {
            self.maxAttempts = maxAttempts
            self.window = window
        }

        /// 5 validations per account per 10 minutes.
        public static let standard = AttemptLimit(maxAttempts: 5, window: .seconds(600))
    }

    let klaviyo: KlaviyoClient
    let store: CredentialStore
    let attemptLimit: AttemptLimit?

    /// Creates a connector; `attemptLimit` nil checks every key (the operator's CLI); `serve` passes
    /// ``AttemptLimit/standard``.
    public init(klaviyo: KlaviyoClient, store: CredentialStore, attemptLimit: AttemptLimit? = nil) {
        self.klaviyo = klaviyo
        self.store = store
        self.attemptLimit = attemptLimit
    }

    /// The attempt counter of an account (under the account's hash tag).
    public static func attemptsKey(_ accountID: String) -> String { "kr:{\(accountID)}:apikey_attempts" }

    /// Counts an attempt (``FixedWindow``); throws `too_many_attempts` beyond the limit.
    func countAttempt(accountID: String) async throws(Failure) {
        guard let attemptLimit else { return }
        let window = FixedWindow(limit: attemptLimit.maxAttempts, length: attemptLimit.window)
        let wait: Duration?
        do {
            wait = try await window.hit(Self.attemptsKey(accountID), redis: store.redis)
        } catch {
            throw Failure(
                code: "storage_failed", description: "Could not check the key just now; nothing was stored. Try again.",
                isRetriable: true, underlying: error)
        }
        guard let wait else { return }
        throw Failure(
            code: "too_many_attempts",
            description: "Too many API keys were tried for this account in a short time, so this one was not "
                + "checked. Wait \(FixedWindow.describe(wait)) and try again.",
            isRetriable: true, retryAfter: wait)
    }

    /// A key Klaviyo accepted, not yet stored.
    public struct ValidatedKey: Sendable {
        let accountID: String
        let apiKey: String
        let account: KlaviyoAccount
    }

    /// Validates and stores the key; returns the new connection (without echoing the key anywhere).
    public func connect(accountID: String, apiKey rawKey: String) async throws(Failure) -> ConnectionRecord {
        try await save(try await validate(accountID: accountID, apiKey: rawKey))
    }

    /// Checks the key's shape and validates it with Klaviyo (counted against ``AttemptLimit``); stores nothing.
    public func validate(accountID: String, apiKey rawKey: String) async throws(Failure) -> ValidatedKey {
        do {
            _ = try Check.token(.string(accountID), at: "account_id")
        } catch {
            throw Failure(code: "invalid_account_id", description: "account id \(error.detail)", isRetriable: false)
        }
        let apiKey = rawKey.trimmingCharacters(in: .whitespacesAndNewlines)
        guard apiKey.hasPrefix("pk_"), apiKey.count > 3 else {
            throw Failure(
                code: "not_a_private_key",
                description:
                    "That is not a Klaviyo private API key: private keys start with \"pk_\". The 6-character public (site) key cannot be used; create a private key under Settings → API keys in Klaviyo.",
                isRetriable: false)
        }
        guard apiKey.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw Failure(
                code: "not_a_private_key",
                description: "The API key contains characters a Klaviyo private key never has; paste it again.",
                isRetriable: false)
        }
        try await countAttempt(accountID: accountID)
        let account: KlaviyoAccount
        do {
            account = try await klaviyo.getAccountPatiently(credential: .apiKey(apiKey))
        } catch {
            let refused = error.code == .unauthorized || (error.code == .rejected && error.status == 400)
            switch error.code {
            case _ where refused:
                throw Failure(
                    code: "key_rejected",
                    description:
                        "Klaviyo did not accept this API key (HTTP \(error.status ?? 401)): it may be mistyped, deleted or from another account.",
                    isRetriable: false)
            case .forbidden:
                throw Failure(
                    code: "missing_scope",
                    description:
                        "Klaviyo accepted the key but it lacks the accounts:read scope (HTTP 403). Create a key with Full access, or a Custom key with at least accounts:read, profiles:read/write, lists:read/write, events:write, subscriptions:write, campaigns:read/write and flows:read/write.",
                    isRetriable: false)
            default:
                throw Failure(
                    code: "klaviyo_unavailable",
                    description:
                        "Could not check the key with Klaviyo just now; nothing was stored. Try again shortly.",
                    isRetriable: true, underlying: error)
            }
        }
        return ValidatedKey(accountID: accountID, apiKey: apiKey, account: account)
    }

    /// Stores a validated key (replacing any earlier connection).
    public func save(_ key: ValidatedKey) async throws(Failure) -> ConnectionRecord {
        do {
            return try await store.saveAPIKey(
                accountID: key.accountID, apiKey: key.apiKey, klaviyoAccountID: key.account.id,
                klaviyoAccountName: key.account.organizationName)
        } catch {
            throw Failure(
                code: "storage_failed",
                description: "The key is valid, but it could not be saved just now; nothing was stored. Try again.",
                isRetriable: true, underlying: error)
        }
    }
}
