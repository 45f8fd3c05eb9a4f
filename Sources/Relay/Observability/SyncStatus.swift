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

    /// What several outcomes of one account add to its hash, written by one script call (``SyncStatusBuffer``
    /// gathers a consumer's outcomes for a fraction of a second, so a busy account costs Redis one call per
    /// flush rather than one per command).
    public struct Batch: Sendable, Equatable {
        /// One outcome in `history`.
        public struct Entry: Sendable, Equatable {
            /// When it ended (RFC 3339).
            public var at: String
            /// `success` or `error`.
            public var outcome: String
            /// The command type.
            public var type: String
            /// The command id.
            public var commandID: String
            /// `code: detail` of a failure, empty for a success.
            public var detail: String
        }

        /// Successes and failures counted.
        public var succeeded = 0
        /// Failures counted.
        public var failed = 0
        /// The latest success's time.
        public var lastSuccessAt: String?
        /// The latest failure: time, `code: detail`, code, Klaviyo's title.
        public var lastError: (at: String, detail: String, code: String, title: String)?
        /// The latest outcomes, oldest first (at most the history limit).
        public var history: [Entry] = []
        /// Items that succeeded per epoch hour and kind.
        public var items: [Int64: [String: Int]] = [:]
        /// The latest epoch hour seen (what `hourly` is pruned against).
        public var hour: Int64 = 0

        /// An empty batch.
        public init() {}

        /// Whether nothing was added.
        public var isEmpty: Bool { succeeded == 0 && failed == 0 }

        /// Adds one outcome (the detail of a failure starts with its code: `code: …`); `historyLimit` bounds
        /// what the batch keeps of `history`.
        public mutating func add(
            succeeded success: Bool, type: String, commandID: String, detail: String, items count: Int = 1,
            klaviyoTitle: String? = nil, nowMilliseconds: Int64, historyLimit: Int
        ) {
            let at = Timestamp.format(milliseconds: nowMilliseconds)
            let hourNow = nowMilliseconds / 3_600_000
            hour = max(hour, hourNow)
            let detail = String(detail.prefix(300))
            if success {
                succeeded += 1
                lastSuccessAt = at
                if let kind = SyncKind(commandType: type), count > 0 {
                    items[hourNow, default: [:]][kind.rawValue, default: 0] += count
                }
            } else {
                failed += 1
                let title = String((klaviyoTitle ?? "").prefix(200))
                lastError = (at, detail, SyncStatus.errorCode(fromDetail: detail), title)
            }
            history.append(
                Entry(at: at, outcome: success ? "success" : "error", type: type, commandID: commandID, detail: detail))
            if history.count > max(historyLimit, 1) { history.removeFirst(history.count - max(historyLimit, 1)) }
        }

        /// Equal when every count, latest outcome, history entry and hourly item is.
        public static func == (lhs: Batch, rhs: Batch) -> Bool {
            lhs.succeeded == rhs.succeeded && lhs.failed == rhs.failed && lhs.lastSuccessAt == rhs.lastSuccessAt
                && lhs.lastError?.at == rhs.lastError?.at && lhs.lastError?.detail == rhs.lastError?.detail
                && lhs.lastError?.code == rhs.lastError?.code && lhs.lastError?.title == rhs.lastError?.title
                && lhs.history == rhs.history && lhs.items == rhs.items && lhs.hour == rhs.hour
        }
    }

    /// KEYS[1] = the sync hash; ARGV = succeeded, failed, last success at ('' none), last error at ('' none),
    /// last error (`code: detail`), last error code, Klaviyo error title, history limit, history entries (JSON
    /// array), items per hour (JSON object `{"<hour>": {"<kind>": n}}`, '{}' for none), epoch hour now.
    static let recordScript = RedisScript(
        """
        local succeeded = tonumber(ARGV[1])
        local failed = tonumber(ARGV[2])
        if succeeded > 0 then
          redis.call('HSET', KEYS[1], 'last_success_at', ARGV[3])
          redis.call('HINCRBY', KEYS[1], 'succeeded', succeeded)
        end
        if failed > 0 then
          redis.call('HSET', KEYS[1], 'last_error_at', ARGV[4], 'last_error', ARGV[5], 'last_error_code', ARGV[6])
          if ARGV[7] ~= '' then
            redis.call('HSET', KEYS[1], 'last_error_title', ARGV[7])
          else
            redis.call('HDEL', KEYS[1], 'last_error_title')
          end
          redis.call('HINCRBY', KEYS[1], 'failed', failed)
        end
        local stored = redis.call('HGET', KEYS[1], 'history')
        local history = {}
        if stored then
          local ok, decoded = pcall(cjson.decode, stored)
          if ok and type(decoded) == 'table' then history = decoded end
        end
        for _, entry in ipairs(cjson.decode(ARGV[9])) do table.insert(history, entry) end
        local limit = tonumber(ARGV[8])
        if #history > limit then
          local kept = {}
          for i = #history - limit + 1, #history do table.insert(kept, history[i]) end
          history = kept
        end
        redis.call('HSET', KEYS[1], 'history', cjson.encode(history))
        if ARGV[10] ~= '{}' then
          local hour = tonumber(ARGV[11])
          local hourly = {}
          local storedHourly = redis.call('HGET', KEYS[1], 'hourly')
          if storedHourly then
            local ok, decoded = pcall(cjson.decode, storedHourly)
            if ok and type(decoded) == 'table' then hourly = decoded end
          end
          for key, counts in pairs(cjson.decode(ARGV[10])) do
            local bucket = hourly[key]
            if type(bucket) ~= 'table' then bucket = {} end
            for kind, n in pairs(counts) do bucket[kind] = (tonumber(bucket[kind]) or 0) + tonumber(n) end
            hourly[key] = bucket
          end
          local kept = {}
          for key, counts in pairs(hourly) do
            local h = tonumber(key)
            if h and h > hour - HOURS and h <= hour and type(counts) == 'table' then kept[key] = counts end
          end
          redis.call('HSET', KEYS[1], 'hourly', cjson.encode(kept))
        end
        return #history
        """.replacingOccurrences(of: "HOURS", with: String(hoursKept)))

    /// Records one finished command: `succeeded` sets `last_success_at` and adds `items` to its kind's hourly
    /// count (``SyncKind``). A failure's `detail` starts with its code (`code: …`); `klaviyoTitle` is Klaviyo's
    /// error title, when one is known (kept to show the merchant, nothing else of Klaviyo's answer is).
    public func record(
        accountID: String, succeeded: Bool, type: String, commandID: String, detail: String, items: Int = 1,
        klaviyoTitle: String? = nil, nowMilliseconds: Int64 = Timestamp.nowMilliseconds()
    )
        async throws
    {
        var batch = Batch()
        batch.add(
            succeeded: succeeded, type: type, commandID: commandID, detail: detail, items: items,
            klaviyoTitle: klaviyoTitle, nowMilliseconds: nowMilliseconds, historyLimit: historyLimit)
        try await record(accountID: accountID, batch)
    }

    /// Writes a batch of one account's outcomes with one script call.
    public func record(accountID: String, _ batch: Batch) async throws {
        guard !batch.isEmpty else { return }
        let history = JSONValue.array(
            batch.history.map {
                .object([
                    "at": .string($0.at), "outcome": .string($0.outcome), "type": .string($0.type),
                    "command_id": .string($0.commandID), "detail": .string($0.detail),
                ])
            })
        var items: [String: JSONValue] = [:]
        for (hour, counts) in batch.items {
            items[String(hour)] = .object(counts.mapValues { .int(Int64($0)) })
        }
        _ = try await redis.run(
            Self.recordScript, keys: [RedisKeys.sync(accountID)],
            arguments: [
                String(batch.succeeded), String(batch.failed), batch.lastSuccessAt ?? "", batch.lastError?.at ?? "",
                batch.lastError?.detail ?? "", batch.lastError?.code ?? "", batch.lastError?.title ?? "",
                String(max(historyLimit, 1)), String(decoding: history.jsonBytes(), as: UTF8.self),
                items.isEmpty ? "{}" : String(decoding: JSONValue.object(items).jsonBytes(), as: UTF8.self),
                String(batch.hour),
            ])
    }

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
