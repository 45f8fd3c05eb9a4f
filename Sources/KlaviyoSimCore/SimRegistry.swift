import Foundation
import Synchronization

/// Who made an API call: the account, the credential kind (which selects the rate-limit quota) and its scopes.
struct AuthenticatedCaller: Sendable {
    /// Private keys share one quota per account; each OAuth install has its own.
    enum Kind: Hashable, Sendable {
        case apiKey
        case oauth(installId: String)
    }

    let box: AccountBox
    let kind: Kind
    let scopes: Set<String>
}

/// An OAuth access token the registry can resolve (issued by the OAuth server, phase 2).
struct AccessTokenGrant: Sendable {
    var accountId: String
    var installId: String
    var scopes: Set<String>
    var expiresAt: ContinuousClock.Instant
}

/// The set of accounts and the credential index (API keys, access tokens), behind one mutex.
///
/// Looked up once per request; the per-account data lives in each ``AccountBox``.
final class SimRegistry: Sendable {
    struct State: Sendable {
        var accounts: [String: AccountBox] = [:]
        var apiKeys: [String: String] = [:]  // pk_… → accountId
        var accessTokens: [String: AccessTokenGrant] = [:]
    }

    let state = Mutex(State())

    /// Adds or reconfigures an account (idempotent by `accountId`; profiles survive a re-post).
    /// Returns the stored account (its Klaviyo ids are kept across updates).
    @discardableResult
    func upsert(_ account: SimAccount) -> SimAccount {
        state.withLock { s in
            if let box = s.accounts[account.accountId] {
                let stored = box.state.withLock { st in
                    s.apiKeys[st.account.apiKey] = nil
                    st.account.apiKey = account.apiKey
                    st.account.name = account.name
                    st.account.scopes = account.scopes
                    return st.account
                }
                s.apiKeys[account.apiKey] = account.accountId
                return stored
            }
            s.accounts[account.accountId] = AccountBox(account: account)
            s.apiKeys[account.apiKey] = account.accountId
            return account
        }
    }

    /// The account box for an admin account id.
    func box(_ accountId: String) -> AccountBox? { state.withLock { $0.accounts[accountId] } }

    /// All boxes (for stats and admin listings).
    func allBoxes() -> [AccountBox] { state.withLock { Array($0.accounts.values) } }

    /// Forgets everything.
    func reset() { state.withLock { $0 = State() } }

    /// Resolves an `Authorization` header value to a caller.
    func authenticate(_ header: String?, now: ContinuousClock.Instant) -> Result<AuthenticatedCaller, KlaviyoAPIError> {
        guard let header else { return .failure(.notAuthenticated) }
        if header.hasPrefix("Klaviyo-API-Key ") {
            let key = header.dropFirst("Klaviyo-API-Key ".count).trimmingCharacters(in: .whitespaces)
            let box: AccountBox? = state.withLock { s in s.apiKeys[key].flatMap { s.accounts[$0] } }
            guard let box else { return .failure(.authenticationFailed) }
            return .success(AuthenticatedCaller(box: box, kind: .apiKey, scopes: box.account.scopes))
        }
        if header.hasPrefix("Bearer ") {
            let token = header.dropFirst("Bearer ".count).trimmingCharacters(in: .whitespaces)
            let found: (AccessTokenGrant, AccountBox)? = state.withLock { s in
                guard let g = s.accessTokens[token], let box = s.accounts[g.accountId] else { return nil }
                return (g, box)
            }
            guard let (grant, box) = found, grant.expiresAt > now else { return .failure(.authenticationFailed) }
            return .success(
                AuthenticatedCaller(box: box, kind: .oauth(installId: grant.installId), scopes: grant.scopes))
        }
        return .failure(.notAuthenticated)
    }
}
