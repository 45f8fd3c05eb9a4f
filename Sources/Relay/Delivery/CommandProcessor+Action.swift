import Klaviyo

extension CommandProcessor {
    /// What happens next to a command. The decisions (``CommandProcessor/afterFailure(_:of:policy:topology:nowMilliseconds:reserved:random:)``
    /// and the other functions of `CommandProcessor+Decisions.swift`) are pure and return one of these;
    /// ``CommandProcessor/perform(_:_:)`` runs it, in one place.
    enum Action: Sendable {
        /// Call Klaviyo once with the command's credential.
        case call
        /// A 401 on an OAuth token: refresh it once (single-flight across processes), then call again.
        case refreshAndRetry
        /// `connection.disconnect`: revoke and forget the account's connection through ``ConnectionLifecycle``
        /// (no Klaviyo credential needed).
        case disconnect(reason: String)
        /// A transient failure: park the command in `tier` (the attempt counts), confirmed, then ack.
        case retry(
            tier: RelayTopology.RetryTier, wanted: Duration, attempts: Int, firstFailedAt: String,
            lastError: KlaviyoError)
        /// The relay's own rate limiter held the call back: park the command in `tier` without counting an
        /// attempt (nothing reached Klaviyo).
        case holdBack(
            tier: RelayTopology.RetryTier, wanted: Duration, attemptsMade: Int, firstFailedAt: String,
            lastError: KlaviyoError)
        /// Leave the delivery unacked for redelivery (nothing was sent): logged as `reason` with the error.
        case handBack(reason: String, error: KlaviyoError)
        /// Dead-letter the command (replayable); `firstFailedAt` is nil when no Klaviyo call failed.
        case deadLetter(code: DeadLetterCode, detail: String, attempts: Int, firstFailedAt: String?)
        /// Klaviyo refused the account's private API key: mark the connection `reauth_required` (every command
        /// of the account would fail the same way), then dead-letter `reauth_required`.
        case reauthRequired(detail: String, attempts: Int, firstFailedAt: String)
        /// Record the result (`succeeded` or a definitive `failed`), publish it (confirmed), then ack.
        case publishResult(CommandExecution, attempts: Int)
        /// A Klaviyo job is running: record its state and poll it again from `tier`, then ack.
        case park(PendingJob, tier: RelayTopology.RetryTier)
        /// The command was already done: re-publish its stored result when its publisher has not heard back,
        /// then ack.
        case duplicate(IdempotencyStore.Record)
        /// A copy of a command already dead-lettered (`code`): ack it, nothing else.
        case alreadyDeadLettered(code: String)
    }

    /// What ``CommandProcessor/perform(_:_:)`` leads to: another action, or the end of the delivery.
    enum Step: Sendable {
        /// Perform this next.
        case next(Action)
        /// The delivery is finished.
        case finished(Outcome)
    }

    /// What the decision after a failed Klaviyo call needs to know about the command's attempts.
    struct Attempt: Sendable, Hashable {
        /// This Klaviyo attempt, 1-based, counting those of earlier deliveries (`x-relay-attempts` + 1).
        var number: Int
        /// The first failure (RFC 3339): from the sealed headers, else the time of this failure.
        var firstFailedAt: String
        /// Whether the credential was already refreshed after a 401 while processing this delivery.
        var refreshed: Bool
        /// Whether OAuth tokens can be refreshed here (a token manager is configured).
        var canRefresh: Bool
        /// Whether the failed call used an OAuth token (false: a private API key).
        var usedOAuth: Bool
        /// Whether repeating the command's calls is harmless (``CommandExecutor/isIdempotent(_:)``).
        var isIdempotent: Bool
    }

    /// Whether an account's connection admits a command.
    enum Admission: Sendable {
        /// Connected: go on with this connection.
        case admitted(ConnectionRecord)
        /// Not usable: this action (a dead letter).
        case refused(Action)
    }
}
