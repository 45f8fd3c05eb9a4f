import AMQP
import Klaviyo
import Logging
import Redis
import Tracing

extension CommandProcessor {
    /// Runs one action: the only place where the processor's decisions take effect (publish, ack, Redis
    /// writes, logs). `.call`, `.refreshAndRetry` and `.disconnect` lead to the next action; every other action
    /// finishes the delivery.
    ///
    /// The steps it runs are never inlined into it: an async function's frame holds the locals of everything
    /// inlined into it, and inlined they made this frame 14.7 kB (now 5.3 kB), allocated for every command
    /// although each action runs one step.
    func perform(_ action: Action, _ run: inout Run) async throws -> Step {
        switch action {
        case .call:
            return .next(await call(&run))
        case .refreshAndRetry:
            return .next(try await refresh(&run))
        case .disconnect(let reason):
            return .next(try await disconnect(reason: reason, &run))
        case .retry(let tier, let wanted, let attempts, let firstFailedAt, let error):
            try await retryLater(
                run, in: tier, wanted: wanted, attempts: attempts, firstFailedAt: firstFailedAt, error: error,
                heldBack: false)
            return .finished(.retryScheduled)
        case .holdBack(let tier, let wanted, let attemptsMade, let firstFailedAt, let error):
            try await retryLater(
                run, in: tier, wanted: wanted, attempts: attemptsMade, firstFailedAt: firstFailedAt, error: error,
                heldBack: true)
            return .finished(.retryScheduled)
        case .handBack(let reason, let error):
            run.logger.warning("\(reason)", metadata: [LogKeys.errorDetail: "\(error)"])
            throw HandBack()
        case .deadLetter(let code, let detail, let attempts, let firstFailedAt):
            return .finished(
                try await deadLetter(
                    run.delivery, code: code, detail: detail, attempts: attempts, firstFailedAt: firstFailedAt,
                    commandID: run.command.id, accountID: run.command.accountID, type: run.command.type.rawValue,
                    marking: code == .idConflict ? nil : run.command, logger: run.logger))
        case .alreadyDeadLettered(let code):
            try await acknowledge(run.delivery)
            run.logger.info(
                "command already dead-lettered: this copy is acked, nothing else",
                metadata: [LogKeys.errorCode: "\(code)"])
            return .finished(.duplicate)
        case .reauthRequired(let detail, let attempts, let firstFailedAt):
            return .finished(
                try await reauthRequired(run, detail: detail, attempts: attempts, firstFailedAt: firstFailedAt))
        case .publishResult(let execution, let attempts):
            if run.calledKlaviyo {
                crashPoint?.trigger(.afterKlaviyoCall, commandID: run.command.id)
                if run.delivery.localSettlement != nil {
                    crashPoint?.trigger(.unpackedAfterKlaviyoCall, commandID: run.command.id)
                }
            }
            return .finished(
                try await finish(
                    run.command, execution: execution, attempts: attempts, delivery: run.delivery,
                    started: run.started, logger: run.logger))
        case .park(let pending, let tier):
            return .finished(
                try await park(run.command, pending: pending, tier: tier, delivery: run.delivery, logger: run.logger))
        case .duplicate(let record):
            return .finished(
                try await finishDuplicate(run.command, record: record, delivery: run.delivery, logger: run.logger))
        }
    }

    /// `.retry` (a failed call: the attempt counts) and `.holdBack` (held back by the relay's rate limiter, with the
    /// slot it reserved): the delivery moves to `tier`, then the log line and the metric.
    @inline(never)  // ``perform(_:_:)``: see there
    func retryLater(
        _ run: Run, in tier: RelayTopology.RetryTier, wanted: Duration, attempts: Int, firstFailedAt: String,
        error: KlaviyoError, heldBack: Bool
    ) async throws {
        try await scheduleRetry(
            run.delivery, type: run.command.type, in: tier, attempts: attempts, firstFailedAt: firstFailedAt,
            lastError: error, slot: heldBack ? run.slot.reservation : nil)
        if heldBack {
            RelayMetrics.retryScheduled(tier: tier.name, reason: .heldBack)
            run.logger.info(
                "held back by the rate limiter; retry scheduled",
                metadata: [
                    LogKeys.attempt: "\(attempts)", LogKeys.klaviyoOperation: "\(error.operationID)",
                    "retry_tier": "\(tier.name)", "retry_wanted_ms": "\(wanted.wholeMilliseconds)",
                ])
        } else {
            RelayMetrics.retryScheduled(tier: tier.name, reason: .failure)
            run.logger.warning(
                "klaviyo call failed; retry scheduled",
                metadata: [
                    LogKeys.attempt: "\(attempts)", LogKeys.errorDetail: "\(error)", "retry_tier": "\(tier.name)",
                    "retry_wanted_ms": "\(wanted.wholeMilliseconds)",
                ])
        }
    }

    /// `.reauthRequired`: the account's connection is marked `reauth_required` (every command of the account would
    /// fail the same way), then the command is dead-lettered. The change is fenced by the version of the connection
    /// whose key was refused: if the customer connected again meanwhile (a new key; the old one deleted in
    /// Klaviyo), the command is handed back to run with the new key, and the new connection is left alone. (An
    /// unfenced change used to delete a freshly connected key because of a batch still holding the old one.) The
    /// process that made the change publishes `connection.reauth_required`.
    @inline(never)  // ``perform(_:_:)``: see there
    func reauthRequired(_ run: Run, detail: String, attempts: Int, firstFailedAt: String) async throws -> Outcome {
        let command = run.command
        credentials.invalidate(command.accountID)
        if let used = run.connection {
            let changed = try await infrastructure("reauth_required mark", logger: run.logger) {
                try await credentialStore.markReauthRequired(
                    accountID: command.accountID, expectedVersion: used.version, marker: PKCE.randomToken())
            }
            if changed {
                run.logger.error("klaviyo refused the account's API key; connection marked reauth_required")
                await lifecycle?.announce(
                    ConnectionEvent(
                        accountID: command.accountID, state: .reauthRequired,
                        reason: "Klaviyo refused the private API key (HTTP 401)"))
            } else if let current = try? await credentialStore.load(accountID: command.accountID),
                current.state == .connected, current.version != used.version
            {
                run.logger.warning(
                    "klaviyo refused a key the account has since replaced; running the command again with the new one")
                throw HandBack()
            }
        }
        return try await deadLetter(
            run.delivery, code: .reauthRequired, detail: detail, attempts: attempts, firstFailedAt: firstFailedAt,
            commandID: command.id, accountID: command.accountID, type: command.type.rawValue, marking: command,
            logger: run.logger)
    }

    /// Moves a delivery to a retry tier: its copy (with attempts, first failure and last error) is confirmed by
    /// the broker before the original is acked, so a crash in between redelivers rather than loses it.
    /// The route back is the command's own type, never a header.
    @inline(never)  // ``perform(_:_:)``: see there
    func scheduleRetry(
        _ delivery: AMQPDelivery, type: CommandType, in tier: RelayTopology.RetryTier, attempts: Int,
        firstFailedAt: String, lastError: KlaviyoError, slot: RateLimiter.Reservation? = nil
    ) async throws {
        let message = DelayedRetry.message(
            for: delivery, topology: topology, tier: tier, routingKey: type.rawValue, attempts: attempts,
            firstFailedAt: firstFailedAt, lastError: lastError.description, slot: slot?.description, seal: seal)
        try await publish(message)
        try await acknowledge(delivery)
    }

    /// Records the result, publishes it (confirmed), marks it published, then acks.
    @inline(never)  // ``perform(_:_:)``: see there
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
        // The mark rides along with the next command's Redis round trip (IdempotencyStore); the ack need not wait
        // for it: a redelivery that finds no mark publishes the result again, which publishers deduplicate.
        crashPoint?.trigger(.afterResultPublishedBeforeMark, commandID: command.id)
        idempotency.markPublishedSoon(command)
        if let crashPoint, crashPoint.stage == .afterResultPublished {
            // The crash point is defined after the mark: write it before dying.
            try? await idempotency.flushMarks()
            crashPoint.trigger(.afterResultPublished, commandID: command.id)
        }
        try await acknowledge(delivery)
        logger.debug("command succeeded", metadata: [LogKeys.attempt: "\(attempt)"])
        return execution.outcome == .succeeded ? .succeeded : .failed
    }

    /// Records a running job and parks the command in the delay tier of its next poll, then acks.
    @inline(never)  // ``perform(_:_:)``: see there
    func park(
        _ command: CommandEnvelope, pending: PendingJob, tier: RelayTopology.RetryTier, delivery: AMQPDelivery,
        logger: Logger
    ) async throws -> Outcome {
        let state = String(decoding: pending.state.jsonBytes(), as: UTF8.self)
        try await infrastructure("job record", logger: logger) {
            try await idempotency.recordJobState(command, state: state)
        }
        let polls = Int(pending.state["polls"]?.jobInteger ?? 0)
        try await publish(
            DelayedRetry.pollMessage(
                for: delivery, topology: topology, tier: tier, routingKey: command.type.rawValue, polls: polls,
                seal: seal))
        RelayMetrics.retryScheduled(tier: tier.name, reason: .jobPoll)
        try await acknowledge(delivery)
        logger.info(
            "klaviyo job running; poll scheduled",
            metadata: [
                "job_id": "\(pending.state["job_id"]?.stringValue ?? "")", "job_polls": "\(polls)",
                "retry_tier": "\(tier.name)",
            ])
        return .waitingForJob
    }

    /// A command that was already done: a redelivery whose result is out is just acked; a new copy (double
    /// publish, replay) gets the stored result again so its publisher hears back.
    @inline(never)  // ``perform(_:_:)``: see there
    func finishDuplicate(
        _ command: CommandEnvelope, record: IdempotencyStore.Record, delivery: AMQPDelivery, logger: Logger
    ) async throws -> Outcome {
        // A member of a bundle that was delivered again counts as redelivered (sealed `x-relay-redelivered`).
        let redelivered =
            delivery.redelivered || seal.trustedHeaders(of: delivery)[DeliveryBundle.redeliveredHeader] != nil
        if !(record.published && redelivered) {
            let routingKey: String
            if let stored = try? JSONValue.parse(record.result), let outcome = stored["outcome"]?.stringValue {
                routingKey = "\(command.type.rawValue).\(outcome)"
            } else {
                routingKey = "\(command.type.rawValue).succeeded"
            }
            try await publishResult(record.result, routingKey: routingKey, commandID: command.id, delivery: delivery)
            if !record.published { idempotency.markPublishedSoon(command) }
        }
        try await acknowledge(delivery)
        logger.info(
            "duplicate command: not sent to Klaviyo again", metadata: ["redelivered": "\(redelivered)"])
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
            // The copy to the publisher's reply queue is a convenience: once the result is on klaviyo.results,
            // a reply queue that keeps refusing it (full, reject-publish) must not hand the command back again
            // and again until the broker dead-letters it (a result and a dead letter for one command).
            do {
                try await publish(AMQPMessage(exchange: "", routingKey: replyTo, body: body, properties: properties))
            } catch let refused as PublishRefused {
                logger.warning(
                    "reply_to copy of the result refused; the result is on the results exchange",
                    metadata: [
                        LogKeys.commandID: "\(commandID)", LogKeys.errorDetail: "\(refused.error)",
                        "reply_to": "\(replyTo.prefix(255))",
                    ])
            }
        }
    }

    /// Publishes the dead letter (confirmed), marks `marking` as dead-lettered (best effort: ``IdempotencyStore/
    /// recordDeadLettered(_:code:flow:)``), then acks.
    @inline(never)  // ``perform(_:_:)``: see there
    func deadLetter(
        _ delivery: AMQPDelivery, code: DeadLetterCode, detail: String, attempts: Int, firstFailedAt: String?,
        commandID: String?, accountID: String?, type: String?, marking command: CommandEnvelope? = nil,
        logger: Logger
    ) async throws -> Outcome {
        let message = DeadLetter.message(
            for: delivery, topology: topology, code: code, detail: detail, attempts: attempts,
            firstFailedAt: firstFailedAt, commandID: commandID, accountID: accountID, type: type, seal: seal)
        try await publish(message)
        if let command {
            do {
                try await idempotency.recordDeadLettered(
                    command, code: code, flow: DeadLetterQueue.flow(of: delivery))
            } catch {
                logger.warning(
                    "could not mark the command dead-lettered", metadata: [LogKeys.errorDetail: "\(error)"])
            }
        }
        try await acknowledge(delivery)
        logger.warning(
            "command dead-lettered",
            metadata: [LogKeys.errorCode: "\(code.rawValue)", LogKeys.errorDetail: "\(detail)"])
        RelayMetrics.deadLettered(code)
        return .deadLettered(code)
    }

    /// Publishes with confirms; a lost connection hands the delivery back (it will be redelivered), and so do
    /// ``maxPublishAttempts`` retriable failures in a row (a publish the broker keeps refusing must not hold the
    /// delivery, and keep closing the publish channel under every other command's confirms, forever).
    func publish(_ message: AMQPMessage) async throws {
        var backoff = Duration.milliseconds(50)
        var attempts = 0
        let kind = RelayMetrics.publishKind(exchange: message.exchange, topology: topology)
        while true {
            do {
                let started = ContinuousClock.now
                try await CommandTracing.withSpan(
                    "relay.publish",
                    annotate: { _, span in
                        span.attributes[CommandTracing.Attribute.publishKind] = kind.rawValue
                        span.attributes[CommandTracing.Attribute.routingKey] = message.routingKey
                    },
                    { try await amqp.publish(message) })
                RelayMetrics.published(kind, confirmedAfter: ContinuousClock.now - started)
                return
            } catch let error as AMQPError
                where error.code == .connectionLost || error.code == .notConnected || error.code == .shutdown
            {
                throw HandBack()
            } catch let error as AMQPError where error.isRetriable {
                attempts += 1
                if attempts >= Self.maxPublishAttempts {
                    logger.error(
                        "publish refused \(attempts) times; the delivery is handed back",
                        metadata: [LogKeys.errorDetail: "\(error)", "amqp.exchange": "\(message.exchange)"])
                    throw PublishRefused(error: error)
                }
                try await pause(&backoff)
            }
        }
    }

    /// Retriable publish failures in a row before the delivery is handed back (about half a minute of backoff).
    static let maxPublishAttempts = 20

    /// A publish the broker refused ``maxPublishAttempts`` times in a row (the delivery is handed back).
    struct PublishRefused: Error {
        let error: AMQPError
    }

    /// Acks a delivery whose outcome the broker has already confirmed (result, dead letter or parked copy). The
    /// ack is queued, not awaited: an ack that cannot be written (the connection was replaced) leaves the delivery
    /// to be redelivered, and the done marker or the sealed attempt count makes the redelivery harmless.
    func acknowledge(_ delivery: AMQPDelivery) async throws {
        do {
            try amqp.ackSoon(delivery)
        } catch {
            throw HandBack()
        }
    }

    /// Runs a Redis step, retrying transient failures with backoff until it works or the task is cancelled. A Redis
    /// Cluster slot the client could not get served within its retry timeout (its primary down with no replica to
    /// take over: the account's shard is out) is not retried here: ``ShardUnavailable`` parks the command
    /// (``parkWhileShardUnavailable(_:_:)``), so the account's commands do not hold consumer slots the accounts of
    /// the other shards need.
    func infrastructure<T: Sendable>(
        _ step: String, logger: Logger, _ operation: () async throws -> T
    ) async throws -> T {
        var backoff = Duration.milliseconds(50)
        var attempts = 0
        while true {
            do {
                return try await operation()
            } catch let error as RedisError where error.code == .clusterUnavailable {
                throw ShardUnavailable(step: step, error: error)
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

    /// A Redis step failed because the Redis Cluster did not serve its slot (``infrastructure(_:logger:_:)``).
    struct ShardUnavailable: Error {
        let step: String
        let error: RedisError
    }

    /// How long a command whose account's Redis shard is down waits before it is tried again (the tier at least
    /// this long).
    static let shardUnavailableDelay = Duration.seconds(5)

    /// A command whose account's Redis Cluster shard is down: parked in a retry tier (``shardUnavailableDelay``)
    /// without counting an attempt, as a hold-back is, so its consumer slot is free for the accounts of the other
    /// shards at once; it comes back and runs when the shard is back. Handed back instead (requeued after 1 s, the
    /// way of every other Redis failure) once Klaviyo was called in this delivery (the redelivery then knows the
    /// call may have been made), or when the command's first failure is older than `RELAY_MAX_RETRY_AGE`.
    func parkWhileShardUnavailable(_ run: Run, _ unavailable: ShardUnavailable) async throws -> Outcome {
        let nowMilliseconds = Timestamp.nowMilliseconds()
        let firstFailedAt = run.previous.firstFailedAt ?? Timestamp.now()
        let age = RetryPolicy.age(
            firstFailedAtMilliseconds: Timestamp.parseMilliseconds(firstFailedAt) ?? nowMilliseconds,
            nowMilliseconds: nowMilliseconds)
        guard !run.calledKlaviyo, age < retryPolicy.maxRetryAge,
            let tier = topology.retryTier(for: Self.shardUnavailableDelay) ?? topology.retryTiers.last
        else {
            run.logger.warning(
                "\(unavailable.step) failed: Redis Cluster slot unavailable; handing the command back",
                metadata: [LogKeys.errorDetail: "\(unavailable.error)"])
            throw HandBack()
        }
        // A delivery that may be a copy of one that reached Klaviyo keeps saying so when it comes back.
        let attempts = max(run.previous.attempts, run.delivery.redelivered || run.bundleRedelivered ? 1 : 0)
        let message = DelayedRetry.message(
            for: run.delivery, topology: topology, tier: tier, routingKey: run.command.type.rawValue,
            attempts: attempts, firstFailedAt: firstFailedAt,
            lastError: "\(unavailable.step): \(unavailable.error)", slot: run.slot.reservation?.description, seal: seal)
        try await publish(message)
        try await acknowledge(run.delivery)
        RelayMetrics.retryScheduled(tier: tier.name, reason: .redisUnavailable)
        run.logger.warning(
            "\(unavailable.step) failed: the account's Redis Cluster shard is unavailable; retry scheduled",
            metadata: [LogKeys.errorDetail: "\(unavailable.error)", "retry_tier": "\(tier.name)"])
        return .retryScheduled
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

extension RedisError {
    /// Whether `error` is a Redis Cluster slot its client could not get served within the retry timeout (its primary
    /// down with no replica to take over: the shard is out), not a transient failure worth retrying in place. The
    /// processor parks such a command (``CommandProcessor/ShardUnavailable``); the rate limiter's gate and the
    /// coalescer's scripts give up at once and hand the command back.
    static func isShardDown(_ error: any Error) -> Bool {
        (error as? RedisError)?.code == .clusterUnavailable
    }
}
