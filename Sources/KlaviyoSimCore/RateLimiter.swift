import Synchronization

/// Klaviyo's per-operation rate limits: fixed windows of 1 s (burst) and 60 s (steady), plus a daily cap where
/// the spec has one, counted per (account, credential kind, operation). Private keys of an account share one
/// quota; each OAuth install has its own (docs/klaviyo-sim.md, rate limits).
///
/// Counters live in 16 mutex-guarded shards keyed by hash, so concurrent accounts rarely contend.
final class RateLimiter: Sendable {
    /// The verdict for one request.
    enum Decision: Sendable, Equatable {
        /// Allowed; the steady window's limit, remaining count and seconds until it resets.
        case allowed(limit: Int, remaining: Int, reset: Int)
        /// Over a limit; seconds until a request can succeed.
        case throttled(retryAfter: Int)
    }

    struct Key: Hashable, Sendable {
        var accountId: String
        var kind: AuthenticatedCaller.Kind
        var operationId: String
    }

    struct Counters: Sendable {
        var burstWindow = -1
        var burstCount = 0
        var steadyWindow = -1
        var steadyCount = 0
        var dayWindow = -1
        var dayCount = 0
    }

    /// One lock-guarded slice of the counters (a class, since `Mutex` cannot live in an array).
    final class Shard: Sendable {
        let table = Mutex<[Key: Counters]>([:])
    }

    let epoch: ContinuousClock.Instant
    let shards: [Shard]

    init(epoch: ContinuousClock.Instant = .now) {
        self.epoch = epoch
        self.shards = (0..<16).map { _ in Shard() }
    }

    /// Counts one request against the operation's windows, or refuses it.
    func acquire(_ op: KlaviyoOperation, caller: AuthenticatedCaller, now: ContinuousClock.Instant) -> Decision {
        acquire(op, accountId: caller.box.accountId, kind: caller.kind, now: now)
    }

    func acquire(
        _ op: KlaviyoOperation, accountId: String, kind: AuthenticatedCaller.Kind, now: ContinuousClock.Instant
    ) -> Decision {
        let elapsed = now - epoch
        let ms = Int(elapsed.components.seconds) * 1000 + Int(elapsed.components.attoseconds / 1_000_000_000_000_000)
        let second = ms / 1000
        let minute = ms / 60_000
        let day = ms / 86_400_000
        let burst = op.burst ?? Int.max
        let steady = op.steady ?? Int.max
        let key = Key(accountId: accountId, kind: kind, operationId: op.operationId)
        let shard = shards[abs(key.hashValue % shards.count)]
        return shard.table.withLock { table in
            var c = table[key] ?? Counters()
            if c.burstWindow != second {
                c.burstWindow = second
                c.burstCount = 0
            }
            if c.steadyWindow != minute {
                c.steadyWindow = minute
                c.steadyCount = 0
            }
            if c.dayWindow != day {
                c.dayWindow = day
                c.dayCount = 0
            }
            if let daily = op.daily, c.dayCount >= daily {
                table[key] = c
                return .throttled(retryAfter: Self.ceilSeconds((day + 1) * 86_400_000 - ms))
            }
            if c.steadyCount >= steady {
                table[key] = c
                return .throttled(retryAfter: Self.ceilSeconds((minute + 1) * 60_000 - ms))
            }
            if c.burstCount >= burst {
                table[key] = c
                return .throttled(retryAfter: Self.ceilSeconds((second + 1) * 1000 - ms))
            }
            c.burstCount += 1
            c.steadyCount += 1
            c.dayCount += 1
            table[key] = c
            let limit = op.steady ?? burst
            return .allowed(
                limit: limit, remaining: max(0, limit - c.steadyCount),
                reset: Self.ceilSeconds((minute + 1) * 60_000 - ms))
        }
    }

    static func ceilSeconds(_ ms: Int) -> Int { max(1, (ms + 999) / 1000) }

    /// Forgets all counters.
    func reset() {
        for shard in shards { shard.table.withLock { $0.removeAll() } }
    }
}
