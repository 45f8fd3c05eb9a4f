import Klaviyo
import Metrics

/// The relay's own Prometheus series (swift-metrics), named in one place with their units; the Klaviyo call
/// series are ``KlaviyoCallMetrics`` in the Klaviyo module. Every label comes from a closed set (a tier name, an
/// outcome word, a command type); never an account id. docs/operations.md lists them all.
public enum RelayMetrics {
    /// Commands parked in a retry tier, by `tier` and `reason` (``RetryReason``).
    public static let retriesScheduled = "relay_retries_scheduled_total"
    /// Token refreshes this process attempted while holding the lock, by `outcome` (``RefreshOutcome``).
    public static let tokenRefreshes = "relay_token_refreshes_total"
    /// Latency of the token call of a refresh (any outcome).
    public static let tokenRefreshDuration = "relay_token_refresh_duration_seconds"
    /// Waits for another process's refresh lock, by `outcome` (``LockWaitOutcome``).
    public static let lockWaits = "relay_token_lock_waits_total"
    /// How long a caller waited for another process's refresh lock.
    public static let lockWaitDuration = "relay_token_lock_wait_seconds"
    /// Confirmed publishes, by `kind` (``PublishKind``).
    public static let publishes = "relay_publishes_total"
    /// Time from handing a message to the broker to its publisher confirm, by `kind`.
    public static let publishConfirmDuration = "relay_publish_confirm_seconds"
    /// Stored connections by `state` (`connected`, `reauth_required`, `disconnected`), refreshed at most once a
    /// minute by ``ConnectionStateMetrics``.
    public static let connections = "relay_connections"
    /// Whether the last connection count reached the scan cap (1: the gauge undercounts).
    public static let connectionsTruncated = "relay_connections_scan_truncated"
    /// 1, with the relay's `version` and the `swift` compiler it was built with.
    public static let buildInfo = "relay_build_info"

    /// Why a command went to a retry tier.
    public enum RetryReason: String, Sendable, CaseIterable {
        /// A Klaviyo call failed transiently (429, 5xx, network, timeout); the attempt counts.
        case failure = "failure"
        /// The relay's rate limiter held the call back (nothing was sent).
        case heldBack = "held_back"
        /// A Klaviyo job is still running; it is polled again later.
        case jobPoll = "job_poll"
        /// The Redis Cluster shard of the command's account is down (nothing was sent to Klaviyo).
        case redisUnavailable = "redis_unavailable"
    }

    /// What a refresh attempt came to.
    public enum RefreshOutcome: String, Sendable, CaseIterable {
        /// New tokens stored.
        case committed = "committed"
        /// New tokens discarded: another process committed first (version fence).
        case fenced = "fenced"
        /// Klaviyo refused the refresh token: the connection is `reauth_required`.
        case invalidGrant = "invalid_grant"
        /// The token call or storing its answer failed transiently.
        case failed = "failed"
    }

    /// What a publish carried.
    public enum PublishKind: String, Sendable, CaseIterable {
        /// A result on the results exchange.
        case result = "result"
        /// A copy of a result to the command's `reply_to` queue.
        case reply = "reply"
        /// A command parked in a retry tier (retry or job poll).
        case retry = "retry"
        /// A dead letter.
        case deadLetter = "dead_letter"
        /// Anything else (connection events).
        case other = "other"
    }

    /// Counts a command parked in `tier`.
    public static func retryScheduled(tier: String, reason: RetryReason) {
        retries[tier, reason.rawValue].increment()
    }

    /// Counts a refresh attempt and records its token call's latency (nil: no call was made).
    public static func tokenRefreshed(_ outcome: RefreshOutcome, tokenCall: Duration?) {
        Counter(label: tokenRefreshes, dimensions: [("outcome", outcome.rawValue)]).increment()
        if let tokenCall {
            Timer(label: tokenRefreshDuration).recordNanoseconds(tokenCall.nanoseconds)
        }
    }

    /// How a wait for another process's refresh lock ended.
    public enum LockWaitOutcome: String, Sendable, CaseIterable {
        /// The other process committed new tokens (or changed the connection).
        case refreshedByOther = "refreshed_by_other"
        /// The lock was released or expired and this process took it.
        case acquired = "acquired"
        /// The wait outlasted the token manager's `waitTimeout`.
        case timedOut = "timed_out"
    }

    /// Counts a wait for another process's refresh lock and records how long it took.
    public static func lockWaited(_ outcome: LockWaitOutcome, _ waited: Duration) {
        Counter(label: lockWaits, dimensions: [("outcome", outcome.rawValue)]).increment()
        Timer(label: lockWaitDuration).recordNanoseconds(waited.nanoseconds)
    }

    /// Counts a confirmed publish and records its confirm latency.
    public static func published(_ kind: PublishKind, confirmedAfter elapsed: Duration) {
        publishCounts[kind.rawValue].increment()
        publishConfirmDurations[kind.rawValue].recordNanoseconds(elapsed.nanoseconds)
    }

    /// Counts a finished command by `type` and `outcome` and records its duration by `type`.
    static func commandFinished(type: String, outcome: String, after elapsed: Duration) {
        commandCounts[type, outcome].increment()
        commandDurations[type].recordNanoseconds(elapsed.nanoseconds)
    }

    /// Counts a dead letter by `code`.
    static func deadLettered(_ code: DeadLetterCode) {
        deadLetters[code.rawValue].increment()
    }

    private static let retries = MetricHandles {
        Counter(label: retriesScheduled, dimensions: [("tier", $0), ("reason", $1)])
    }
    private static let publishCounts = MetricHandles { kind, _ in
        Counter(label: publishes, dimensions: [("kind", kind)])
    }
    private static let publishConfirmDurations = MetricHandles { kind, _ in
        Timer(label: publishConfirmDuration, dimensions: [("kind", kind)])
    }
    private static let commandCounts = MetricHandles {
        Counter(label: "relay_commands_total", dimensions: [("type", $0), ("outcome", $1)])
    }
    private static let commandDurations = MetricHandles { type, _ in
        Timer(label: "relay_command_duration_seconds", dimensions: [("type", type)])
    }
    private static let deadLetters = MetricHandles { code, _ in
        Counter(label: "relay_dead_letters_total", dimensions: [("code", code)])
    }

    /// The kind of a message published to `exchange` under `topology` (an empty exchange is a `reply_to` queue).
    public static func publishKind(exchange: String, topology: RelayTopology) -> PublishKind {
        switch exchange {
        case topology.resultsExchange: return .result
        case "": return .reply
        case topology.retryExchange: return .retry
        case topology.deadExchange: return .deadLetter
        default: return .other
        }
    }

    /// Sets `relay_build_info{version, swift} 1` once at start-up.
    public static func recordBuildInfo(version: String) {
        Gauge(label: buildInfo, dimensions: [("version", version), ("swift", swiftVersion)]).record(1)
    }

    /// The compiler version this binary was built with (major.minor).
    public static var swiftVersion: String {
        #if compiler(>=6.5)
            return "6.5+"
        #elseif compiler(>=6.4)
            return "6.4"
        #elseif compiler(>=6.3)
            return "6.3"
        #elseif compiler(>=6.2)
            return "6.2"
        #elseif compiler(>=6.1)
            return "6.1"
        #else
            return "6.0"
        #endif
    }
}
