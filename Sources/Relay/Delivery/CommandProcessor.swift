public import AMQP
import Klaviyo
public import Logging

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

    /// What the processor works with.
    let dependencies: Dependencies
    /// Seals the relay's own retry headers, so a publisher's `x-relay-*` on a fresh command steer nothing.
    let seal: HeaderSeal

    var amqp: AMQPClient { dependencies.amqp }
    var topology: RelayTopology { dependencies.topology }
    var decoder: CommandDecoder { dependencies.decoder }
    var idempotency: IdempotencyStore { dependencies.idempotency }
    var credentials: CredentialCache { dependencies.credentials }
    var credentialStore: CredentialStore { dependencies.credentialStore }
    var executor: CommandExecutor { dependencies.executor }
    var retryPolicy: RetryPolicy { dependencies.retryPolicy }
    var replyTo: ReplyToPolicy { dependencies.replyTo }
    var crashPoint: CrashPoint? { dependencies.crashPoint }
    var tokenManager: TokenManager? { dependencies.tokenManager }
    var syncStatus: SyncStatusBuffer? { dependencies.syncStatus }
    var lifecycle: ConnectionLifecycle? { dependencies.lifecycle }
    var rateLimiter: RateLimiter? { dependencies.rateLimiter }
    var logger: Logger { dependencies.logger }

    /// Creates a processor.
    public init(_ dependencies: Dependencies) {
        self.dependencies = dependencies
        self.seal = HeaderSeal(keyRing: dependencies.credentialStore.keys)
    }

    /// Creates a processor from its parts (the same as ``init(_:)`` with a ``Dependencies``).
    public init(
        amqp: AMQPClient, topology: RelayTopology, decoder: CommandDecoder, idempotency: IdempotencyStore,
        credentials: CredentialCache, credentialStore: CredentialStore, executor: CommandExecutor,
        retryPolicy: RetryPolicy, crashPoint: CrashPoint?, logger: Logger, tokenManager: TokenManager? = nil,
        syncStatus: SyncStatusBuffer? = nil, lifecycle: ConnectionLifecycle? = nil, rateLimiter: RateLimiter? = nil,
        replyTo: ReplyToPolicy = .default
    ) {
        self.init(
            Dependencies(
                amqp: amqp, topology: topology, decoder: decoder, idempotency: idempotency, credentials: credentials,
                credentialStore: credentialStore, executor: executor, retryPolicy: retryPolicy, logger: logger,
                replyTo: replyTo, crashPoint: crashPoint, tokenManager: tokenManager, syncStatus: syncStatus,
                lifecycle: lifecycle, rateLimiter: rateLimiter))
    }

    /// Raised inside processing when the delivery cannot be finished now (shutdown, broker lost).
    struct HandBack: Error {}

    /// Processes one delivery.
    public func process(_ delivery: AMQPDelivery) async -> Outcome {
        let started = ContinuousClock.now
        var logger = self.logger
        if let traceparent = delivery.properties.headers["traceparent"]?.stringValue {
            logger.addMetadata([LogKeys.queue: .string(delivery.queue), LogKeys.traceparent: .string(traceparent)])
        } else {
            logger[metadataKey: LogKeys.queue] = .string(delivery.queue)
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
        RelayMetrics.commandFinished(
            type: typeLabel, outcome: outcome.metricLabel, after: ContinuousClock.now - started)
        return outcome
    }

    /// A message the commands exchange could not route (its alternate exchange caught it): a dead letter
    /// `unroutable`, with whatever ids the body names for ops. Nothing is sent to Klaviyo.
    func deadLetterUnroutable(_ delivery: AMQPDelivery, logger: inout Logger) async throws -> Outcome {
        let (commandID, accountID, type): (String?, String?, String?)
        switch decode(delivery) {
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
            switch decode(delivery) {
            case .failure(let rejection):
                if let id = rejection.commandID { logger[metadataKey: LogKeys.commandID] = "\(id)" }
                if let account = rejection.accountID { logger[metadataKey: LogKeys.accountID] = "\(account)" }
                if let type = rejection.type { logger[metadataKey: LogKeys.type] = "\(type)" }
                outcome = try await deadLetter(
                    delivery, code: rejection.code, detail: rejection.detail, attempts: 1, firstFailedAt: nil,
                    commandID: rejection.commandID, accountID: rejection.accountID, type: rejection.type, logger: logger
                )
            case .success(let command):
                // The strings themselves (an interpolation would copy each one).
                logger.addMetadata([
                    LogKeys.commandID: .string(command.id), LogKeys.accountID: .string(command.accountID),
                    LogKeys.type: .string(command.type.rawValue),
                ])
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
                recordSync(command, outcome: outcome)
            }
        }
        return outcome
    }

    /// A decoded command: admitted (idempotency, type, connection, credential), called, decided, and the
    /// decision performed. Each step returns the next ``Action``; ``perform(_:_:)`` runs it, and the loop ends
    /// with the first action that finishes the delivery.
    func process(
        _ command: CommandEnvelope, delivery: AMQPDelivery, started: ContinuousClock.Instant, logger: Logger
    ) async throws -> Outcome {
        var run = Run(command: command, delivery: delivery, seal: seal, started: started, logger: logger)
        do {
            var action = try await admit(&run)
            while true {
                switch try await perform(action, &run) {
                case .next(let next): action = next
                case .finished(let outcome): return outcome
                }
            }
        } catch let unavailable as ShardUnavailable {
            return try await parkWhileShardUnavailable(run, unavailable)
        }
    }

    /// Adds a finished command to the account's sync status (`kr:{account}:sync`, written by the buffer within
    /// its interval). Accounts that are not connected get no entry (no keys for unknown accounts).
    func recordSync(_ command: CommandEnvelope, outcome: Outcome) {
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
        syncStatus.add(
            accountID: command.accountID, succeeded: succeeded, type: command.type.rawValue, commandID: command.id,
            detail: detail, items: command.syncedItems)
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
