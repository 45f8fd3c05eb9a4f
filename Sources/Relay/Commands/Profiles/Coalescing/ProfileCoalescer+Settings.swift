extension ProfileCoalescer {
    /// Tuning of profile coalescing (`RELAY_COALESCE*`).
    public struct Settings: Sendable, Hashable {
        /// `RELAY_COALESCE_THRESHOLD`: coalesce an account's upserts while the next free `create_or_update_profile`
        /// slot is at least this far away; zero coalesces every eligible upsert.
        public var threshold: Duration = .seconds(5)
        /// `RELAY_COALESCE_WINDOW`: how long a batch collects rows after it opened before it is submitted.
        public var window: Duration = .seconds(2)
        /// Rows per batch: Klaviyo's 10,000 profiles per job.
        public var maxRows = 10_000
        /// Request bytes per batch: below Klaviyo's 5 MB per job, with room for the envelope.
        public var maxBytes = 4_500_000
        /// `RELAY_COALESCE_LOCK_TTL`: how long one process owns a batch's submit (or poll) before another may take
        /// over; longer than `RELAY_HTTP_TIMEOUT`, so a slow submit is never taken for a dead one.
        public var lockTTL: Duration = .seconds(60)
        /// How often a submitted batch's job is polled (one GET per interval per batch, whatever its row count).
        public var pollInterval: Duration = .seconds(2)
        /// Lifetime of a batch's keys in Redis after its last change.
        public var ttl: Duration = .seconds(86_400)
        /// The longest a finished batch holds its identifiers for members that went out singly and never came
        /// back (dead-lettered by the broker, purged): counted from the last single-call visit of any of its
        /// members. A member that is still running comes back at least once per retry tier, the longest of which
        /// is an hour (a call the rate limiter holds back further comes back within it, and again), so two hours
        /// never cut a live member's hold short; a member ends the hold early with its outcome (its done marker).
        public var holdTTL: Duration = .seconds(7200)

        /// Default settings.
        public init() {}

        /// The settings from `RELAY_COALESCE`, `RELAY_COALESCE_THRESHOLD`, `RELAY_COALESCE_WINDOW` and
        /// `RELAY_COALESCE_LOCK_TTL`; nil when coalescing is off (`RELAY_COALESCE=off`, or unset while the rate
        /// limiter is off: then nothing measures an account's backlog).
        public static func fromEnvironment(
            _ environment: [String: String], rateLimitEnabled: Bool
        ) throws(RelayError) -> Settings? {
            func text(_ name: String) -> String? {
                guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else {
                    return nil
                }
                return value
            }
            func duration(_ name: String, _ range: ClosedRange<Duration>) throws(RelayError) -> Duration? {
                guard let value = text(name) else { return nil }
                guard let parsed = RelayConfiguration.parseDuration(value), range.contains(parsed) else {
                    throw RelayError(
                        code: .invalidConfiguration,
                        message: "\(name) must be a duration from \(range.lowerBound.roundedDescription) to "
                            + "\(range.upperBound.roundedDescription), such as 5s")
                }
                return parsed
            }
            switch text("RELAY_COALESCE") {
            case nil: if !rateLimitEnabled { return nil }
            case "on": break
            case "off": return nil
            default: throw RelayError(code: .invalidConfiguration, message: "RELAY_COALESCE must be on or off")
            }
            var settings = Settings()
            if let value = try duration("RELAY_COALESCE_THRESHOLD", .zero ... .seconds(3600)) {
                settings.threshold = value
            }
            if let value = try duration("RELAY_COALESCE_WINDOW", .milliseconds(10) ... .seconds(60)) {
                settings.window = value
            }
            if let value = try duration("RELAY_COALESCE_LOCK_TTL", .seconds(1) ... .seconds(3600)) {
                settings.lockTTL = value
            }
            return settings
        }

        /// For the startup log line.
        public var description: String {
            "coalesce=on threshold=\(threshold.roundedDescription) window=\(window.roundedDescription) "
                + "lock_ttl=\(lockTTL.roundedDescription)"
        }
    }
}
