import AMQP
import Klaviyo
import Logging

extension CommandProcessor {
    /// One delivery of a decoded command while it is processed: what the steps learn and change.
    struct Run {
        /// The command.
        let command: CommandEnvelope
        /// Its delivery.
        let delivery: AMQPDelivery
        /// The attempts and first failure of earlier deliveries (sealed headers).
        let previous: DelayedRetry.State
        /// Where the result's `duration_ms` counts from.
        var started: ContinuousClock.Instant
        /// Logger with the command's metadata.
        let logger: Logger
        /// The account's connection (after a refresh: the refreshed one).
        var connection: ConnectionRecord?
        /// The credential of the next call.
        var credential: KlaviyoCredential?
        /// The executor, its calls admitted by the account's rate limiter.
        var executor: CommandExecutor?
        /// The stored state of a job this command already submitted (nil: none yet).
        var job: JSONValue?
        /// The answer to the executor's admission read (``CommandExecutor/admissionRead(for:)``), sent with the
        /// idempotency lookup; used by the first call only (nil: none, or it failed and the executor reads itself).
        var admissionReply: [String]?
        /// The next Klaviyo attempt, counting those of earlier deliveries.
        var attempt: Int
        /// Refreshes after a 401 during this delivery. Two are allowed: the first may only adopt a newer
        /// connection another process stored (a reconnect) whose token Klaviyo refuses as well; the second then
        /// really asks Klaviyo (and learns, say, that the app was removed).
        var refreshes = 0
        /// Whether Klaviyo was called during this delivery.
        var calledKlaviyo = false
        /// The last failure and when the first one happened (set when a call fails).
        var lastFailure: (error: KlaviyoError, firstFailedAt: String)?
        /// The rate-limiter slot the command reserved before it was parked (its sealed `x-relay-slot`), and
        /// the slot of a call held back during this delivery.
        let slot: CarriedReservation

        init(
            command: CommandEnvelope, delivery: AMQPDelivery, seal: HeaderSeal, started: ContinuousClock.Instant,
            logger: Logger
        ) {
            self.command = command
            self.delivery = delivery
            let trusted = seal.trustedHeaders(of: delivery)
            self.previous = DelayedRetry.State(headers: trusted)
            self.bundleRedelivered = trusted[DeliveryBundle.redeliveredHeader] != nil
            self.polledJob = trusted[DelayedRetry.Header.jobPolls] != nil
            self.mayBeACopy = delivery.redelivered || bundleRedelivered || trusted[HeaderSeal.header] != nil
            self.slot = CarriedReservation(
                trusted[DelayedRetry.Header.slot]?.stringValue.flatMap(RateLimiter.Reservation.init(header:)))
            self.started = started
            self.logger = logger
            self.attempt = previous.attempts + 1
        }

        /// Attempts a dead letter reports before any call: at least one, and never fewer than earlier deliveries
        /// made (a command coming back from a retry tier keeps its count).
        var attemptsSoFar: Int { max(1, previous.attempts) }

        /// Whether an earlier attempt may have reached Klaviyo (it failed, or the process died mid-call), so a
        /// non-idempotent send looks before sending again.
        /// A sealed job poll counts too: its job was submitted, even when the record of it was lost (a Redis
        /// failover), so a `campaign.send` looks the send job up instead of sending again.
        /// A replay (`x-replay-id`) counts too: the attempt that was dead-lettered may have reached Klaviyo (a
        /// `campaign.create` whose 500 exhausted its retries), so its campaign is looked up before one is created.
        var mayHaveSent: Bool {
            previous.attempts > 0 || delivery.redelivered || bundleRedelivered || polledJob
                || !DeadLetterQueue.flow(of: delivery).isEmpty
        }
        /// Whether the bundle that carried this command was delivered again (sealed `x-relay-redelivered`): a
        /// consumer may have died while processing it.
        let bundleRedelivered: Bool
        /// Whether this delivery is a poll of a job the command submitted (sealed `x-relay-job-polls`).
        let polledJob: Bool
        /// Whether this delivery may be a copy of one processed before (redelivered, or sealed by the relay), as
        /// opposed to a publisher's fresh message.
        let mayBeACopy: Bool
    }

    /// Idempotency, type, connection and credential: `.call` when the command may go to Klaviyo, else the
    /// action that ends it.
    func admit(_ run: inout Run) async throws -> Action {
        let command = run.command
        let logger = run.logger
        // The executor's first Redis read (a `profile.upsert`'s coalescing peek) rides along: one round trip.
        let admissionRead = executor.admissionRead(for: command)
        let (lookup, readReply) = try await infrastructure("idempotency lookup", logger: logger) {
            try await idempotency.lookup(command, alongside: admissionRead)
        }
        if let reply = try? readReply?.get() { run.admissionReply = ProfileCoalescer.strings(reply) }
        if let action = Self.afterLookup(
            lookup, mayBeACopy: run.mayBeACopy, flow: DeadLetterQueue.flow(of: run.delivery))
        {
            return action
        }
        if case .deadLettered = lookup {
            // A fresh delivery (a publisher's, or a replay's): its own retry, hold-back and poll copies are sealed,
            // and a publisher's carry no replay token, so the mark would take them for copies of the dead-lettered
            // delivery and drop them. This delivery owns the command now.
            try await infrastructure("dead-letter mark", logger: logger) {
                try await idempotency.clearDeadLettered(command)
            }
        }
        if let action = Self.route(command, attempts: run.attemptsSoFar) { return action }
        let connection: ConnectionRecord
        switch try await usableConnection(for: command, attempts: run.attemptsSoFar, logger: logger) {
        case .admitted(let usable): connection = usable
        case .refused(let action): return action
        }
        guard let credential = connection.credential else {
            return .deadLetter(
                code: .notConnected, detail: "account \(command.accountID) has no usable credential",
                attempts: run.attemptsSoFar, firstFailedAt: nil)
        }
        run.connection = connection
        run.credential = credential
        // A job this command already submitted is polled, never submitted again.
        if command.type.waitsForJob,
            let stored = try await infrastructure(
                "job lookup", logger: logger,
                {
                    try await idempotency.jobState(
                        command, polling: run.delivery.properties.headers[DelayedRetry.Header.jobPolls] != nil)
                })
        {
            run.job = try? JSONValue.parse(Array(stored.utf8))
        }
        // Every call of this command is admitted by the account's shared rate limiter first.
        run.executor =
            rateLimiter.map {
                executor.gated(by: $0.gate(accountID: command.accountID, slot: run.slot, logger: logger))
            }
            ?? executor
        return .call
    }

    /// One Klaviyo attempt, then the decision on its answer or error. Retries are delayed through the TTL
    /// tiers (``DelayedRetry``), never by sleeping on the held message.
    @inline(never)  // ``perform(_:_:)``: see there
    func call(_ run: inout Run) async -> Action {
        guard let executor = run.executor, let credential = run.credential else {
            preconditionFailure("admit(_:) sets the executor and the credential before .call")
        }
        run.calledKlaviyo = true
        let admissionReply = run.admissionReply
        run.admissionReply = nil
        do {
            let execution = try await executor.execute(
                run.command, credential: credential, job: run.job, mayHaveSent: run.mayHaveSent,
                admissionReply: admissionReply)
            return Self.afterExecution(
                execution, attempts: run.attempt, policy: retryPolicy, topology: topology,
                nowMilliseconds: Timestamp.nowMilliseconds())
        } catch {
            let firstFailedAt = run.previous.firstFailedAt ?? Timestamp.now()
            run.lastFailure = (error, firstFailedAt)
            return decideAfterFailure(run)
        }
    }

    /// The decision on the run's last failure.
    func decideAfterFailure(_ run: Run) -> Action {
        guard let (error, firstFailedAt) = run.lastFailure else {
            preconditionFailure("decideAfterFailure(_:) follows a failed call")
        }
        let attempt = Attempt(
            number: run.attempt, firstFailedAt: firstFailedAt,
            refreshed: run.refreshes >= Self.maxRefreshesPerDelivery,
            canRefresh: tokenManager != nil, usedOAuth: run.credential?.isOAuth ?? false,
            isIdempotent: CommandExecutor.isIdempotent(run.command.payload))
        return Self.afterFailure(
            error, of: attempt, policy: retryPolicy, topology: topology, nowMilliseconds: Timestamp.nowMilliseconds(),
            reserved: run.slot.reservation != nil)
    }

    /// Refreshes one delivery may make after 401s (see ``Run/refreshes``).
    static let maxRefreshesPerDelivery = 2

    /// After a 401 on an OAuth token: one single-flight refresh, then the call again (a refresh that yields no
    /// credential is decided like any other permanent failure).
    @inline(never)  // ``perform(_:_:)``: see there
    func refresh(_ run: inout Run) async throws -> Action {
        run.refreshes += 1
        if let tokenManager, let connection = run.connection, let failure = run.lastFailure {
            switch try await oauthConnection(
                connection, tokenManager: tokenManager, afterUnauthorized: true, logger: run.logger)
            {
            case .success(let refreshed):
                run.connection = refreshed
                if let credential = refreshed.credential {
                    run.credential = credential
                    run.attempt += 1
                    return .call
                }
            case .failure(let rejection):
                return .deadLetter(
                    code: rejection.code, detail: rejection.detail, attempts: run.attempt,
                    firstFailedAt: failure.firstFailedAt)
            }
        }
        return decideAfterFailure(run)
    }
}
