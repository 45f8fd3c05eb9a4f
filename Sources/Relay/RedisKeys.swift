/// The Redis key layout of DESIGN §5 (a contract: ops read it). All keys of one account share the hash tag
/// `{<account_id>}` so multi-key scripts work on Redis Cluster.
public enum RedisKeys {
    /// Credential hash.
    public static func connection(_ accountID: String) -> String { "kr:{\(accountID)}:conn" }
    /// Refresh lock.
    public static func lock(_ accountID: String) -> String { "kr:{\(accountID)}:lock" }
    /// Rate-limiter state of one bucket.
    public static func rateLimit(_ accountID: String, bucket: String) -> String { "kr:{\(accountID)}:rl:\(bucket)" }
    /// Sync status hash.
    public static func sync(_ accountID: String) -> String { "kr:{\(accountID)}:sync" }
    /// OAuth state (PKCE verifier and account), short TTL.
    public static func oauthState(_ state: String) -> String { "kr:oauth:state:\(state)" }
    /// Done marker of a command.
    public static func idempotency(_ commandID: String) -> String { "kr:idem:\(commandID)" }
    /// The Klaviyo job a command submitted and is waiting for (JSON: `job_id`, `polls`, `submitted_at`).
    public static func job(_ commandID: String) -> String { "kr:job:\(commandID)" }
}
