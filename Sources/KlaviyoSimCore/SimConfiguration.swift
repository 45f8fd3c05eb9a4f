/// Configuration of one simulator instance. Defaults match the CLI's defaults.
public struct SimConfiguration: Sendable {
    /// Interface to bind. Default `127.0.0.1`.
    public var host: String = "127.0.0.1"
    /// Port to bind; 0 picks a free port. Default 8089.
    public var port: Int = 8089
    /// Fixed latency added to every API call (non-blocking). Default zero.
    public var latency: Duration = .zero
    /// Capacity of the recorded-requests ring buffer. Default 100,000.
    public var recordCapacity: Int = 100_000
    /// Whether per-operation rate limits are enforced. Default on.
    public var rateLimitsEnabled: Bool = true
    /// Lifetime of issued OAuth access tokens. Default one hour.
    public var accessTokenTTL: Duration = .seconds(3600)
    /// Accounts that exist from the start.
    public var seedAccounts: [SimAccount] = []

    /// Default configuration.
    public init() {}

    /// Parses `ACCOUNT_ID:pk_KEY[:Name]` (the `--seed-account` format).
    public static func parseSeedAccount(_ text: String) -> SimAccount? {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, !parts[0].isEmpty, parts[1].hasPrefix("pk_") else { return nil }
        return SimAccount(accountId: parts[0], apiKey: parts[1], name: parts.count > 2 ? parts[2] : parts[0])
    }
}
