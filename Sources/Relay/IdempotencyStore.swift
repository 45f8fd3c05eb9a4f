public import Redis

/// Done markers of commands (`kr:idem:<command id>`, DESIGN §5): the stored result and whether it was
/// published. A command whose marker exists is never sent to Klaviyo again.
public struct IdempotencyStore: Sendable {
    /// A done marker.
    public struct Record: Sendable, Hashable {
        /// The result document, as published.
        public var result: [UInt8]
        /// Whether the broker confirmed the result's publication.
        public var published: Bool
    }

    /// Redis.
    public let redis: RedisClient
    /// How long markers live.
    public let ttl: Duration

    /// Creates a store.
    public init(redis: RedisClient, ttl: Duration) {
        self.redis = redis
        self.ttl = ttl
    }

    /// The marker of a command, if it was done.
    public func lookup(_ commandID: String) async throws -> Record? {
        let fields = try await redis.hashGetAll(RedisKeys.idempotency(commandID))
        guard let result = fields["result"] else { return nil }
        return Record(result: Array(result.utf8), published: fields["published"] == "1")
    }

    /// Records a command's result before it is published (one round trip).
    public func record(_ commandID: String, result: [UInt8]) async throws {
        let key = RedisKeys.idempotency(commandID)
        let replies = try await redis.pipeline([
            ["HSET", key, "result", String(decoding: result, as: UTF8.self), "published", "0"],
            ["PEXPIRE", key, String(ttl.components.seconds * 1000)],
        ])
        for reply in replies {
            if case .failure(let error) = reply { throw error }
        }
    }

    /// Notes that the result was published (confirmed by the broker).
    public func markPublished(_ commandID: String) async throws {
        _ = try await redis.send(["HSET", RedisKeys.idempotency(commandID), "published", "1"])
    }

    /// The job a command submitted and still waits for (see ``RedisKeys/job(_:)``), if any.
    public func jobState(_ commandID: String) async throws -> String? {
        try await redis.send(["GET", RedisKeys.job(commandID)]).string
    }

    /// Records the job a command waits for, before the command is parked for its next poll: a restart then
    /// polls the same job instead of submitting another one.
    public func recordJobState(_ commandID: String, state: String) async throws {
        _ = try await redis.send(["SET", RedisKeys.job(commandID), state, "PX", String(ttl.components.seconds * 1000)])
    }
}
