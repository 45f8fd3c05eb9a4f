import Klaviyo
public import Redis
import Synchronization

/// Done markers of commands (docs/contracts.md, "Redis"), bound to the command they belong to.
///
/// A command id is an idempotency key, so it must name one command only: the marker records the account, the
/// type and the payload digest beside the stored result, and a second command that reuses the id for another
/// account, type or payload is a conflict (dead letter `id_conflict`), never a "duplicate" that would receive the
/// first command's result.
///
/// Keys:
/// - `kr:{<account>}:idem:<id>`: the done marker (hash: `result`, `published`, `type`, `digest`), in the
///   account's Redis Cluster slot.
/// - `kr:idclaim:<id>`: who uses the id (`<account> <type> <digest>`), set when a command is first seen
///   (`SET NX`), so two commands with one id are told apart even while both are in flight and across accounts.
///   One small single-key string: valid on Redis Cluster.
/// - `kr:{<account>}:job:<id>`: the Klaviyo job a command waits for.
///
/// Published marks ride along: ``markPublishedSoon(_:)`` queues a command's mark, and the next lookup or record
/// pipeline of any command writes it in the same round trip (an idle store writes it within its `markFlushDelay`).
/// The mark only spares a redelivered command (its ack lost in a crash) a second publication of its result, which
/// publishers deduplicate anyway, so it need not be written before the ack.
///
/// Migration: markers written before this layout (`kr:idem:<id>`, `kr:job:<id>`) are still read until they
/// expire (`RELAY_IDEMPOTENCY_TTL`); a legacy marker counts only for the account and type its stored result names.
public struct IdempotencyStore: Sendable {
    /// A done marker.
    public struct Record: Sendable, Hashable {
        /// The result document, as published.
        public var result: [UInt8]
        /// Whether the broker confirmed the result's publication.
        public var published: Bool
    }

    /// What the store knows about a command id.
    public enum Lookup: Sendable, Hashable {
        /// Nothing done yet under this id for this command: execute it (the id is now claimed for it).
        case fresh
        /// This very command (same account, type and payload) is already done.
        case done(Record)
        /// The id belongs to another command. The detail says which part differs in general terms only; it
        /// never names the other command's account, type or result.
        case conflict(detail: String)
        /// This very command was dead-lettered (`code`; ``recordDeadLettered(_:code:flow:)``) and has no result;
        /// `flow` is the replay token of the delivery that was (``DeadLetterQueue/replayHeader``; "" for none).
        case deadLettered(code: String, flow: String)
    }

    /// Redis.
    public let redis: RedisClient
    /// How long markers live.
    public let ttl: Duration

    /// Published marks not yet written (shared by every copy of this store).
    let pendingMarks: PendingMarks

    /// Creates a store; a queued published mark waits up to `markFlushDelay` for another round trip to ride along
    /// with before it is written on its own.
    public init(redis: RedisClient, ttl: Duration, markFlushDelay: Duration = .milliseconds(20)) {
        self.redis = redis
        self.ttl = ttl
        self.pendingMarks = PendingMarks(flushDelay: markFlushDelay)
    }

    /// The claim value that binds an id to one command.
    static func binding(_ command: CommandEnvelope) -> String {
        "\(command.accountID) \(command.type.rawValue) \(command.payloadDigest)"
    }

    var ttlMilliseconds: String { String(max(ttl.components.seconds, 1) * 1000) }

    /// Looks a command up, and claims its id when nobody holds it yet.
    public func lookup(_ command: CommandEnvelope) async throws -> Lookup {
        try await lookup(command, alongside: nil).lookup
    }

    /// Looks a command up and claims its id (``lookup(_:)``), sending `read` (a read the command's execution
    /// starts with) in the same round trip; its reply comes back beside the lookup.
    public func lookup(
        _ command: CommandEnvelope, alongside read: [String]?
    ) async throws -> (lookup: Lookup, readReply: Result<RedisValue, RedisError>?) {
        // One round trip: the marker, the legacy marker, and the claim (SET NX GET sets it when absent, reply
        // nil, else answers the holder without changing it). A command whose marker exists also holds the claim
        // (``record(_:result:)`` sets both with one lifetime), so claiming here changes nothing for it.
        var commands = [
            ["HGETALL", RedisKeys.idempotency(command.accountID, command.id)],
            ["HGETALL", RedisKeys.legacyIdempotency(command.id)],
            ["SET", RedisKeys.idempotencyClaim(command.id), Self.binding(command), "NX", "GET", "PX", ttlMilliseconds],
        ]
        if let read { commands.append(read) }
        let replies = try await pipelineWithMarks(commands)
        return (try Self.decide(command, replies), read == nil ? nil : replies[3])
    }

    static func decide(_ command: CommandEnvelope, _ replies: [Result<RedisValue, RedisError>]) throws -> Lookup {
        let marker = try Self.fields(replies[0])
        if let result = marker["result"] {
            guard marker["type"] == command.type.rawValue, marker["digest"] == command.payloadDigest else {
                return .conflict(detail: Self.conflictDetail)
            }
            return .done(Record(result: Array(result.utf8), published: marker["published"] == "1"))
        }
        let legacy = try Self.fields(Self.absentIfShardDown(replies[1]))
        if let result = legacy["result"] {
            // Before markers were bound, only the stored result said whose they were.
            let stored = try? JSONValue.parse(Array(result.utf8))
            guard stored?["account_id"]?.stringValue == command.accountID,
                stored?["type"]?.stringValue == command.type.rawValue
            else {
                return .conflict(detail: Self.conflictDetail)
            }
            return .done(Record(result: Array(result.utf8), published: legacy["published"] == "1"))
        }
        if let code = marker["dead"] {
            guard marker["type"] == command.type.rawValue, marker["digest"] == command.payloadDigest else {
                return .conflict(detail: Self.conflictDetail)
            }
            return .deadLettered(code: code, flow: marker["dead_flow"] ?? "")
        }
        if let claimed = try Self.absentIfShardDown(replies[2]).get().string, claimed != Self.binding(command) {
            return .conflict(detail: Self.conflictDetail)
        }
        return .fresh
    }

    /// The legacy marker (`kr:idem:<id>`) and the claim (`kr:idclaim:<id>`) are not under the account's hash tag:
    /// on a Redis Cluster they live on whichever shard their command id hashes to. When that shard is down (the
    /// cluster client gave up on the slot: ``RedisError/Code/clusterUnavailable``) they count as absent, so an
    /// account whose own shard is healthy keeps flowing; meanwhile an id reused by another account whose claim is
    /// on the downed shard is not recognised (docs/operations.md, "Redis Cluster shard outage"). The account's own
    /// marker is never skipped: its failure fails the lookup.
    static func absentIfShardDown(_ reply: Result<RedisValue, RedisError>) -> Result<RedisValue, RedisError> {
        if case .failure(let error) = reply, error.code == .clusterUnavailable { return .success(.null) }
        return reply
    }

    static let conflictDetail =
        "another command with this id (for another account, type or payload) was already accepted; "
        + "command ids are idempotency keys and must name one command: publish this one under a new id"

    static func fields(_ reply: Result<RedisValue, RedisError>) throws -> [String: String] {
        // HGETALL answers an array of pairs (a Redis error, e.g. WRONGTYPE, arrives as the failure).
        guard let elements = try reply.get().array, elements.count % 2 == 0 else { return [:] }
        var result: [String: String] = [:]
        for index in stride(from: 0, to: elements.count, by: 2) {
            if let field = elements[index].string, let text = elements[index + 1].string { result[field] = text }
        }
        return result
    }

    /// Records a command's result before it is published (one round trip).
    public func record(_ command: CommandEnvelope, result: [UInt8]) async throws {
        let key = RedisKeys.idempotency(command.accountID, command.id)
        let replies = try await pipelineWithMarks([
            [
                "HSET", key, "result", String(decoding: result, as: UTF8.self), "published", "0", "type",
                command.type.rawValue, "digest", command.payloadDigest,
            ],
            ["PEXPIRE", key, ttlMilliseconds],
            // The claim lives at least as long as the marker it guards.
            ["SET", RedisKeys.idempotencyClaim(command.id), Self.binding(command), "PX", ttlMilliseconds],
        ])
        // The claim may be on a downed shard (``absentIfShardDown(_:)``); the marker is in the account's slot.
        for reply in replies.prefix(2) + [Self.absentIfShardDown(replies[2])] {
            if case .failure(let error) = reply { throw error }
        }
    }

    /// Records that a command was dead-lettered (after the broker confirmed the dead letter, before the ack): a
    /// copy of it still circulating (the ack was lost and the broker delivers it again, or a retry copy of a
    /// second flow) then ends as a duplicate instead of running again and ending a second, different way (a
    /// result after the dead letter). A fresh delivery of the same command (`dlq replay`) runs again; a result
    /// recorded later wins over the mark.
    public func recordDeadLettered(_ command: CommandEnvelope, code: DeadLetterCode, flow: String) async throws {
        let key = RedisKeys.idempotency(command.accountID, command.id)
        let replies = try await redis.pipeline([
            [
                "HSET", key, "dead", code.rawValue, "dead_flow", flow, "type", command.type.rawValue, "digest",
                command.payloadDigest,
            ],
            ["PEXPIRE", key, ttlMilliseconds],
        ])
        for reply in replies {
            if case .failure(let error) = reply { throw error }
        }
    }

    /// Removes a command's dead-lettered mark when a fresh delivery of it (`dlq replay`) is admitted, so the
    /// replay's own copies (retries, hold-backs, job polls, hand-backs) are not taken for copies of the dead
    /// letter and dropped. A copy of the first flow that arrives while the replay runs then runs too: at worst a
    /// second result, never a lost command.
    public func clearDeadLettered(_ command: CommandEnvelope) async throws {
        _ = try await redis.send(["HDEL", RedisKeys.idempotency(command.accountID, command.id), "dead", "dead_flow"])
    }

    /// Queues the published mark of a command: the next lookup or record pipeline writes it, or, when none comes
    /// within the store's `markFlushDelay`, a round trip of its own (``flushMarks()``). Never waits.
    public func markPublishedSoon(_ command: CommandEnvelope) {
        guard pendingMarks.add(RedisKeys.idempotency(command.accountID, command.id)) else { return }
        // One flusher at a time: it runs while marks keep coming, and ends when a flush leaves none queued.
        let store = self
        Task {
            repeat {
                try? await Task.sleep(for: store.pendingMarks.flushDelay)
                try? await store.flushMarks()
            } while !store.pendingMarks.flusherEnds()
        }
    }

    /// Writes every queued published mark now (the idle flush, shutdown, and a crash point that must see them).
    /// Marks whose round trip fails are queued again.
    public func flushMarks() async throws {
        _ = try await pipelineWithMarks([])
    }

    /// The published marks queued (for tests and shutdown logs).
    public var pendingMarkCount: Int { pendingMarks.count }

    /// `commands` with up to ``PendingMarks/maxPerPipeline`` queued marks appended: the marks' replies are dropped
    /// (a mark that fails is only a mark missing); when the round trip fails they are queued again.
    func pipelineWithMarks(_ commands: [[String]]) async throws -> [Result<RedisValue, RedisError>] {
        let keys = pendingMarks.take(PendingMarks.maxPerPipeline)
        guard !keys.isEmpty else { return try await redis.pipeline(commands) }
        var all = commands
        all.reserveCapacity(commands.count + 2 * keys.count)
        for key in keys { all.append(contentsOf: markCommands(key)) }
        do {
            return Array(try await redis.pipeline(all).prefix(commands.count))
        } catch {
            pendingMarks.putBack(keys)
            throw error
        }
    }

    /// The mark of one marker: PEXPIRE NX, so a marker that was already gone (expired) does not come back without
    /// a lifetime.
    func markCommands(_ key: String) -> [[String]] {
        [["HSET", key, "published", "1"], ["PEXPIRE", key, ttlMilliseconds, "NX"]]
    }

    /// The job a command submitted and still waits for, if any. The legacy key (`kr:job:<id>`, written before
    /// job records moved under the account) names no account: it is read only for a delivery that is a job
    /// poll (`polling`, its `x-relay-job-polls` header; polls parked before the move carry it unsealed), so a
    /// fresh command of another account reusing the id never adopts, and polls with its own credential, a job
    /// that is not its own.
    public func jobState(_ command: CommandEnvelope, polling: Bool = false) async throws -> String? {
        guard polling else {
            return try await redis.send(["GET", RedisKeys.job(command.accountID, command.id)]).string
        }
        let replies = try await redis.pipeline([
            ["GET", RedisKeys.job(command.accountID, command.id)],
            ["GET", RedisKeys.legacyJob(command.id)],
        ])
        return try replies[0].get().string ?? replies[1].get().string
    }

    /// Records the job a command waits for, before the command is parked for its next poll: a restart then
    /// polls the same job instead of submitting another one.
    public func recordJobState(_ command: CommandEnvelope, state: String) async throws {
        _ = try await redis.send(["SET", RedisKeys.job(command.accountID, command.id), state, "PX", ttlMilliseconds])
    }
}

/// Published marks waiting for a pipeline to ride along with (``IdempotencyStore/markPublishedSoon(_:)``).
final class PendingMarks: Sendable {
    /// How long a mark waits for another command's round trip before it is written on its own.
    let flushDelay: Duration
    /// Marks one pipeline carries at most (two commands each).
    static let maxPerPipeline = 128

    init(flushDelay: Duration) {
        self.flushDelay = flushDelay
    }

    struct State {
        var keys: [String] = []
        /// Whether a flusher runs (``IdempotencyStore/markPublishedSoon(_:)``).
        var flushScheduled = false
    }

    let state = Mutex(State())

    /// Queues a marker key; true when the caller must schedule the idle flush.
    func add(_ key: String) -> Bool {
        state.withLock { state in
            state.keys.append(key)
            if state.flushScheduled { return false }
            state.flushScheduled = true
            return true
        }
    }

    /// Takes up to `limit` queued keys, oldest first.
    func take(_ limit: Int) -> [String] {
        state.withLock { state in
            if state.keys.isEmpty { return [] }
            let taken = Array(state.keys.prefix(limit))
            state.keys.removeFirst(taken.count)
            return taken
        }
    }

    /// Called by the flusher after each flush: true (and the next mark schedules a new flusher) when no mark is
    /// queued, false when it must flush again.
    func flusherEnds() -> Bool {
        state.withLock { state in
            guard state.keys.isEmpty else { return false }
            state.flushScheduled = false
            return true
        }
    }

    /// Queues keys again whose round trip failed (they are written by the next one).
    func putBack(_ keys: [String]) {
        state.withLock { $0.keys.insert(contentsOf: keys, at: 0) }
    }

    var count: Int { state.withLock { $0.keys.count } }
}
