import Klaviyo

/// The processor's decisions: pure functions from what happened (a lookup, a connection, a Klaviyo answer or
/// error, the attempts so far) to the next ``CommandProcessor/Action``. Nothing here touches the network.
extension CommandProcessor {
    /// After the idempotency lookup: nil for a fresh command, else a duplicate or an id conflict. A command
    /// already dead-lettered is a duplicate when this delivery may be a copy of the delivery that was
    /// (`mayBeACopy`: redelivered, or a copy the relay sealed; and of the same `flow`, see
    /// ``DeadLetterQueue/replayHeader``); a fresh delivery of it, or any delivery of a later replay, runs again.
    static func afterLookup(_ lookup: IdempotencyStore.Lookup, mayBeACopy: Bool = false, flow: String = "") -> Action? {
        switch lookup {
        case .fresh:
            return nil
        case .deadLettered(let code, let deadFlow):
            return mayBeACopy && deadFlow == flow ? .alreadyDeadLettered(code: code) : nil
        case .done(let record):
            return .duplicate(record)
        case .conflict(let detail):
            // Nothing of the other command is revealed, and this one is not executed.
            return .deadLetter(code: .idConflict, detail: detail, attempts: 1, firstFailedAt: nil)
        }
    }

    /// Before any credential: a type this version does not handle is dead-lettered, `connection.disconnect`
    /// goes to the connection lifecycle; nil for every other command. `attempts` counts earlier deliveries.
    static func route(_ command: CommandEnvelope, attempts: Int) -> Action? {
        switch command.payload {
        case .unsupported:
            return .deadLetter(
                code: .unsupportedType,
                detail: "command type \(command.type.rawValue) is not handled by this relay version yet",
                attempts: attempts, firstFailedAt: nil)
        case .connectionDisconnect(let reason):
            return .disconnect(reason: reason ?? "connection.disconnect command \(command.id)")
        default:
            return nil
        }
    }

    /// Whether the account's stored connection (nil: none) admits a command.
    static func admission(of connection: ConnectionRecord?, accountID: String, attempts: Int) -> Admission {
        func refuse(_ code: DeadLetterCode, _ detail: String) -> Admission {
            .refused(.deadLetter(code: code, detail: detail, attempts: attempts, firstFailedAt: nil))
        }
        guard let connection else { return refuse(.notConnected, "account \(accountID) has no Klaviyo connection") }
        switch connection.state {
        case .reauthRequired:
            return refuse(.reauthRequired, "account \(accountID) must reconnect Klaviyo; replay after it has")
        case .disconnected:
            return refuse(.notConnected, "account \(accountID) disconnected Klaviyo")
        case .connected:
            return .admitted(connection)
        }
    }

    /// After a failed Klaviyo call: hand back (limiter unreachable), hold back (limiter said wait), refresh an
    /// OAuth token once after a 401, retry in a tier, or dead-letter (`retries_exhausted`, `reauth_required`
    /// for a refused API key, `klaviyo_rejected`). `random` is injected so tests are deterministic.
    /// `reserved`: the limiter reserved a slot for a held-back call (the command carries it).
    static func afterFailure(
        _ error: KlaviyoError, of attempt: Attempt, policy: RetryPolicy, topology: RelayTopology,
        nowMilliseconds: Int64, reserved: Bool = false, random: () -> Double = { Double.random(in: 0..<1) }
    ) -> Action {
        let firstFailedAtMilliseconds = Timestamp.parseMilliseconds(attempt.firstFailedAt) ?? nowMilliseconds
        if error.code == .gateUnavailable {
            // The limiter's Redis stayed unreachable (or shutdown cancelled the wait): like any other Redis
            // step, hand the delivery back; nothing was sent.
            return .handBack(reason: "rate limiter unavailable", error: error)
        }
        if error.code == .heldBack {
            let attemptsMade = attempt.number - 1
            switch policy.scheduleHeldBack(
                wait: error.retryAfter ?? .seconds(1), reserved: reserved,
                firstFailedAtMilliseconds: firstFailedAtMilliseconds,
                nowMilliseconds: nowMilliseconds, topology: topology, random: random)
            {
            case .delay(let tier, let wanted):
                return .holdBack(
                    tier: tier, wanted: wanted, attemptsMade: attemptsMade, firstFailedAt: attempt.firstFailedAt,
                    lastError: error)
            case .giveUpExhausted(let reason):
                return .deadLetter(
                    code: .retriesExhausted, detail: "\(reason); last error: \(error)", attempts: max(attemptsMade, 1),
                    firstFailedAt: attempt.firstFailedAt)
            case .giveUpPermanent:
                // scheduleHeldBack never answers this; dead-letter with the reason rather than trap.
                return .deadLetter(
                    code: .retriesExhausted, detail: "held back by the rate limiter: \(error)",
                    attempts: max(attemptsMade, 1), firstFailedAt: attempt.firstFailedAt)
            }
        }
        if error.retryDecision == .refreshCredential, !attempt.refreshed, attempt.canRefresh {
            // 401 on an OAuth token: one (single-flight) refresh, then one retry of the call.
            return .refreshAndRetry
        }
        switch policy.schedule(
            after: error, attempt: attempt.number, isIdempotent: attempt.isIdempotent,
            firstFailedAtMilliseconds: firstFailedAtMilliseconds, nowMilliseconds: nowMilliseconds,
            topology: topology, random: random)
        {
        case .delay(let tier, let wanted):
            return .retry(
                tier: tier, wanted: wanted, attempts: attempt.number, firstFailedAt: attempt.firstFailedAt,
                lastError: error)
        case .giveUpExhausted(let reason):
            return .deadLetter(
                code: .retriesExhausted, detail: "\(reason); last error: \(error)", attempts: attempt.number,
                firstFailedAt: attempt.firstFailedAt)
        case .giveUpPermanent:
            if error.code == .unauthorized && !attempt.usedOAuth {
                // The private key was deleted or revoked in Klaviyo: every command of this account would fail
                // the same way until the customer connects again.
                return .reauthRequired(
                    detail: "Klaviyo refused the API key (\(error)); reconnect, then replay", attempts: attempt.number,
                    firstFailedAt: attempt.firstFailedAt)
            }
            return .deadLetter(
                code: .klaviyoRejected, detail: error.description, attempts: attempt.number,
                firstFailedAt: attempt.firstFailedAt)
        }
    }

    /// After Klaviyo answered: publish the result, or park a running job until its next poll. A job submitted
    /// longer than ``RetryPolicy/maxRetryAge`` ago (or with no retry tier to poll from) ends as a `failed`
    /// result `job_timeout`.
    static func afterExecution(
        _ execution: CommandExecution, attempts: Int, policy: RetryPolicy, topology: RelayTopology,
        nowMilliseconds: Int64
    ) -> Action {
        guard let pending = execution.pending else { return .publishResult(execution, attempts: attempts) }
        let submitted = pending.state["submitted_at"]?.stringValue.flatMap(Timestamp.parseMilliseconds)
        if let submitted, Clamp.difference(nowMilliseconds, submitted) > policy.maxRetryAge.wholeMilliseconds {
            return .publishResult(timedOut(execution, pending: pending, policy: policy), attempts: attempts)
        }
        guard let tier = topology.retryTier(for: pending.pollAfter) else {
            return .publishResult(timedOut(execution, pending: pending, policy: policy), attempts: attempts)
        }
        return .park(pending, tier: tier)
    }

    /// The `failed` result of a job that did not finish in time.
    static func timedOut(_ execution: CommandExecution, pending: PendingJob, policy: RetryPolicy) -> CommandExecution {
        CommandExecution(
            outcome: .failed, klaviyo: execution.klaviyo,
            failure: .init(
                code: "job_timeout",
                detail: "Klaviyo's job \(pending.state["job_id"]?.stringValue ?? "") did not finish within "
                    + "\(policy.maxRetryAge.roundedDescription) (RELAY_MAX_RETRY_AGE)"))
    }
}
