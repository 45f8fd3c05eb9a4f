public import Redis

/// Per-account sync status in `kr:{<account_id>}:sync` (DESIGN §5), read by `serve`'s connection status:
/// `last_success_at`, `last_error_at`, `last_error` (`code: detail`), counters `succeeded` / `failed`, and
/// `history`: a JSON array of the last `historyLimit` outcomes (`at`, `outcome`, `type`, `command_id`,
/// `detail`), kept bounded by the same Lua script that appends to it.
public struct SyncStatus: Sendable {
    /// Redis.
    public let redis: RedisClient
    /// Outcomes kept in `history`.
    public let historyLimit: Int

    /// Creates a recorder.
    public init(redis: RedisClient, historyLimit: Int = 20) {
        self.redis = redis
        self.historyLimit = historyLimit
    }

    static let recordScript = RedisScript(
        """
        local success = ARGV[1] == 'success'
        if success then
          redis.call('HSET', KEYS[1], 'last_success_at', ARGV[2])
          redis.call('HINCRBY', KEYS[1], 'succeeded', 1)
        else
          redis.call('HSET', KEYS[1], 'last_error_at', ARGV[2], 'last_error', ARGV[5])
          redis.call('HINCRBY', KEYS[1], 'failed', 1)
        end
        local stored = redis.call('HGET', KEYS[1], 'history')
        local history = {}
        if stored then
          local ok, decoded = pcall(cjson.decode, stored)
          if ok and type(decoded) == 'table' then history = decoded end
        end
        table.insert(history, {at = ARGV[2], outcome = ARGV[1], type = ARGV[3], command_id = ARGV[4], detail = ARGV[5]})
        while #history > tonumber(ARGV[6]) do table.remove(history, 1) end
        redis.call('HSET', KEYS[1], 'history', cjson.encode(history))
        return #history
        """)

    /// Records one command outcome for an account.
    public func record(
        accountID: String, succeeded: Bool, type: String, commandID: String, detail: String
    )
        async throws
    {
        _ = try await redis.run(
            Self.recordScript, keys: [RedisKeys.sync(accountID)],
            arguments: [
                succeeded ? "success" : "error", Timestamp.now(), type, commandID, String(detail.prefix(300)),
                String(historyLimit),
            ])
    }
}
