public import Klaviyo
public import Logging
import Metrics
public import Redis

/// Coalesces an account's `profile.upsert` commands into profile bulk import jobs while its single-call backlog
/// is deep (README, `RELAY_COALESCE`; issue #8 item 2).
///
/// A coalescable upsert (``CoalescedRow``) of an account whose next free `create_or_update_profile` slot is at
/// least ``Settings/threshold`` away joins the account's open batch in Redis and is parked like a job
/// (``PendingJob``, no consumer slot held). Every later delivery of a member steps its batch: the first one
/// after the batch is due seals it and submits ONE `bulk_import_profiles` call (its claim on the batch is a
/// lock with a TTL, so one process submits); later ones poll the job (one GET per poll interval per batch,
/// cached on the batch); the one that finds it final reads the import errors once and stores them by row. Each
/// member then ends with its own outcome: `succeeded` (status 202, the job id), a `klaviyo_rejected` dead
/// letter carrying its row's import error, or, when the job was cancelled or an error could not be tied to a
/// row, a single `profile-import` call.
///
/// Crash safety: `submitting` (with Redis's time) is recorded before the HTTP call. A process that finds a
/// batch `submitting` without a job id after the lock expired does not submit blindly: it lists the account's
/// recent bulk import jobs and adopts the one created while that submit could have run, with the batch's row
/// count, that no other batch and no `profile.bulk_import` command recorded (``recordJob(_:accountID:)``); when
/// there is none, or more than one, it submits again.
///
/// Order: an upsert whose identifier is in a batch not settled yet joins a batch too (never a single call that
/// could overtake it), and never the same batch: a batch that shares an identifier with an earlier one is
/// submitted only after that one settled. A batch settles when it is final and each of its members that went
/// out singly (the job cancelled, or row errors not tied to rows) has its outcome, so a newer upsert never
/// overtakes an older member's single call either; a member that never comes back holds the batch at most
/// ``Settings/holdTTL`` (``holdFunctions``).
public struct ProfileCoalescer: Sendable {
    /// How far in the future the next free slot of an operation is for an account (`.zero`: free now); the
    /// rate limiter's `backlog(accountID:operationID:)`.
    public typealias BacklogProbe = @Sendable (_ accountID: String, _ operationID: String) async throws -> Duration

    /// What one delivery of a coalescable upsert leads to.
    public enum Visit: Sendable {
        /// Send it singly (`profile-import`) now.
        case single
        /// Park it until its batch's next step.
        case pending(PendingJob)
        /// Its batch is done and this is its outcome.
        case finished(CommandExecution)
    }

    /// A command's place in a batch.
    struct Membership: Sendable, Hashable {
        var batch: String
        var row: Int
        var joinedAtMilliseconds: Int64
        /// Set by a fresh join: how long until the batch is due (zero: due now, step it at once).
        var joinedFresh: Duration = .zero
    }

    /// Redis.
    public let redis: RedisClient
    /// The settings.
    public let settings: Settings
    let backlog: BacklogProbe
    let crashPoint: CrashPoint?
    let logger: Logger

    /// Creates a coalescer. `backlog` measures the single-call backlog.
    public init(
        redis: RedisClient, settings: Settings = Settings(), crashPoint: CrashPoint? = nil, logger: Logger,
        backlog: @escaping BacklogProbe
    ) {
        self.redis = redis
        self.settings = settings
        self.crashPoint = crashPoint
        self.logger = logger
        self.backlog = backlog
    }

    /// The operation whose backlog decides.
    static let singleOperation = "create_or_update_profile"
    /// The operation of a batch.
    static let bulkOperation = "bulk_import_profiles"
    /// Rows among the first of a batch come back quickly and drive it; the others come back less often (every
    /// member can step the batch, so none depends on another being delivered).
    static let drivers = 2
    /// How soon a non-driving member of a submitted batch looks again.
    static let followerDelay: Duration = .seconds(5)

    /// One delivery of coalescable upsert `command`: join a batch, step the batch it is in, or go singly.
    /// `klaviyo` is the command's (rate-limit-gated) client.
    /// `peeked` is the answer of ``peekCommand(_:identifiers:)`` when the processor already sent it with the command's
    /// idempotency lookup (one round trip for both); nil sends it here.
    public func visit(
        _ command: CommandEnvelope, row: CoalescedRow, klaviyo: KlaviyoClient, credential: KlaviyoCredential,
        peeked: [String]? = nil
    ) async throws(KlaviyoError) -> Visit {
        let keys = Keys(command)
        var membership: Membership
        let peek: [String]
        if let peeked {
            peek = peeked
        } else {
            peek = try await script(
                Self.peekScript, [keys.member, keys.identifiers], [keys.prefix, keys.markers] + row.identifiers)
        }
        switch peek {
        case let reply where reply.first == "member":
            membership = try Self.membership(reply)
        case let reply where reply.first == "pending":
            membership = try await join(command, row: row, keys: keys)
            if membership.joinedFresh > .zero {
                return .pending(pending(membership, jobID: nil, wait: membership.joinedFresh))
            }
        default:
            let wait: Duration
            do {
                wait = try await backlog(command.accountID, Self.singleOperation)
            } catch {
                logger.debug("backlog unknown; upsert sent singly", metadata: [LogKeys.errorDetail: "\(error)"])
                return .single
            }
            guard settings.threshold == .zero || wait >= settings.threshold else { return .single }
            membership = try await join(command, row: row, keys: keys)
            if membership.joinedFresh > .zero {
                return .pending(pending(membership, jobID: nil, wait: membership.joinedFresh))
            }
        }
        return try await advance(command, membership: membership, keys: keys, klaviyo: klaviyo, credential: credential)
    }

    /// One delivery of an upsert that cannot be coalesced (``CoalescedRow`` is nil) of a profile with
    /// `identifiers`: `.single` at once when none of them is in a batch not settled yet; else it waits behind
    /// those batches in a barrier (``barrierScript``), parked like a member, and goes out singly (`.single`)
    /// once they settled, holding its identifiers until its outcome, so it neither overtakes an older batched
    /// upsert of its profile nor is overtaken by a newer one.
    /// `peeked`: as for ``visit(_:row:klaviyo:credential:peeked:)``; `none` (no identifier pending, not waiting
    /// already) sends it singly without another round trip.
    public func visitUncoalescable(
        _ command: CommandEnvelope, identifiers: [String], klaviyo: KlaviyoClient, credential: KlaviyoCredential,
        peeked: [String]? = nil
    ) async throws(KlaviyoError) -> Visit {
        guard !identifiers.isEmpty, peeked?.first != "none" else { return .single }
        let keys = Keys(command)
        if let peeked, peeked.first == "member" {
            return try await advance(
                command, membership: try Self.membership(peeked), keys: keys, klaviyo: klaviyo, credential: credential)
        }
        let reply = try await script(
            Self.barrierScript, [keys.member, keys.identifiers, keys.sequence, keys.holds, keys.open],
            [
                keys.prefix, keys.markers, command.id, String(settings.ttl.wholeMilliseconds),
                String(settings.holdTTL.wholeMilliseconds),
            ] + identifiers)
        guard reply.first == "member" || reply.first == "joined" else { return .single }
        let membership = try Self.membership(reply)
        if reply.first == "joined" {
            logger.debug(
                "upsert waits for the earlier batches of its profile before going out singly",
                metadata: ["coalesce.batch": "\(membership.batch)"])
        }
        return try await advance(command, membership: membership, keys: keys, klaviyo: klaviyo, credential: credential)
    }

    /// Joins the account's open batch (or the member's batch when an earlier delivery already joined).
    func join(_ command: CommandEnvelope, row: CoalescedRow, keys: Keys) async throws(KlaviyoError) -> Membership {
        let reply = try await script(
            Self.joinScript, [keys.member, keys.identifiers, keys.open, keys.sequence, keys.holds],
            [
                keys.prefix, row.stored(commandID: command.id), String(row.requestBytes), String(settings.maxRows),
                String(settings.maxBytes), String(settings.window.wholeMilliseconds),
                String(settings.ttl.wholeMilliseconds), command.id, keys.markers,
            ] + row.identifiers)
        var membership = try Self.membership(reply)
        if reply.first == "joined" {
            Counter(label: "relay_coalesced_upserts_total").increment()
            let wait = reply.count > 4 ? Int64(reply[4]) ?? 0 : 0
            membership.joinedFresh = wait > 0 ? .milliseconds(wait) : .zero
            logger.debug(
                "upsert joined a profile bulk import batch",
                metadata: ["coalesce.batch": "\(membership.batch)", "coalesce.row": "\(membership.row)"])
        }
        return membership
    }

    /// Steps the member's batch until this delivery can stop: parked, finished, or single.
    func advance(
        _ command: CommandEnvelope, membership: Membership, keys: Keys, klaviyo: KlaviyoClient,
        credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> Visit {
        let batch = keys.batch(membership.batch)
        for _ in 0..<4 {
            let token = Self.newToken()
            let reply = try await script(
                Self.advanceScript, [batch, keys.open, batch + ":errors"],
                [
                    keys.prefix, membership.batch, String(membership.row), token,
                    String(settings.lockTTL.wholeMilliseconds), String(settings.pollInterval.wholeMilliseconds),
                    command.id, String(settings.holdTTL.wholeMilliseconds), keys.markers,
                ])
            switch reply.first {
            case "wait":
                let wait = Int64(reply.count > 1 ? reply[1] : "") ?? 1000
                let jobID = reply.count > 2 && !reply[2].isEmpty ? reply[2] : nil
                return .pending(pending(membership, jobID: jobID, wait: .milliseconds(max(wait, 0))))
            case "submit":
                let rows = Int(reply.count > 1 ? reply[1] : "") ?? 0
                if let visit = try await submit(
                    command, membership: membership, batch: batch, keys: keys, token: token, rows: rows,
                    klaviyo: klaviyo, credential: credential)
                {
                    return visit
                }
            case "adopt":
                let rows = Int(reply.count > 1 ? reply[1] : "") ?? 0
                let since = Int64(reply.count > 2 ? reply[2] : "") ?? 0
                if let visit = try await adopt(
                    command, membership: membership, batch: batch, keys: keys, token: token, rows: rows,
                    submittingAt: since, klaviyo: klaviyo, credential: credential)
                {
                    return visit
                }
            case "poll":
                let jobID = reply.count > 1 ? reply[1] : ""
                if let visit = try await poll(
                    membership: membership, batch: batch, keys: keys, token: token, jobID: jobID, klaviyo: klaviyo,
                    credential: credential)
                {
                    return visit
                }
            case "final":
                return try outcome(reply, membership: membership)
            default:
                // The batch expired (far beyond any retry age): an upsert is idempotent, send it singly.
                logger.warning("profile bulk import batch gone; upsert sent singly")
                return .single
            }
        }
        return .pending(pending(membership, jobID: nil, wait: .seconds(1)))
    }

    /// The member's outcome once its batch is final.
    func outcome(_ reply: [String], membership: Membership) throws(KlaviyoError) -> Visit {
        let state = reply.count > 1 ? reply[1] : ""
        let jobID = reply.count > 2 ? reply[2] : ""
        let rowError = reply.count > 3 ? reply[3] : ""
        let uncertain = reply.count > 4 && reply[4] == "1"
        if state == "single" {
            logger.debug(
                "the earlier batches of the profile settled; upsert sent singly",
                metadata: ["coalesce.batch": "\(membership.batch)"])
            return .single
        }
        guard state == "complete" else {
            logger.info(
                "profile bulk import batch ended \(state); upsert sent singly",
                metadata: ["job_id": "\(jobID)", "coalesce.batch": "\(membership.batch)"])
            return .single
        }
        if !rowError.isEmpty, let error = try? JSONValue.parse(Array(rowError.utf8)) {
            let apiError = KlaviyoAPIError(
                status: 400, code: error["code"]?.stringValue, title: error["title"]?.stringValue,
                detail: error["detail"]?.stringValue, sourcePointer: error["source"]?["pointer"]?.stringValue)
            throw KlaviyoError(
                code: .rejected, status: 400, operationID: Self.bulkOperation,
                message: "bulk import job \(jobID) rejected row \(membership.row): "
                    + "\(apiError.title ?? "invalid"): \(apiError.detail ?? "")",
                apiErrors: [apiError], requestMayHaveBeenSent: true)
        }
        if uncertain { return .single }
        return .finished(
            CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: 202, ids: [jobID],
                    data: ["coalesced": true, "job_id": .string(jobID), "row": .int(Int64(membership.row))],
                    job: ["id": .string(jobID), "status": "complete"])))
    }

    /// The parked state of a member: when to look again (drivers soon, the others at most every
    /// ``followerDelay`` once the batch is submitted).
    func pending(_ membership: Membership, jobID: String?, wait: Duration) -> PendingJob {
        var state: [String: JSONValue] = [
            "coalesced": true, "batch": .string(membership.batch), "row": .int(Int64(membership.row)),
            "submitted_at": .string(Timestamp.format(milliseconds: membership.joinedAtMilliseconds)), "polls": 0,
        ]
        if let jobID { state["job_id"] = .string(jobID) }
        var delay = max(wait, .milliseconds(100))
        if jobID != nil, membership.row >= Self.drivers { delay = max(delay, Self.followerDelay) }
        return PendingJob(state: .object(state), pollAfter: delay)
    }
}

extension ProfileCoalescer {
    /// The peek of ``visit(_:row:klaviyo:credential:peeked:)`` as a Redis command (`EVALSHA`), for the processor
    /// to pipeline with the command's idempotency lookup. A `NOSCRIPT` answer (the script not loaded yet) or any
    /// other error makes the visit peek again itself, loading the script.
    /// It takes a profile's normalized identifiers (``CoalescedRow/identifiers(of:)``): it is also asked for an
    /// upsert that cannot be coalesced, which waits behind the batches it finds.
    public static func peekCommand(_ command: CommandEnvelope, identifiers: [String]) -> [String] {
        let keys = Keys(command)
        return ["EVALSHA", peekScript.sha1, "2", keys.member, keys.identifiers, keys.prefix, keys.markers]
            + identifiers
    }

    /// A script's answer as strings (an array's elements, or the one value).
    static func strings(_ reply: RedisValue) -> [String] {
        if let elements = reply.array { return elements.map { $0.string ?? $0.int.map(String.init) ?? "" } }
        return [reply.string ?? reply.int.map(String.init) ?? ""]
    }

    /// The keys of one account's coalescing.
    struct Keys {
        let prefix: String
        let commandID: String
        /// The prefix of the account's done markers (``RedisKeys/idempotency(_:_:)``): a held batch's member has
        /// its outcome once its marker exists.
        let markers: String

        init(_ command: CommandEnvelope) {
            prefix = RedisKeys.coalescing(command.accountID)
            commandID = command.id
            markers = RedisKeys.idempotency(command.accountID, "")
        }

        var member: String { prefix + "member:" + commandID }
        var identifiers: String { prefix + "identifiers" }
        var open: String { prefix + "open" }
        var sequence: String { prefix + "seq" }
        var jobs: String { prefix + "jobs" }
        var holds: String { prefix + "holds" }
        func batch(_ id: String) -> String { prefix + "batch:" + id }
    }

    static func newToken() -> String {
        (0..<16).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined()
    }

    static func membership(_ reply: [String]) throws(KlaviyoError) -> Membership {
        guard reply.count >= 4, let row = Int(reply[2]), let joined = Int64(reply[3]) else {
            throw unavailable("coalescing script answered \(reply)")
        }
        return Membership(batch: reply[1], row: row, joinedAtMilliseconds: joined)
    }

    static func unavailable(_ message: String) -> KlaviyoError {
        KlaviyoError(
            code: .gateUnavailable, operationID: bulkOperation, message: "profile coalescing: \(message)",
            requestMayHaveBeenSent: false)
    }

    /// Runs a script; a reply is flattened to strings. Redis failures are retried a few times, then the
    /// delivery is handed back (``KlaviyoError/Code/gateUnavailable``: nothing was sent by this step); a Redis
    /// Cluster shard that is down is not retried (``RedisError/isShardDown(_:)``).
    func script(_ script: RedisScript, _ keys: [String], _ arguments: [String]) async throws(KlaviyoError) -> [String] {
        var backoff = Duration.milliseconds(50)
        var attempts = 0
        while true {
            do {
                return Self.strings(try await redis.run(script, keys: keys, arguments: arguments))
            } catch {
                attempts += 1
                if attempts >= 5 || RedisError.isShardDown(error) { throw Self.unavailable("Redis: \(error)") }
                do {
                    try await Task.sleep(for: backoff)
                } catch {
                    throw Self.unavailable("cancelled")
                }
                backoff = backoff * 2
            }
        }
    }
}
