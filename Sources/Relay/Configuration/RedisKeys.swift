/// The Redis key layout of docs/contracts.md ("Redis") (a contract: ops read it). All keys of one account share the
/// hash tag `{<account_id>}` so multi-key scripts work on Redis Cluster.
public enum RedisKeys {
    /// Credential hash.
    public static func connection(_ accountID: String) -> String { "kr:{\(accountID)}:conn" }
    /// Refresh lock.
    public static func lock(_ accountID: String) -> String { "kr:{\(accountID)}:lock" }
    /// Rate-limiter state of one bucket.
    public static func rateLimit(_ accountID: String, bucket: String) -> String { "kr:{\(accountID)}:rl:\(bucket)" }
    /// Until when (Redis time, ms) Klaviyo asked one bucket's calls to wait (a 429's `Retry-After`).
    public static func rateLimitPause(_ accountID: String, bucket: String) -> String {
        "kr:{\(accountID)}:rl:\(bucket):pause"
    }
    /// Sync status hash.
    public static func sync(_ accountID: String) -> String { "kr:{\(accountID)}:sync" }
    /// OAuth state (PKCE verifier and account), short TTL.
    public static func oauthState(_ state: String) -> String { "kr:oauth:state:\(state)" }
    /// Done marker of a command (hash: `result`, `published`, `type`, `digest`), in its account's slot.
    public static func idempotency(_ accountID: String, _ commandID: String) -> String {
        "kr:{\(accountID)}:idem:\(commandID)"
    }
    /// Which command an id belongs to (`<account> <type> <payload digest>`): one single-key string per id, so
    /// reuse of an id by another account, type or payload is seen (see ``IdempotencyStore``).
    public static func idempotencyClaim(_ commandID: String) -> String { "kr:idclaim:\(commandID)" }
    /// The Klaviyo job a command submitted and is waiting for (JSON: `job_id`, `polls`, `submitted_at`).
    public static func job(_ accountID: String, _ commandID: String) -> String { "kr:{\(accountID)}:job:\(commandID)" }
    /// Prefix of an account's profile-coalescing keys (``ProfileCoalescer``): `…open` (the batch collecting
    /// rows), `…seq` (batch ids; never expires, so no id is reused), `…identifiers` (identifier → its latest batch
    /// not settled), `…jobs` (job ids recorded by batches and by `profile.bulk_import` commands), `…holds` (finished batches holding their identifiers for members
    /// that went out singly), `…member:<command id>` (a command's batch and row), `…batch:<id>` (state, job id,
    /// cached job status, submit/poll lock, `hold_until`) with `:rows` (the rows in request order; deleted once the
    /// batch is final), `:identifiers` and `:members` (command ids; both deleted once the batch settled), and
    /// `:errors` (row → import error).
    public static func coalescing(_ accountID: String) -> String { "kr:{\(accountID)}:coalesce:" }
    /// Done marker as written before markers moved under the account's hash tag (read until it expires).
    public static func legacyIdempotency(_ commandID: String) -> String { "kr:idem:\(commandID)" }
    /// Job state as written before it moved under the account's hash tag (read until it expires).
    public static func legacyJob(_ commandID: String) -> String { "kr:job:\(commandID)" }
}
