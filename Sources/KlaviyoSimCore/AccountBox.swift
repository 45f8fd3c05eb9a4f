import Synchronization

/// One account's state behind its own mutex, so accounts never contend with each other.
final class AccountBox: Sendable {
    let accountId: String
    let state: Mutex<AccountState>

    init(account: SimAccount) {
        self.accountId = account.accountId
        self.state = Mutex(AccountState(account: account))
    }

    /// The account's current configuration.
    var account: SimAccount { state.withLock { $0.account } }
}
