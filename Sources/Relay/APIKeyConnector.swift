import Foundation
public import Klaviyo

/// Connects an account with a Klaviyo private API key: checks its shape, validates it against
/// `GET /api/accounts` and stores it encrypted. Errors are written for the person who pasted the key.
public struct APIKeyConnector: Sendable {
    /// Why a key was refused. Messages never contain the key.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// Machine code: `invalid_account_id`, `not_a_private_key`, `key_rejected`, `missing_scope`,
        /// `klaviyo_unavailable`, `storage_failed`.
        public var code: String
        /// What happened and what to do.
        public var description: String
        /// Whether trying again later may work.
        public var isRetriable: Bool
    }

    let klaviyo: KlaviyoClient
    let store: CredentialStore

    /// Creates a connector.
    public init(klaviyo: KlaviyoClient, store: CredentialStore) {
        self.klaviyo = klaviyo
        self.store = store
    }

    /// Validates and stores the key; returns the new connection (without echoing the key anywhere).
    public func connect(accountID: String, apiKey rawKey: String) async throws(Failure) -> ConnectionRecord {
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
                        "Could not check the key with Klaviyo (\(error)); nothing was stored. Try again shortly.",
                    isRetriable: true)
            }
        }
        do {
            return try await store.saveAPIKey(
                accountID: accountID, apiKey: apiKey, klaviyoAccountID: account.id,
                klaviyoAccountName: account.organizationName)
        } catch {
            throw Failure(
                code: "storage_failed", description: "The key is valid but could not be stored: \(error)",
                isRetriable: true)
        }
    }
}
