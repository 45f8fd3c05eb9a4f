public import AMQP
import Klaviyo
public import Logging
import Metrics

/// Processes one delivery from start to finish: decode and validate, idempotency, credential, Klaviyo call
/// with bounded retries, then exactly one result or dead letter, confirmed by the broker, and only then the
/// ack. Bad input never throws out of here: it becomes a dead letter with a reason.
public struct CommandProcessor: Sendable {
    /// How a delivery ended, for metrics and tests.
    public enum Outcome: Sendable, Hashable {
        /// A `succeeded` result was published.
        case succeeded
        /// A `failed` result was published.
        case failed
        /// A dead letter was published.
        case deadLettered(DeadLetterCode)
        /// The command was already done: acked (and its stored result re-published when it was a new copy).
        case duplicate
        /// Not finished (shutdown, broker gone): left unacked or requeued for redelivery.
        case handedBack
        /// A transient Klaviyo failure: the command was parked in a retry tier (confirmed), then acked.
        case retryScheduled
        /// A Klaviyo job (bulk import, campaign send) is running: its id is recorded in Redis and the command
        /// is parked in a delay tier until the next poll (no consumer slot or thread waits for it).
        case waitingForJob
    }

    let amqp: AMQPClient
    let topology: RelayTopology
    let decoder: CommandDecoder
    let idempotency: IdempotencyStore
    let credentials: CredentialCache
    let credentialStore: CredentialStore
    let executor: CommandExecutor
    let retryPolicy: RetryPolicy
    let crashPoint: CrashPoint?
    let logger: Logger
    /// Valid OAuth access tokens (nil: OAuth not configured; stored tokens are used as they are).
    let tokenManager: TokenManager?
    let syncStatus: SyncStatus?
    let lifecycle: ConnectionLifecycle?
    /// Klaviyo's rate limits shared through Redis (nil: `RELAY_RATE_LIMIT=off`).
    let rateLimiter: RateLimiter?
    /// Which queues `reply_to` may name (`RELAY_REPLY_TO_PATTERN`).
    let replyTo: ReplyToPolicy
    /// Seals the relay's own retry headers, so a publisher's `x-relay-*` on a fresh command steer nothing.
    let seal: HeaderSeal

    /// Creates a processor.
    public init(
        amqp: AMQPClient, topology: RelayTopology, decoder: CommandDecoder, idempotency: IdempotencyStore,
        credentials: CredentialCache, credentialStore: CredentialStore, executor: CommandExecutor,
        retryPolicy: RetryPolicy, crashPoint: CrashPoint?, logger: Logger, tokenManager: TokenManager? = nil,
        syncStatus: SyncStatus? = nil, lifecycle: ConnectionLifecycle? = nil, rateLimiter: RateLimiter? = nil,
        replyTo: ReplyToPolicy = .default
    ) {
        self.amqp = amqp
        self.topology = topology
        self.decoder = decoder
        self.idempotency = idempotency
        self.credentials = credentials
        self.credentialStore = credentialStore
        self.executor = executor
        self.retryPolicy = retryPolicy
        self.crashPoint = crashPoint
        self.logger = logger
        self.tokenManager = tokenManager
        self.syncStatus = syncStatus
        self.lifecycle = lifecycle
        self.rateLimiter = rateLimiter
        self.replyTo = replyTo
        self.seal = HeaderSeal(keyRing: credentialStore.keys)
    }

    /// Raised inside processing when the delivery cannot be finished now (shutdown, broker lost).
    struct HandBack: Error {}

    /// Processes one delivery.
    public func process(_ delivery: AMQPDelivery) async -> Outcome {
        let started = ContinuousClock.now
        var logger = self.logger
        logger[metadataKey: LogKeys.queue] = "\(delivery.queue)"
        if let traceparent = delivery.properties.headers["traceparent"]?.stringValue {
            logger[metadataKey: LogKeys.traceparent] = "\(traceparent)"
        }
        let outcome: Outcome
        // A closed set of label values: the known types, else `unknown` (never a routing key or header).
        var typeLabel = "unknown"
        do {
            if delivery.queue == topology.queueName(.unroutable) {
                outcome = try await deadLetterUnroutable(delivery, logger: &logger)
            } else {
                outcome = try await processRouted(delivery, started: started, typeLabel: &typeLabel, logger: &logger)
            }
        } catch {
            logger.info("command handed back for redelivery", metadata: [LogKeys.errorDetail: "\(error)"])
            outcome = .handedBack
        }
        Counter(label: "relay_commands_total", dimensions: [("type", typeLabel), ("outcome", outcome.metricLabel)])
            .increment()
        Timer(label: "relay_command_duration_seconds", dimensions: [("type", typeLabel)])
            .recordNanoseconds(Int64((ContinuousClock.now - started).nanoseconds))
        return outcome
    }

    /// A message the commands exchange could not route (its alternate exchange caught it): a dead letter
    /// `unroutable`, with whatever ids the body names for ops. Nothing is sent to Klaviyo.
    func deadLetterUnroutable(_ delivery: AMQPDelivery, logger: inout Logger) async throws -> Outcome {
        let (commandID, accountID, type): (String?, String?, String?)
        switch decoder.decode(delivery.body) {
        case .success(let command):
            (commandID, accountID, type) = (command.id, command.accountID, command.type.rawValue)
        case .failure(let rejection):
            (commandID, accountID, type) = (rejection.commandID, rejection.accountID, rejection.type)
        }
        if let commandID { logger[metadataKey: LogKeys.commandID] = "\(commandID)" }
        if let accountID { logger[metadataKey: LogKeys.accountID] = "\(accountID)" }
        let routingKey = String(delivery.routingKey.prefix(255))
        return try await deadLetter(
            delivery, code: .unroutable,
            detail: "routing key \"\(routingKey)\" matches no binding of \(topology.commandsExchange): publish each "
                + "command with its type as the routing key (e.g. profile.upsert)",
            attempts: 1, firstFailedAt: nil, commandID: commandID, accountID: accountID, type: type, logger: logger)
    }

    /// A delivery from a work queue: decode, then process or dead-letter.
    func processRouted(
        _ delivery: AMQPDelivery, started: ContinuousClock.Instant, typeLabel: inout String, logger: inout Logger
    ) async throws -> Outcome {
        let outcome: Outcome
        do {
            switch decoder.decode(delivery.body) {
            case .failure(let rejection):
                if let id = rejection.commandID { logger[metadataKey: LogKeys.commandID] = "\(id)" }
                if let account = rejection.accountID { logger[metadataKey: LogKeys.accountID] = "\(account)" }
                if let type = rejection.type { logger[metadataKey: LogKeys.type] = "\(type)" }
                outcome = try await deadLetter(
                    delivery, code: rejection.code, detail: rejection.detail, attempts: 1, firstFailedAt: nil,
                    commandID: rejection.commandID, accountID: rejection.accountID, type: rejection.type, logger: logger
                )
            case .success(let command):
                logger[metadataKey: LogKeys.commandID] = "\(command.id)"
                logger[metadataKey: LogKeys.accountID] = "\(command.accountID)"
                logger[metadataKey: LogKeys.type] = "\(command.type.rawValue)"
                typeLabel = command.type.rawValue
                if let replyQueue = delivery.properties.replyTo, !replyQueue.isEmpty, !replyTo.allows(replyQueue) {
                    outcome = try await deadLetter(
                        delivery, code: .replyToNotAllowed,
                        detail: "reply_to \"\(replyQueue.prefix(255))\" is not admitted by RELAY_REPLY_TO_PATTERN "
                            + "(\(replyTo)); nothing was sent to Klaviyo",
                        attempts: 1, firstFailedAt: nil, commandID: command.id, accountID: command.accountID,
                        type: command.type.rawValue, logger: logger)
                } else {
                    outcome = try await process(command, delivery: delivery, started: started, logger: logger)
                }
                await recordSync(command, outcome: outcome, logger: logger)
            }
        }
        return outcome
    }

    func process(
        _ command: CommandEnvelope, delivery: AMQPDelivery, started: ContinuousClock.Instant, logger: Logger
    )
        async throws -> Outcome
    {
        switch try await infrastructure("idempotency lookup", logger: logger, { try await idempotency.lookup(command) })
        {
        case .done(let record):
            return try await finishDuplicate(command, record: record, delivery: delivery, logger: logger)
        case .conflict(let detail):
            // Nothing of the other command is revealed, and this one is not executed.
            return try await deadLetter(
                delivery, code: .idConflict, detail: detail, attempts: 1, firstFailedAt: nil, commandID: command.id,
                accountID: command.accountID, type: command.type.rawValue, logger: logger)
        case .fresh:
            break
        }
        func reject(
            _ code: DeadLetterCode, _ detail: String, attempts: Int = 1, firstFailedAt: String? = nil
        )
            async throws -> Outcome
        {
            // A command coming back from a retry tier keeps the count of the Klaviyo attempts already made.
            let made = DelayedRetry.State(delivery: delivery, seal: seal).attempts
            return try await deadLetter(
                delivery, code: code, detail: detail, attempts: max(attempts, made), firstFailedAt: firstFailedAt,
                commandID: command.id, accountID: command.accountID, type: command.type.rawValue, logger: logger)
        }
        guard CommandExecutor.supports(command.payload) else {
            return try await reject(
                .unsupportedType, "command type \(command.type.rawValue) is not handled by this relay version yet")
        }
        if case .connectionDisconnect(let reason) = command.payload {
            guard let lifecycle else {
                return try await reject(.unsupportedType, "this consumer has no connection lifecycle configured")
            }
            let disconnected: Bool
            do {
                disconnected = try await lifecycle.disconnect(
                    accountID: command.accountID, reason: reason ?? "connection.disconnect command \(command.id)")
            } catch {
                // Klaviyo's revoke endpoint could not be reached: stay connected and try again later.
                return try await reject(.retriesExhausted, "disconnect failed: \(error)")
            }
            credentials.invalidate(command.accountID)
            let execution = CommandExecution(
                outcome: .succeeded, klaviyo: .init(status: 200, ids: [], data: ["disconnected": .bool(disconnected)]))
            return try await finish(
                command, execution: execution, attempts: 1, delivery: delivery, started: ContinuousClock.now,
                logger: logger)
        }
        // An unreadable credential is not an outage: no retry, a dead letter at once (replayable).
        let connection: ConnectionRecord?
        switch try await infrastructure("credential lookup", logger: logger, { try await lookUpCredential(command) }) {
        case .success(let record): connection = record
        case .failure(let unreadable):
            noteCredentialUnreadable(unreadable, logger: logger)
            return try await reject(.credentialUnreadable, unreadable.description)
        }
        guard let connection else {
            return try await reject(.notConnected, "account \(command.accountID) has no Klaviyo connection")
        }
        switch connection.state {
        case .reauthRequired:
            return try await reject(
                .reauthRequired, "account \(command.accountID) must reconnect Klaviyo; replay after it has")
        case .disconnected:
            return try await reject(.notConnected, "account \(command.accountID) disconnected Klaviyo")
        case .connected:
            break
        }
        var activeConnection = connection
        if connection.method == .oauth, let tokenManager {
            switch try await oauthConnection(
                connection, tokenManager: tokenManager, afterUnauthorized: false, logger: logger)
            {
            case .success(let usable): activeConnection = usable
            case .failure(let rejection): return try await reject(rejection.code, rejection.detail)
            }
        }
        guard var credential = activeConnection.credential else {
            return try await reject(.notConnected, "account \(command.accountID) has no usable credential")
        }

        // Retries are delayed through the TTL tiers (DelayedRetry), never by sleeping on the held message: the
        // attempt count and first-failure time of earlier deliveries arrive in the headers.
        let previous = DelayedRetry.State(delivery: delivery, seal: seal)
        var attempt = previous.attempts + 1
        var refreshedAfterUnauthorized = false
        // A job this command already submitted is polled, never submitted again.
        var job: JSONValue?
        if command.type.waitsForJob,
            let stored = try await infrastructure(
                "job lookup", logger: logger, { try await idempotency.jobState(command) })
        {
            job = try? JSONValue.parse(Array(stored.utf8))
        }
        let mayHaveSent = previous.attempts > 0 || delivery.redelivered
        // Every call of this command is admitted by the account's shared rate limiter first.
        let executor =
            rateLimiter.map {
                CommandExecutor(
                    klaviyo: self.executor.klaviyo.gated(by: $0.gate(accountID: command.accountID, logger: logger)),
                    batcher: self.executor.batcher)
            } ?? self.executor
        var execution: CommandExecution
        while true {
            do {
                execution = try await executor.execute(
                    command, credential: credential, job: job, mayHaveSent: mayHaveSent)
                break
            } catch {
                let firstFailedAt = previous.firstFailedAt ?? Timestamp.now()
                if error.code == .gateUnavailable {
                    // The limiter's Redis stayed unreachable (or shutdown cancelled the wait): like any other
                    // Redis step, hand the delivery back; nothing was sent.
                    logger.warning("rate limiter unavailable", metadata: [LogKeys.errorDetail: "\(error)"])
                    throw HandBack()
                }
                if error.code == .heldBack {
                    return try await holdBack(
                        command, error: error, attemptsMade: attempt - 1, firstFailedAt: firstFailedAt,
                        delivery: delivery, logger: logger)
                }
                if error.retryDecision == .refreshCredential, !refreshedAfterUnauthorized, let tokenManager {
                    // 401 on an OAuth token: one (single-flight) refresh, then one retry of the call.
                    refreshedAfterUnauthorized = true
                    switch try await oauthConnection(
                        activeConnection, tokenManager: tokenManager, afterUnauthorized: true, logger: logger)
                    {
                    case .success(let refreshed):
                        activeConnection = refreshed
                        if let refreshedCredential = refreshed.credential {
                            credential = refreshedCredential
                            attempt += 1
                            continue
                        }
                    case .failure(let rejection):
                        return try await reject(
                            rejection.code, rejection.detail, attempts: attempt, firstFailedAt: firstFailedAt)
                    }
                }
                let schedule = retryPolicy.schedule(
                    after: error, attempt: attempt, isIdempotent: CommandExecutor.isIdempotent(command.payload),
                    firstFailedAtMilliseconds: Timestamp.parseMilliseconds(firstFailedAt)
                        ?? Timestamp.nowMilliseconds(),
                    nowMilliseconds: Timestamp.nowMilliseconds(), topology: topology)
                switch schedule {
                case .delay(let tier, let wanted):
                    try await scheduleRetry(
                        delivery, type: command.type, in: tier, attempts: attempt, firstFailedAt: firstFailedAt,
                        lastError: error)
                    logger.warning(
                        "klaviyo call failed; retry scheduled",
                        metadata: [
                            LogKeys.attempt: "\(attempt)", LogKeys.errorDetail: "\(error)",
                            "retry_tier": "\(tier.name)",
                            "retry_wanted_ms": "\(wanted.wholeMilliseconds)",
                        ])
                    return .retryScheduled
                case .giveUpExhausted(let reason):
                    return try await reject(
                        .retriesExhausted, "\(reason); last error: \(error)", attempts: attempt,
                        firstFailedAt: firstFailedAt)
                case .giveUpPermanent:
                    if error.code == .unauthorized && !credential.isOAuth {
                        // The private key was deleted or revoked in Klaviyo: every command of this account
                        // would fail the same way until the customer connects again.
                        _ = try? await credentialStore.changeState(accountID: command.accountID, to: .reauthRequired)
                        credentials.invalidate(command.accountID)
                        logger.error("klaviyo refused the account's API key; connection marked reauth_required")
                        return try await reject(
                            .reauthRequired, "Klaviyo refused the API key (\(error)); reconnect, then replay",
                            attempts: attempt, firstFailedAt: firstFailedAt)
                    }
                    return try await reject(
                        .klaviyoRejected, error.description, attempts: attempt, firstFailedAt: firstFailedAt)
                }
            }
        }
        if let pending = execution.pending {
            if let outcome = try await park(command, pending: pending, delivery: delivery, logger: logger) {
                return outcome
            }
            execution = CommandExecution(
                outcome: .failed, klaviyo: execution.klaviyo,
                failure: .init(
                    code: "job_timeout",
                    detail: "Klaviyo's job \(pending.state["job_id"]?.stringValue ?? "") did not finish within "
                        + "\(retryPolicy.maxRetryAge.roundedDescription) (RELAY_MAX_RETRY_AGE)"))
        }
        crashPoint?.trigger(.afterKlaviyoCall, commandID: command.id)
        return try await finish(
            command, execution: execution, attempts: attempt, delivery: delivery, started: started, logger: logger)
    }

    /// Moves a delivery to a retry tier: its copy (with attempts, first failure and last error) is confirmed by
    /// the broker before the original is acked, so a crash in between redelivers rather than loses it.
    /// The route back is the command's own type, never a header.
    func scheduleRetry(
        _ delivery: AMQPDelivery, type: CommandType, in tier: RelayTopology.RetryTier, attempts: Int,
        firstFailedAt: String, lastError: KlaviyoError
    ) async throws {
        let message = DelayedRetry.message(
            for: delivery, topology: topology, tier: tier, routingKey: type.rawValue, attempts: attempts,
            firstFailedAt: firstFailedAt, lastError: lastError.description, seal: seal)
        try await publish(message)
        try await acknowledge(delivery)
    }

    /// The rate limiter held a call back: park the command in the tier of the limiter's wait without counting
    /// an attempt (nothing reached Klaviyo), still bounded by `RELAY_MAX_RETRY_AGE`.
    func holdBack(
        _ command: CommandEnvelope, error: KlaviyoError, attemptsMade: Int, firstFailedAt: String,
        delivery: AMQPDelivery, logger: Logger
    ) async throws -> Outcome {
        let schedule = retryPolicy.scheduleHeldBack(
            wait: error.retryAfter ?? .seconds(1),
            firstFailedAtMilliseconds: Timestamp.parseMilliseconds(firstFailedAt) ?? Timestamp.nowMilliseconds(),
            nowMilliseconds: Timestamp.nowMilliseconds(), topology: topology)
        switch schedule {
        case .delay(let tier, let wanted):
            try await scheduleRetry(
                delivery, type: command.type, in: tier, attempts: attemptsMade, firstFailedAt: firstFailedAt,
                lastError: error)
            logger.info(
                "held back by the rate limiter; retry scheduled",
                metadata: [
                    LogKeys.attempt: "\(attemptsMade)", LogKeys.klaviyoOperation: "\(error.operationID)",
                    "retry_tier": "\(tier.name)", "retry_wanted_ms": "\(wanted.wholeMilliseconds)",
                ])
            return .retryScheduled
        case .giveUpExhausted(let reason):
            return try await deadLetter(
                delivery, code: .retriesExhausted, detail: "\(reason); last error: \(error)",
                attempts: max(attemptsMade, 1), firstFailedAt: firstFailedAt, commandID: command.id,
                accountID: command.accountID, type: command.type.rawValue, logger: logger)
        case .giveUpPermanent:
            // scheduleHeldBack never answers this; dead-letter with the reason rather than trap.
            return try await deadLetter(
                delivery, code: .retriesExhausted, detail: "held back by the rate limiter: \(error)",
                attempts: max(attemptsMade, 1), firstFailedAt: firstFailedAt, commandID: command.id,
                accountID: command.accountID, type: command.type.rawValue, logger: logger)
        }
    }

    /// Records the result, publishes it (confirmed), marks it published, then acks.
    func finish(
        _ command: CommandEnvelope, execution: CommandExecution, attempts attempt: Int, delivery: AMQPDelivery,
        started: ContinuousClock.Instant, logger: Logger
    ) async throws -> Outcome {
        let result = CommandResult(
            commandID: command.id, type: command.type.rawValue, accountID: command.accountID,
            outcome: execution.outcome, attempts: attempt, klaviyo: execution.klaviyo, error: execution.failure,
            completedAt: Timestamp.now(), durationMS: (ContinuousClock.now - started).wholeMilliseconds,
            traceparent: delivery.properties.headers["traceparent"]?.stringValue)
        let body = result.encoded()
        try await infrastructure("idempotency record", logger: logger) {
            try await idempotency.record(command, result: body)
        }
        crashPoint?.trigger(.afterResultRecorded, commandID: command.id)
        try await publishResult(body, routingKey: result.routingKey, commandID: command.id, delivery: delivery)
        do {
            try await idempotency.markPublished(command)
        } catch {
            logger.warning(
                "could not mark result published; a redelivery would publish it again",
                metadata: [LogKeys.errorDetail: "\(error)"])
        }
        crashPoint?.trigger(.afterResultPublished, commandID: command.id)
        try await acknowledge(delivery)
        logger.debug("command succeeded", metadata: [LogKeys.attempt: "\(attempt)"])
        return execution.outcome == .succeeded ? .succeeded : .failed
    }

    /// Records a running job and parks the command in the delay tier of its next poll, then acks. Returns nil
    /// (and parks nothing) when the job was submitted longer than `RELAY_MAX_RETRY_AGE` ago: it timed out.
    func park(
        _ command: CommandEnvelope, pending: PendingJob, delivery: AMQPDelivery, logger: Logger
    ) async throws
        -> Outcome?
    {
        if let submitted = pending.state["submitted_at"]?.stringValue.flatMap(Timestamp.parseMilliseconds),
            Timestamp.nowMilliseconds() - submitted > retryPolicy.maxRetryAge.wholeMilliseconds
        {
            return nil
        }
        let state = String(decoding: pending.state.jsonBytes(), as: UTF8.self)
        try await infrastructure("job record", logger: logger) {
            try await idempotency.recordJobState(command, state: state)
        }
        guard let tier = topology.retryTier(for: pending.pollAfter) else { return nil }
        let polls = Int(pending.state["polls"]?.jobInteger ?? 0)
        try await publish(
            DelayedRetry.pollMessage(
                for: delivery, topology: topology, tier: tier, routingKey: command.type.rawValue, polls: polls,
                seal: seal))
        try await acknowledge(delivery)
        logger.info(
            "klaviyo job running; poll scheduled",
            metadata: [
                "job_id": "\(pending.state["job_id"]?.stringValue ?? "")", "job_polls": "\(polls)",
                "retry_tier": "\(tier.name)",
            ])
        return .waitingForJob
    }

    /// Updates the account's sync status (`kr:{account}:sync`) with a finished command. Accounts that are not
    /// connected get no entry (no keys for unknown accounts); failures to record are logged, never fatal.
    func recordSync(_ command: CommandEnvelope, outcome: Outcome, logger: Logger) async {
        guard let syncStatus else { return }
        let succeeded: Bool
        let detail: String
        switch outcome {
        case .succeeded:
            (succeeded, detail) = (true, "")
        case .failed:
            (succeeded, detail) = (false, "failed: \(command.type.rawValue) \(command.id)")
        // Not connected, or a publisher's id reused for another command: nothing of this account was synced.
        case .deadLettered(let code) where code != .notConnected && code != .idConflict:
            (succeeded, detail) = (false, "\(code.rawValue): \(command.type.rawValue) \(command.id)")
        default:
            return
        }
        do {
            try await syncStatus.record(
                accountID: command.accountID, succeeded: succeeded, type: command.type.rawValue, commandID: command.id,
                detail: detail)
        } catch {
            logger.debug("could not record sync status", metadata: [LogKeys.errorDetail: "\(error)"])
        }
    }

    /// A command that was already done: a redelivery whose result is out is just acked; a new copy (double
    /// publish, replay) gets the stored result again so its publisher hears back.
    func finishDuplicate(
        _ command: CommandEnvelope, record: IdempotencyStore.Record, delivery: AMQPDelivery, logger: Logger
    ) async throws -> Outcome {
        if !(record.published && delivery.redelivered) {
            let routingKey: String
            if let stored = try? JSONValue.parse(record.result), let outcome = stored["outcome"]?.stringValue {
                routingKey = "\(command.type.rawValue).\(outcome)"
            } else {
                routingKey = "\(command.type.rawValue).succeeded"
            }
            try await publishResult(record.result, routingKey: routingKey, commandID: command.id, delivery: delivery)
            if !record.published { try? await idempotency.markPublished(command) }
        }
        try await acknowledge(delivery)
        logger.info(
            "duplicate command: not sent to Klaviyo again", metadata: ["redelivered": "\(delivery.redelivered)"])
        return .duplicate
    }

    func publishResult(_ body: [UInt8], routingKey: String, commandID: String, delivery: AMQPDelivery) async throws {
        var properties = AMQPProperties()
        properties.contentType = "application/json"
        properties.persistent = true
        properties.messageID = commandID
        properties.correlationID = delivery.properties.correlationID ?? commandID
        properties.timestamp = UInt64(Timestamp.nowSeconds())
        properties.appID = ProcessIdentity.appID
        if let traceparent = delivery.properties.headers["traceparent"] {
            properties.headers["traceparent"] = traceparent
        }
        try await publish(
            AMQPMessage(exchange: topology.resultsExchange, routingKey: routingKey, body: body, properties: properties))
        if let replyTo = delivery.properties.replyTo, !replyTo.isEmpty {
            try await publish(AMQPMessage(exchange: "", routingKey: replyTo, body: body, properties: properties))
        }
    }

    func deadLetter(
        _ delivery: AMQPDelivery, code: DeadLetterCode, detail: String, attempts: Int, firstFailedAt: String?,
        commandID: String?, accountID: String?, type: String?, logger: Logger
    ) async throws -> Outcome {
        let message = DeadLetter.message(
            for: delivery, topology: topology, code: code, detail: detail, attempts: attempts,
            firstFailedAt: firstFailedAt, commandID: commandID, accountID: accountID, type: type, seal: seal)
        try await publish(message)
        try await acknowledge(delivery)
        logger.warning(
            "command dead-lettered",
            metadata: [LogKeys.errorCode: "\(code.rawValue)", LogKeys.errorDetail: "\(detail)"])
        Counter(label: "relay_dead_letters_total", dimensions: [("code", code.rawValue)]).increment()
        return .deadLettered(code)
    }

    /// Publishes with confirms; a lost connection hands the delivery back (it will be redelivered).
    func publish(_ message: AMQPMessage) async throws {
        var backoff = Duration.milliseconds(50)
        while true {
            do {
                try await amqp.publish(message)
                return
            } catch let error as AMQPError
                where error.code == .connectionLost || error.code == .notConnected || error.code == .shutdown
            {
                throw HandBack()
            } catch let error as AMQPError where error.isRetriable {
                try await pause(&backoff)
            }
        }
    }

    func acknowledge(_ delivery: AMQPDelivery) async throws {
        do {
            try await amqp.ack(delivery)
        } catch {
            // A stale delivery (the connection was replaced) is redelivered by the broker; the done marker
            // makes the redelivery a silent ack.
            throw HandBack()
        }
    }

    /// Runs a Redis step, retrying transient failures with backoff until it works or the task is cancelled.
    func infrastructure<T: Sendable>(
        _ step: String, logger: Logger, _ operation: () async throws -> T
    ) async throws -> T {
        var backoff = Duration.milliseconds(50)
        var attempts = 0
        while true {
            do {
                return try await operation()
            } catch {
                attempts += 1
                if attempts == 1 || attempts % 20 == 0 {
                    logger.warning("\(step) failed; retrying", metadata: [LogKeys.errorDetail: "\(error)"])
                }
                if attempts >= 100 { throw HandBack() }
                try await pause(&backoff)
            }
        }
    }

    func pause(_ backoff: inout Duration) async throws {
        do {
            try await Task.sleep(for: backoff * Double.random(in: 0.5...1.0))
        } catch {
            throw HandBack()
        }
        backoff = min(backoff * 2, .seconds(2))
    }
}

extension CommandProcessor.Outcome {
    var metricLabel: String {
        switch self {
        case .succeeded: return "succeeded"
        case .failed: return "failed"
        case .deadLettered: return "dead_lettered"
        case .duplicate: return "duplicate"
        case .handedBack: return "handed_back"
        case .retryScheduled: return "retry_scheduled"
        case .waitingForJob: return "waiting_for_job"
        }
    }
}

extension Duration {
    /// Whole milliseconds, saturating at `Int64.max`/`.min` (never traps, whatever the duration).
    var wholeMilliseconds: Int64 {
        let (scaled, overflow) = components.seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return components.seconds < 0 ? .min : .max }
        let (sum, carry) = scaled.addingReportingOverflow(components.attoseconds / 1_000_000_000_000_000)
        return carry ? (scaled < 0 ? .min : .max) : sum
    }

    /// Whole nanoseconds, saturating at `Int64.max`/`.min`.
    var nanoseconds: Int64 {
        let (scaled, overflow) = components.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return components.seconds < 0 ? .min : .max }
        let (sum, carry) = scaled.addingReportingOverflow(components.attoseconds / 1_000_000_000)
        return carry ? (scaled < 0 ? .min : .max) : sum
    }
}
