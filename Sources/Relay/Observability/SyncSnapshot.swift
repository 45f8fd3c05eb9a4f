/// An account's sync status as ``SyncStatus/snapshot(accountID:nowSeconds:)`` reads it from
/// `kr:{<account_id>}:sync`: what the settings page shows a merchant.
public struct SyncSnapshot: Sendable, Hashable {
    /// When a command of the account last succeeded (RFC 3339), if ever.
    public var lastSuccessAt: String?
    /// When a command of the account last failed or was dead-lettered (RFC 3339), if ever.
    public var lastErrorAt: String?
    /// The last failure's code (a dead-letter code such as `reauth_required`, or `failed`).
    public var lastErrorCode: String?
    /// Klaviyo's error title of the last failure, when one was recorded.
    public var lastErrorTitle: String?
    /// What succeeded in the last 24 hours, by kind (kinds with nothing synced are absent).
    public var syncedLast24Hours: [SyncKind: Int]
    /// Commands that succeeded, ever.
    public var succeeded: Int
    /// Commands that failed or were dead-lettered, ever.
    public var failed: Int

    /// Creates a snapshot.
    public init(
        lastSuccessAt: String? = nil, lastErrorAt: String? = nil, lastErrorCode: String? = nil,
        lastErrorTitle: String? = nil, syncedLast24Hours: [SyncKind: Int] = [:], succeeded: Int = 0, failed: Int = 0
    ) {
        self.lastSuccessAt = lastSuccessAt
        self.lastErrorAt = lastErrorAt
        self.lastErrorCode = lastErrorCode
        self.lastErrorTitle = lastErrorTitle
        self.syncedLast24Hours = syncedLast24Hours
        self.succeeded = succeeded
        self.failed = failed
    }
}
