import Redis

/// A per-key fixed-window counter in Redis, the limit behind ``APIKeyConnector/AttemptLimit`` and
/// ``OAuthConnector/StartLimit``: each hit INCRs the key; the first hit of a window sets its expiry (repaired if
/// missing), so the key disappears with its window.
struct FixedWindow: Sendable {
    /// Hits allowed per window.
    var limit: Int
    /// Length of the window (it starts with the first hit).
    var length: Duration

    /// Counts one hit. KEYS: the counter. ARGV: the window in milliseconds. Returns `{count, milliseconds left}`.
    static let script = RedisScript(
        """
        local count = redis.call('INCR', KEYS[1])
        local left = redis.call('PTTL', KEYS[1])
        if count == 1 or left < 0 then
            redis.call('PEXPIRE', KEYS[1], ARGV[1])
            left = tonumber(ARGV[1])
        end
        return {count, left}
        """)

    /// Counts one hit on `key`: nil within the limit, else how long until the window ends (whole seconds, at
    /// least one).
    func hit(_ key: String, redis: RedisClient) async throws -> Duration? {
        let milliseconds = max(1, length.wholeMilliseconds)
        let reply = try await redis.run(Self.script, keys: [key], arguments: [String(milliseconds)])
        let values = reply.array ?? []
        let count = values.first?.int ?? 0
        let left = values.count > 1 ? (values[1].int ?? milliseconds) : milliseconds
        guard count > Int64(limit) else { return nil }
        return .seconds(max(1, (min(left, milliseconds) + 999) / 1000))
    }

    /// A wait for people: "40 seconds", "10 minutes".
    static func describe(_ wait: Duration) -> String {
        let seconds = wait.components.seconds
        return seconds < 120 ? "\(seconds) seconds" : "\((seconds + 59) / 60) minutes"
    }
}
