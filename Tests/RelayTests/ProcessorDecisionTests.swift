import Klaviyo
import Testing

@testable import Relay

/// The processor's decisions are pure functions: each branch is checked here without a broker, Redis or
/// Klaviyo (the integration suites check that the actions are carried out).
@Suite("Processor decisions")
struct ProcessorDecisionTests {
    let policy = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(100), maxDelay: .seconds(2))
    let topology = RelayTopology()
    /// 2026-12-04T12:00:00Z.
    let now: Int64 = 1_796_472_000_000
    var firstFailedAt: String { Timestamp.format(milliseconds: now - 60_000) }

    func error(
        _ code: KlaviyoError.Code, status: Int? = nil, retryAfter: Duration? = nil, sent: Bool = true,
        oauth: Bool = false
    ) -> KlaviyoError {
        KlaviyoError(
            code: code, status: status, operationID: "op", message: "m", retryAfter: retryAfter,
            requestMayHaveBeenSent: sent, usedOAuth: oauth)
    }

    func attempt(
        _ number: Int, refreshed: Bool = false, canRefresh: Bool = true, oauth: Bool = false, idempotent: Bool = true,
        firstFailedAt: String? = nil
    ) -> CommandProcessor.Attempt {
        CommandProcessor.Attempt(
            number: number, firstFailedAt: firstFailedAt ?? self.firstFailedAt, refreshed: refreshed,
            canRefresh: canRefresh, usedOAuth: oauth, isIdempotent: idempotent)
    }

    func decide(_ error: KlaviyoError, _ attempt: CommandProcessor.Attempt) -> CommandProcessor.Action {
        CommandProcessor.afterFailure(
            error, of: attempt, policy: policy, topology: topology, nowMilliseconds: now, random: { 0.5 })
    }

    func command(_ type: CommandType, _ payload: CommandPayload) -> CommandEnvelope {
        CommandEnvelope(
            id: "c-1", type: type, accountID: "org_1", createdAt: "2026-12-04T12:00:00Z", payload: payload,
            payloadDigest: "")
    }

    // MARK: after a failed call

    @Test func transientFailureIsRetriedInTheTierOfItsBackoff() throws {
        let action = decide(error(.serverError, status: 503), attempt(2))
        guard case .retry(let tier, let wanted, let attempts, let first, let last) = action else {
            Issue.record("expected a retry, got \(action)")
            return
        }
        // Attempt 2: full jitter over 0…200 ms, drawn at 0.5 → 100 ms, in the shortest tier.
        #expect(wanted == .milliseconds(100))
        #expect(tier.name == "1s")
        #expect(attempts == 2)
        #expect(first == firstFailedAt)
        #expect(last.status == 503)
    }

    @Test func throttledCallWaitsAtLeastRetryAfter() throws {
        let action = decide(error(.throttled, status: 429, retryAfter: .seconds(20)), attempt(1))
        guard case .retry(let tier, let wanted, let attempts, _, _) = action else {
            Issue.record("expected a retry, got \(action)")
            return
        }
        #expect(wanted >= .seconds(20))
        #expect(tier.name == "30s")
        #expect(attempts == 1)
    }

    @Test func transientFailureWithTheBudgetSpentIsDeadLetteredExhausted() throws {
        let action = decide(error(.serverError, status: 500), attempt(4))
        guard case .deadLetter(let code, let detail, let attempts, let first) = action else {
            Issue.record("expected a dead letter, got \(action)")
            return
        }
        #expect(code == .retriesExhausted)
        #expect(detail.hasPrefix("gave up after 4 attempts; last error: op failed (HTTP 500)"))
        #expect(attempts == 4)
        #expect(first == firstFailedAt)
    }

    @Test func transientFailureOlderThanTheMaximumAgeIsDeadLetteredExhausted() throws {
        let old = Timestamp.format(milliseconds: now - 25 * 3_600_000)
        let action = decide(error(.serverError, status: 502), attempt(2, firstFailedAt: old))
        guard case .deadLetter(.retriesExhausted, let detail, 2, let first) = action else {
            Issue.record("expected retries_exhausted, got \(action)")
            return
        }
        #expect(detail.contains("maximum age 24h"))
        #expect(first == old)
    }

    @Test func permanentFailureIsDeadLetteredRejectedWithKlaviyosReason() {
        let failure = error(.rejected, status: 400)
        let action = decide(failure, attempt(1))
        guard case .deadLetter(.klaviyoRejected, let detail, 1, _) = action else {
            Issue.record("expected klaviyo_rejected, got \(action)")
            return
        }
        #expect(detail == failure.description)
    }

    @Test func ambiguousFailureOfANonIdempotentCallIsNotRepeated() {
        let action = decide(error(.transport, sent: true), attempt(1, idempotent: false))
        guard case .deadLetter(.klaviyoRejected, _, 1, _) = action else {
            Issue.record("expected klaviyo_rejected, got \(action)")
            return
        }
        // Nothing reached Klaviyo: retried even though the call is not idempotent.
        guard case .retry = decide(error(.transport, sent: false), attempt(1, idempotent: false)) else {
            Issue.record("a transport failure before sending is retried")
            return
        }
    }

    @Test func oauthUnauthorizedRefreshesOnceThenGivesUp() {
        let unauthorized = error(.unauthorized, status: 401, oauth: true)
        guard case .refreshAndRetry = decide(unauthorized, attempt(1, oauth: true)) else {
            Issue.record("the first 401 on an OAuth token refreshes")
            return
        }
        // After the one refresh, a second 401 is final (the grant is not the problem: Klaviyo refuses it).
        let again = decide(unauthorized, attempt(2, refreshed: true, oauth: true))
        guard case .deadLetter(.klaviyoRejected, _, 2, _) = again else {
            Issue.record("expected klaviyo_rejected after the refresh, got \(again)")
            return
        }
        // Without a token manager there is nothing to refresh with.
        let noManager = decide(unauthorized, attempt(1, canRefresh: false, oauth: true))
        guard case .deadLetter(.klaviyoRejected, _, 1, _) = noManager else {
            Issue.record("expected klaviyo_rejected without a token manager, got \(noManager)")
            return
        }
    }

    @Test func apiKeyUnauthorizedMarksTheAccountReauthRequired() {
        let action = decide(error(.unauthorized, status: 401), attempt(1, oauth: false))
        guard case .reauthRequired(let detail, 1, let first) = action else {
            Issue.record("expected reauth_required, got \(action)")
            return
        }
        #expect(detail.hasPrefix("Klaviyo refused the API key (op failed (HTTP 401): m)"))
        #expect(first == firstFailedAt)
    }

    @Test func heldBackCallIsParkedWithoutCountingAnAttempt() {
        let action = decide(error(.heldBack, retryAfter: .seconds(3), sent: false), attempt(3))
        guard case .holdBack(let tier, let wanted, let attemptsMade, let first, _) = action else {
            Issue.record("expected a hold-back, got \(action)")
            return
        }
        // No slot reserved (refused): 3 s shortened by up to 20 % (drawn at 0.5 → 2.7 s), in the longest tier
        // that returns before it (1 s); attempt 3 was not made.
        #expect(wanted == .milliseconds(2700))
        #expect(tier.name == "1s")
        #expect(attemptsMade == 2)
        #expect(first == firstFailedAt)
    }

    @Test func heldBackPastTheMaximumAgeIsDeadLetteredExhausted() {
        let old = Timestamp.format(milliseconds: now - 25 * 3_600_000)
        let action = decide(error(.heldBack, retryAfter: .seconds(3), sent: false), attempt(1, firstFailedAt: old))
        guard case .deadLetter(.retriesExhausted, let detail, let attempts, _) = action else {
            Issue.record("expected retries_exhausted, got \(action)")
            return
        }
        #expect(detail.hasPrefix("held back by the rate limiter for"))
        #expect(attempts == 1, "at least one attempt is reported, though none was made")
    }

    @Test func unreachableLimiterHandsTheDeliveryBack() {
        let action = decide(error(.gateUnavailable, sent: false), attempt(1))
        guard case .handBack(let reason, let failure) = action else {
            Issue.record("expected a hand-back, got \(action)")
            return
        }
        #expect(reason == "rate limiter unavailable")
        #expect(failure.code == .gateUnavailable)
    }

    // MARK: after Klaviyo answered

    @Test func finishedExecutionPublishesItsResult() {
        let execution = CommandExecution(outcome: .succeeded, klaviyo: .init(status: 200))
        let action = CommandProcessor.afterExecution(
            execution, attempts: 3, policy: policy, topology: topology, nowMilliseconds: now)
        guard case .publishResult(let published, 3) = action else {
            Issue.record("expected the result, got \(action)")
            return
        }
        #expect(published == execution)
    }

    @Test func runningJobIsParkedUntilItsNextPoll() {
        let pending = PendingJob(
            state: ["job_id": "job-1", "polls": 4, "submitted_at": .string(firstFailedAt)], pollAfter: .seconds(5))
        let execution = CommandExecution(outcome: .succeeded, klaviyo: .init(status: 200), pending: pending)
        let action = CommandProcessor.afterExecution(
            execution, attempts: 1, policy: policy, topology: topology, nowMilliseconds: now)
        guard case .park(let parked, let tier) = action else {
            Issue.record("expected the job parked, got \(action)")
            return
        }
        #expect(parked == pending)
        #expect(tier.name == "5s")
    }

    @Test func jobOlderThanTheMaximumAgeEndsAsAFailedResult() {
        let submitted = Timestamp.format(milliseconds: now - 25 * 3_600_000)
        let pending = PendingJob(
            state: ["job_id": "job-1", "polls": 40, "submitted_at": .string(submitted)], pollAfter: .seconds(30))
        let execution = CommandExecution(outcome: .succeeded, klaviyo: .init(status: 200), pending: pending)
        for topology in [topology, RelayTopology(retryTiers: [])] {
            let fresh = PendingJob(state: ["job_id": "job-1", "polls": 0], pollAfter: .seconds(1))
            let noTiers = CommandExecution(outcome: .succeeded, klaviyo: .init(status: 200), pending: fresh)
            let job = topology.retryTiers.isEmpty ? noTiers : execution
            let action = CommandProcessor.afterExecution(
                job, attempts: 2, policy: policy, topology: topology, nowMilliseconds: now)
            guard case .publishResult(let result, 2) = action else {
                Issue.record("expected a failed result, got \(action)")
                continue
            }
            #expect(result.outcome == .failed)
            #expect(result.failure?.code == "job_timeout")
            #expect(result.failure?.detail == "Klaviyo's job job-1 did not finish within 24h (RELAY_MAX_RETRY_AGE)")
        }
    }

    // MARK: before any call

    @Test func idempotencyLookupDecidesDuplicatesAndConflicts() {
        #expect(CommandProcessor.afterLookup(.fresh) == nil)
        let record = IdempotencyStore.Record(result: Array("{}".utf8), published: true)
        guard case .duplicate(let found)? = CommandProcessor.afterLookup(.done(record)) else {
            Issue.record("a done command is a duplicate")
            return
        }
        #expect(found == record)
        guard case .deadLetter(.idConflict, "other", 1, nil)? = CommandProcessor.afterLookup(.conflict(detail: "other"))
        else {
            Issue.record("a reused id is dead-lettered id_conflict")
            return
        }
        // A dead-lettered command: a copy of it (redelivered, or sealed by the relay, of the flow that was
        // dead-lettered) is acked as a duplicate; a fresh delivery of it, or any copy of a later replay, runs.
        for flow in ["", "replay-1"] {
            guard
                case .alreadyDeadLettered("not_connected")? = CommandProcessor.afterLookup(
                    .deadLettered(code: "not_connected", flow: flow), mayBeACopy: true, flow: flow)
            else {
                Issue.record("a copy of a dead-lettered command ends as a duplicate (flow \(flow))")
                return
            }
        }
        #expect(CommandProcessor.afterLookup(.deadLettered(code: "not_connected", flow: ""), mayBeACopy: false) == nil)
        #expect(
            CommandProcessor.afterLookup(
                .deadLettered(code: "not_connected", flow: ""), mayBeACopy: true, flow: "replay-1") == nil,
            "a redelivered or retried replay of a command first dead-lettered unreplayed")
        #expect(
            CommandProcessor.afterLookup(
                .deadLettered(code: "not_connected", flow: "replay-1"), mayBeACopy: true, flow: "replay-2") == nil,
            "a second replay's copies")
        #expect(
            CommandProcessor.afterLookup(
                .deadLettered(code: "not_connected", flow: "replay-1"), mayBeACopy: true, flow: "") == nil,
            "a publisher's own copy after a replay was dead-lettered: not that flow's copy")
    }

    @Test func unsupportedTypesAreDeadLetteredAndDisconnectsGoToTheLifecycle() {
        #expect(CommandProcessor.route(command(.accountGet, .accountGet), attempts: 1) == nil)
        let unsupported = CommandProcessor.route(command(.flowList, .unsupported(.null)), attempts: 3)
        guard case .deadLetter(.unsupportedType, let detail, 3, nil)? = unsupported else {
            Issue.record("expected unsupported_type, got \(String(describing: unsupported))")
            return
        }
        #expect(detail == "command type flow.list is not handled by this relay version yet")
        let disconnect = CommandProcessor.route(
            command(.connectionDisconnect, .connectionDisconnect(reason: nil)), attempts: 1)
        guard case .disconnect("connection.disconnect command c-1")? = disconnect else {
            Issue.record("expected a disconnect with the default reason, got \(String(describing: disconnect))")
            return
        }
        let withReason = CommandProcessor.route(
            command(.connectionDisconnect, .connectionDisconnect(reason: "churned")), attempts: 1)
        guard case .disconnect("churned")? = withReason else {
            Issue.record("expected a disconnect with the given reason, got \(String(describing: withReason))")
            return
        }
    }

    @Test func onlyAConnectedAccountIsAdmitted() {
        func refusal(_ record: ConnectionRecord?) -> (DeadLetterCode, String, Int)? {
            guard
                case .refused(.deadLetter(let code, let detail, let attempts, nil)) =
                    CommandProcessor.admission(of: record, accountID: "org_1", attempts: 2)
            else { return nil }
            return (code, detail, attempts)
        }
        let none = refusal(nil)
        #expect(none?.0 == .notConnected)
        #expect(none?.1 == "account org_1 has no Klaviyo connection")
        #expect(none?.2 == 2)
        let reauth = refusal(ConnectionRecord(accountID: "org_1", method: .oauth, state: .reauthRequired))
        #expect(reauth?.0 == .reauthRequired)
        #expect(reauth?.1 == "account org_1 must reconnect Klaviyo; replay after it has")
        let gone = refusal(ConnectionRecord(accountID: "org_1", method: .apiKey, state: .disconnected))
        #expect(gone?.0 == .notConnected)
        #expect(gone?.1 == "account org_1 disconnected Klaviyo")
        let connected = ConnectionRecord(accountID: "org_1", method: .apiKey, state: .connected, apiKey: "pk_x")
        guard case .admitted(let admitted) = CommandProcessor.admission(of: connected, accountID: "org_1", attempts: 1)
        else {
            Issue.record("a connected account is admitted")
            return
        }
        #expect(admitted.apiKey == "pk_x")
    }
}

extension CommandProcessor.Action: CustomStringConvertible {
    var description: String {
        switch self {
        case .call: return "call"
        case .refreshAndRetry: return "refreshAndRetry"
        case .disconnect(let reason): return "disconnect(\(reason))"
        case .retry(let tier, _, let attempts, _, _): return "retry(\(tier.name), attempts: \(attempts))"
        case .holdBack(let tier, _, let made, _, _): return "holdBack(\(tier.name), made: \(made))"
        case .handBack(let reason, _): return "handBack(\(reason))"
        case .deadLetter(let code, let detail, let attempts, _):
            return "deadLetter(\(code.rawValue), \(detail), attempts: \(attempts))"
        case .reauthRequired(let detail, _, _): return "reauthRequired(\(detail))"
        case .publishResult(let execution, let attempts): return "publishResult(\(execution.outcome), \(attempts))"
        case .park(_, let tier): return "park(\(tier.name))"
        case .duplicate: return "duplicate"
        case .alreadyDeadLettered(let code): return "alreadyDeadLettered(\(code))"
        }
    }
}
