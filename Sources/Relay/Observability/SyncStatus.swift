import Klaviyo
public import Redis

/// Per-account sync status in `kr:{<account_id>}:sync` (docs/contracts.md, "Redis"), read by `serve`'s connection
/// status and settings page: `last_success_at`, `last_error_at`, `last_error` (`code: detail`), `last_error_code`,
/// `last_error_title` (Klaviyo's error title, when known), counters `succeeded` / `failed`, `history`: a JSON array of
/// the last `historyLimit` outcomes (`at`, `outcome`, `type`, `command_id`, `detail`), and `hourly`: a JSON object of
/// what succeeded per hour (`{"<epoch hour>": {"profiles": n, "events": n, …}}`, the last 24 hours only). One Lua
/// script appends and prunes, so the hash stays bounded.
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

    /// Hours of `hourly` kept (and summed by ``snapshot(accountID:nowSeconds:)``).
    public static let hoursKept = 24

    /// KEYS[1] = the sync hash; ARGV = outcome, at, type, command id, detail, history limit, kind ('' for none),
    /// items, epoch hour, error code, Klaviyo error title.
    static let recordScript = RedisScript(
        """
        local success = ARGV[1] == 'success'
        if success then
          redis.call('HSET', KEYS[1], 'last_success_at', ARGV[2])
          redis.call('HINCRBY', KEYS[1], 'succeeded', 1)
        else
          redis.call('HSET', KEYS[1], 'last_error_at', ARGV[2], 'last_error', ARGV[5], 'last_error_code', ARGV[10])
          if ARGV[11] ~= '' then
            redis.call('HSET', KEYS[1], 'last_error_title', ARGV[11])
          else
            redis.call('HDEL', KEYS[1], 'last_error_title')
          end
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
        if success and ARGV[7] ~= '' then
          local hour = tonumber(ARGV[9])
          local hourly = {}
          local storedHourly = redis.call('HGET', KEYS[1], 'hourly')
          if storedHourly then
            local ok, decoded = pcall(cjson.decode, storedHourly)
            if ok and type(decoded) == 'table' then hourly = decoded end
          end
          local kept = {}
          local count = 0
          for key, counts in pairs(hourly) do
            local h = tonumber(key)
            if h and h > hour - HOURS and h <= hour and type(counts) == 'table' then
              kept[key] = counts
              count = count + 1
            end
          end
          local bucket = kept[ARGV[9]] or {}
          bucket[ARGV[7]] = (tonumber(bucket[ARGV[7]]) or 0) + tonumber(ARGV[8])
          kept[ARGV[9]] = bucket
          redis.call('HSET', KEYS[1], 'hourly', cjson.encode(kept))
        end
        return #history
        """.replacingOccurrences(of: "HOURS", with: String(hoursKept)))

    /// Records one command outcome for an account. `type` is the command type; a success of a syncing type adds
    /// `items` to its kind's hourly count (``SyncKind``). A failure's `detail` starts with its code (`code: …`);
    /// `klaviyoTitle` is Klaviyo's error title, when one is known (kept to show the merchant, nothing else of
    /// Klaviyo's answer is).
    public func record(
        accountID: String, succeeded: Bool, type: String, commandID: String, detail: String, items: Int = 1,
        klaviyoTitle: String? = nil, nowMilliseconds: Int64 = Timestamp.nowMilliseconds()
    )
        async throws
    {
        let kind = succeeded ? SyncKind(commandType: type)?.rawValue ?? "" : ""
        let errorCode = succeeded ? "" : Self.errorCode(fromDetail: detail)
        _ = try await redis.run(
            Self.recordScript, keys: [RedisKeys.sync(accountID)],
            arguments: [
                succeeded ? "success" : "error", Timestamp.format(milliseconds: nowMilliseconds), type, commandID,
                String(detail.prefix(300)), String(historyLimit), kind, String(max(items, 0)),
                String(nowMilliseconds / 3_600_000), errorCode, String((klaviyoTitle ?? "").prefix(200)),
            ])
    }

    /// The code of a failure detail: what precedes the first `": "` when it is a code-like word (the processor
    /// records dead letters as `<code>: <type> <id>` and failed results as `failed: <type> <id>`).
    static func errorCode(fromDetail detail: String) -> String {
        guard let range = detail.range(of: ": ") else { return "" }
        let code = detail[..<range.lowerBound]
        guard !code.isEmpty, code.count <= 64, code.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            return ""
        }
        return String(code)
    }

    /// What the hash says now: last success and error, and what succeeded in the last ``hoursKept`` hours by
    /// kind.
    public func snapshot(accountID: String, nowSeconds: Int64 = Timestamp.nowSeconds()) async throws -> SyncSnapshot {
        let fields = try await redis.hashGetAll(RedisKeys.sync(accountID))
        var synced: [SyncKind: Int] = [:]
        let hour = nowSeconds / 3600
        if let text = fields["hourly"], let hourly = try? JSONValue.parse(Array(text.utf8)).objectValue {
            for (key, counts) in hourly {
                guard let bucketHour = Int64(key), bucketHour > hour - Int64(Self.hoursKept), bucketHour <= hour else {
                    continue
                }
                for (name, value) in counts.objectValue ?? [:] {
                    guard let kind = SyncKind(rawValue: name), let count = value.jobInteger else { continue }
                    synced[kind, default: 0] += Int(clamping: count)
                }
            }
        }
        func nonEmpty(_ name: String) -> String? { fields[name].flatMap { $0.isEmpty ? nil : $0 } }
        return SyncSnapshot(
            lastSuccessAt: nonEmpty("last_success_at"), lastErrorAt: nonEmpty("last_error_at"),
            lastErrorCode: nonEmpty("last_error_code") ?? nonEmpty("last_error").map(Self.errorCode(fromDetail:)),
            lastErrorTitle: nonEmpty("last_error_title"), syncedLast24Hours: synced,
            succeeded: fields["succeeded"].flatMap { Int($0) } ?? 0, failed: fields["failed"].flatMap { Int($0) } ?? 0)
    }
}
