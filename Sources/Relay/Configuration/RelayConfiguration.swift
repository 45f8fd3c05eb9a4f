import Foundation

/// Every setting of the relay, read from the environment in one place (README, "Configuration", lists them all).
///
/// Secrets (client secret, API token, link secret, encryption keys) are held here but never appear in
/// ``description``.
public struct RelayConfiguration: Sendable, CustomStringConvertible {
    /// `RELAY_AMQP_URL`: one broker, or a comma-separated list of a cluster's nodes (see ``AMQPConfiguration``).
    public var amqpURL = "amqp://guest:guest@127.0.0.1:5672/%2f"
    /// `RELAY_AMQP_TLS_CA_FILE`: PEM file of the CA(s) that sign the broker's certificate for `amqps://` (default:
    /// the system's trust store). The certificate and the host name are always verified.
    public var amqpTLSCAFile: String?
    /// `RELAY_REDIS_URL`.
    public var redisURL = "redis://127.0.0.1:6379/0"
    /// `RELAY_REDIS_POOL_SIZE`.
    public var redisPoolSize = 16
    /// `RELAY_KLAVIYO_API_BASE_URL`.
    public var klaviyoBaseURL = "https://a.klaviyo.com"
    /// `RELAY_KLAVIYO_AUTHORIZE_URL`.
    public var klaviyoAuthorizeURL = "https://www.klaviyo.com/oauth/authorize"
    /// `RELAY_KLAVIYO_CLIENT_ID`.
    public var klaviyoClientID: String?
    /// `RELAY_KLAVIYO_CLIENT_SECRET`.
    public var klaviyoClientSecret: String?
    /// `RELAY_OAUTH_REDIRECT_URL`.
    public var oauthRedirectURL = "http://127.0.0.1:8080/oauth/klaviyo/callback"
    /// `RELAY_ENCRYPTION_KEY` (parsed).
    public var encryptionKeys: EncryptionKeyRing
    /// `RELAY_CONCURRENCY`: commands in flight per process.
    public var concurrency = 32
    /// `RELAY_HTTP_PORT`.
    public var httpPort = 8080
    /// `RELAY_API_TOKEN`.
    public var apiToken: String?
    /// `RELAY_LINK_SECRET`.
    public var linkSecret: String?
    /// `RELAY_LINK_MAX_TTL`: the longest lifetime a signed browser link may have (its `expires` at most this far
    /// ahead); default 1h.
    public var linkMaxTTL: Duration = SignedLink.defaultMaxLifetime
    /// `RELAY_RETURN_TO_ALLOWLIST`.
    public var returnToAllowlist: [String] = []
    /// `RELAY_OAUTH_START_LIMIT`: OAuth flows `serve` starts per account per 10 minutes (each stores a state in
    /// Redis for 10 minutes); beyond it the start link answers 429.
    public var oauthStartLimit: OAuthConnector.StartLimit = .standard
    /// `RELAY_QUEUE_PREFIX`.
    public var queuePrefix = "klaviyo"
    /// `RELAY_TOPOLOGY`: `arguments` (default) or `policies` (see ``RelayTopology/Mode``).
    public var topologyMode: RelayTopology.Mode = .arguments
    /// `RELAY_RABBITMQ_MANAGEMENT_URL`: the management HTTP API (`http://user:password@host:15672`), which
    /// `setup` and `consume` need in `policies` mode. Holds a password: never logged.
    public var rabbitMQManagementURL: String?
    /// `RELAY_METRICS_PORT` for `consume` (0 disables the metrics/health endpoint).
    public var metricsPort = 9464
    /// `RELAY_LOG_LEVEL`.
    public var logLevel = "info"
    /// `RELAY_LOG_FORMAT`: `json` or `text`.
    public var logFormat = "json"
    /// `RELAY_SHUTDOWN_TIMEOUT`: how long in-flight commands may finish after SIGTERM.
    public var shutdownTimeout: Duration = .seconds(30)
    /// `RELAY_MAX_ATTEMPTS`: Klaviyo attempts per command before `retries_exhausted`.
    public var maxAttempts = 5
    /// `RELAY_MAX_RETRY_AGE`: how long after its first failure a command may still be retried.
    public var maxRetryAge: Duration = .seconds(24 * 3600)
    /// `RELAY_RETRY_BASE_DELAY`: first backoff step.
    public var retryBaseDelay: Duration = .milliseconds(200)
    /// `RELAY_RETRY_MAX_DELAY`: longest single backoff.
    public var retryMaxDelay: Duration = .seconds(10)
    /// `RELAY_IDEMPOTENCY_TTL`: how long done markers (with their results) are kept.
    public var idempotencyTTL: Duration = .seconds(7 * 24 * 3600)
    /// `RELAY_MAX_MESSAGE_BYTES`.
    public var maxMessageBytes = 6 * 1024 * 1024
    /// `RELAY_DELIVERY_LIMIT`: broker redeliveries before a message is dead-lettered with `delivery_limit`.
    public var deliveryLimit = 10
    /// `RELAY_HTTP_CONNECT_TIMEOUT`.
    public var httpConnectTimeout: Duration = .seconds(5)
    /// `RELAY_HTTP_TIMEOUT`: whole Klaviyo request.
    public var httpTimeout: Duration = .seconds(30)
    /// `RELAY_CREDENTIAL_CACHE_TTL`: how long a process reuses a decrypted credential before re-reading Redis.
    public var credentialCacheTTL: Duration = .seconds(2)
    /// `RELAY_ENABLE_FAULT_INJECTION` + `RELAY_FAULT_CRASH_AT` (+ `RELAY_FAULT_CRASH_COMMAND_ID`): test-only
    /// crash points; ignored unless explicitly enabled.
    public var crashPoint: CrashPoint?
    /// `RELAY_TOKEN_REFRESH_MARGIN`: refresh OAuth access tokens this long before they expire.
    public var tokenRefreshMargin: Duration = .seconds(300)
    /// `RELAY_KEEPALIVE_AGE`: OAuth connections whose tokens were last written longer ago are refreshed in the
    /// background (Klaviyo expires refresh tokens after 90 days without use).
    public var keepAliveAge: Duration = .seconds(30 * 24 * 3600)
    /// `RELAY_KEEPALIVE_INTERVAL`: how often each consumer sweeps for idle OAuth connections (0 disables).
    public var keepAliveInterval: Duration = .seconds(3600)
    /// `RELAY_TOKEN_LOCK_TTL`: lifetime of the per-account refresh lock.
    public var tokenLockTTL: Duration = .seconds(15)
    /// `RELAY_TOKEN_WAIT_TIMEOUT`: how long a command waits for another process's refresh.
    public var tokenWaitTimeout: Duration = .seconds(20)
    /// `RELAY_RATE_LIMIT`: `spec` (default) limits calls to Klaviyo's published rates through the shared
    /// Redis limiter; `off` disables the limiter (only Klaviyo's 429s then slow the relay down).
    public var rateLimitEnabled = true
    /// `RELAY_RATE_LIMIT_SHARE`: part of each of Klaviyo's limits this relay may use, in (0, 1].
    public var rateLimitShare = 1.0
    /// `RELAY_RATE_LIMIT_MAX_WAIT`: longest a call waits inline for the limiter before its command is parked
    /// in a retry tier. 1.5 s: the shortest tier (1 s) plus ``RetryPolicy/defaultHeldBackReturnMargin``, so
    /// every parked command can be back before its slot with that margin (``cautions``).
    public var rateLimitMaxWait: Duration = RateLimiter.Settings.defaultMaxWait
    /// `RELAY_BATCH_WINDOW`: how long the first `event.track` of an account waits for others to share one
    /// bulk call (at most 1s); `0` disables batching (every event is sent with `create_event`).
    public var batchWindow: Duration = .milliseconds(25)
    /// `RELAY_COALESCE*`: profile coalescing into bulk import jobs (nil: off; see ``ProfileCoalescer/Settings``).
    public var coalescing: ProfileCoalescer.Settings?
    /// `RELAY_FAIR_SHARE`: share of a process's consumer slots one account may hold before its further
    /// deliveries are bundled and parked so other accounts go first (``AccountFairness``), in [0, 1]; 0 is off.
    public var fairShare = 0.25
    /// `RELAY_REPLY_TO_PATTERN`: the queues a command's `reply_to` may name (see ``ReplyToPolicy``).
    public var replyTo: ReplyToPolicy = .default
    /// Whether `--dev` defaults are in force.
    public var isDevelopment: Bool

    /// Reads the configuration. Outside development mode `RELAY_ENCRYPTION_KEY` is required.
    public init(environment: [String: String], development: Bool) throws(RelayError) {
        isDevelopment = development
        func text(_ name: String) -> String? {
            guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else {
                return nil
            }
            return value
        }
        func integer(_ name: String, _ range: ClosedRange<Int>) throws(RelayError) -> Int? {
            guard let value = text(name) else { return nil }
            guard let number = Int(value), range.contains(number) else {
                throw RelayError(
                    code: .invalidConfiguration,
                    message: "\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return number
        }
        func duration(_ name: String) throws(RelayError) -> Duration? {
            guard let value = text(name) else { return nil }
            guard let parsed = Self.parseDuration(value) else {
                if Self.parseDurationMilliseconds(value) != nil {
                    throw RelayError(
                        code: .invalidConfiguration, message: "\(name) must be at most \(Self.maximumDurationText)")
                }
                throw RelayError(
                    code: .invalidConfiguration, message: "\(name) must be a duration such as 500ms, 30s, 2m, 1h or 7d")
            }
            return parsed
        }
        if let value = text("RELAY_AMQP_URL") { amqpURL = value }
        if let value = text("RELAY_AMQP_TLS_CA_FILE") {
            guard FileManager.default.isReadableFile(atPath: value) else {
                throw RelayError(
                    code: .invalidConfiguration, message: "RELAY_AMQP_TLS_CA_FILE: \(value) is not a readable file")
            }
            amqpTLSCAFile = value
        }
        if let value = text("RELAY_REDIS_URL") { redisURL = value }
        if let value = try integer("RELAY_REDIS_POOL_SIZE", 1...256) { redisPoolSize = value }
        if let value = text("RELAY_KLAVIYO_API_BASE_URL") { klaviyoBaseURL = value }
        if let value = text("RELAY_KLAVIYO_AUTHORIZE_URL") { klaviyoAuthorizeURL = value }
        klaviyoClientID = text("RELAY_KLAVIYO_CLIENT_ID")
        klaviyoClientSecret = text("RELAY_KLAVIYO_CLIENT_SECRET")
        if let value = text("RELAY_OAUTH_REDIRECT_URL") { oauthRedirectURL = value }
        if let value = text("RELAY_ENCRYPTION_KEY") {
            do {
                encryptionKeys = try EncryptionKeyRing(specification: value)
            } catch {
                throw RelayError(
                    code: .invalidConfiguration, message: "RELAY_ENCRYPTION_KEY: \(error)", underlying: error)
            }
        } else if development {
            encryptionKeys = .development
        } else {
            throw RelayError(
                code: .invalidConfiguration,
                message:
                    "RELAY_ENCRYPTION_KEY is required (format kid:base64-of-32-bytes; `klaviyo-relay generate-key` makes one), or run with --dev"
            )
        }
        if let value = try integer("RELAY_CONCURRENCY", 1...4096) { concurrency = value }
        if let value = try integer("RELAY_HTTP_PORT", 0...65535) { httpPort = value }
        apiToken = text("RELAY_API_TOKEN")
        linkSecret = text("RELAY_LINK_SECRET")
        if !development {
            for (name, secret) in [("RELAY_API_TOKEN", apiToken), ("RELAY_LINK_SECRET", linkSecret)] {
                if let secret, secret.utf8.count < Self.minimumSecretBytes {
                    throw RelayError(
                        code: .invalidConfiguration,
                        message: "\(name) must be at least \(Self.minimumSecretBytes) bytes "
                            + "(e.g. `openssl rand -hex 32`), or run with --dev")
                }
            }
            for (name, url) in [
                ("RELAY_KLAVIYO_API_BASE_URL", klaviyoBaseURL), ("RELAY_KLAVIYO_AUTHORIZE_URL", klaviyoAuthorizeURL),
            ] where !url.lowercased().hasPrefix("https://") {
                throw RelayError(code: .invalidConfiguration, message: "\(name) must be an https:// URL outside --dev")
            }
        }
        if let value = try duration("RELAY_LINK_MAX_TTL") {
            guard value >= .seconds(1), value <= .seconds(7 * 24 * 3600) else {
                throw RelayError(code: .invalidConfiguration, message: "RELAY_LINK_MAX_TTL must be from 1s to 7d")
            }
            linkMaxTTL = value
        }
        if let value = try integer("RELAY_OAUTH_START_LIMIT", 1...10_000) { oauthStartLimit.maxStarts = value }
        if let value = text("RELAY_RETURN_TO_ALLOWLIST") {
            returnToAllowlist = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        }
        if let value = text("RELAY_QUEUE_PREFIX") {
            guard value.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
                throw RelayError(
                    code: .invalidConfiguration,
                    message: "RELAY_QUEUE_PREFIX may contain only letters, digits, '-', '_' and '.'")
            }
            queuePrefix = value
        }
        if let value = text("RELAY_TOPOLOGY") {
            guard let mode = RelayTopology.Mode(rawValue: value) else {
                throw RelayError(
                    code: .invalidConfiguration,
                    message: "RELAY_TOPOLOGY must be arguments (queue arguments, the default) or policies")
            }
            topologyMode = mode
        }
        rabbitMQManagementURL = text("RELAY_RABBITMQ_MANAGEMENT_URL")
        if let value = try integer("RELAY_METRICS_PORT", 0...65535) { metricsPort = value }
        if let value = text("RELAY_LOG_LEVEL") { logLevel = value }
        if let value = text("RELAY_LOG_FORMAT") {
            guard value == "json" || value == "text" else {
                throw RelayError(code: .invalidConfiguration, message: "RELAY_LOG_FORMAT must be json or text")
            }
            logFormat = value
        } else if development {
            logFormat = "text"
        }
        if let value = try duration("RELAY_SHUTDOWN_TIMEOUT") { shutdownTimeout = value }
        if let value = try integer("RELAY_MAX_ATTEMPTS", 1...100) { maxAttempts = value }
        if let value = try duration("RELAY_MAX_RETRY_AGE") { maxRetryAge = value }
        if let value = try duration("RELAY_RETRY_BASE_DELAY") { retryBaseDelay = value }
        if let value = try duration("RELAY_RETRY_MAX_DELAY") { retryMaxDelay = value }
        if let value = try duration("RELAY_IDEMPOTENCY_TTL") { idempotencyTTL = value }
        if let value = try integer("RELAY_MAX_MESSAGE_BYTES", 1024...(64 * 1024 * 1024)) { maxMessageBytes = value }
        if let value = try integer("RELAY_DELIVERY_LIMIT", 1...1000) { deliveryLimit = value }
        if let value = try duration("RELAY_HTTP_CONNECT_TIMEOUT") { httpConnectTimeout = value }
        if let value = try duration("RELAY_HTTP_TIMEOUT") { httpTimeout = value }
        if let value = try duration("RELAY_CREDENTIAL_CACHE_TTL") { credentialCacheTTL = value }
        if let value = try duration("RELAY_TOKEN_REFRESH_MARGIN") { tokenRefreshMargin = value }
        if let value = try duration("RELAY_KEEPALIVE_AGE") { keepAliveAge = value }
        if let value = try duration("RELAY_KEEPALIVE_INTERVAL") { keepAliveInterval = value }
        if let value = try duration("RELAY_TOKEN_LOCK_TTL") {
            guard value >= .milliseconds(100) else {
                throw RelayError(code: .invalidConfiguration, message: "RELAY_TOKEN_LOCK_TTL must be at least 100ms")
            }
            tokenLockTTL = value
        }
        if let value = try duration("RELAY_TOKEN_WAIT_TIMEOUT") { tokenWaitTimeout = value }
        if let value = text("RELAY_RATE_LIMIT") {
            switch value {
            case "spec": rateLimitEnabled = true
            case "off": rateLimitEnabled = false
            default: throw RelayError(code: .invalidConfiguration, message: "RELAY_RATE_LIMIT must be spec or off")
            }
        }
        if let value = text("RELAY_RATE_LIMIT_SHARE") {
            guard let share = Double(value), share.isFinite, share > 0, share <= 1 else {
                throw RelayError(
                    code: .invalidConfiguration,
                    message: "RELAY_RATE_LIMIT_SHARE must be a number in (0, 1], such as 0.5")
            }
            rateLimitShare = share
        }
        if let value = try duration("RELAY_RATE_LIMIT_MAX_WAIT") {
            guard value <= .seconds(60) else {
                throw RelayError(code: .invalidConfiguration, message: "RELAY_RATE_LIMIT_MAX_WAIT must be at most 60s")
            }
            rateLimitMaxWait = value
        }
        coalescing = try ProfileCoalescer.Settings.fromEnvironment(environment, rateLimitEnabled: rateLimitEnabled)
        if let value = text("RELAY_BATCH_WINDOW") {
            guard let parsed = Self.parseDuration(value), parsed <= .seconds(1) else {
                throw RelayError(
                    code: .invalidConfiguration,
                    message: "RELAY_BATCH_WINDOW must be a duration from 0 (no batching) to 1s, such as 25ms")
            }
            batchWindow = parsed
        }
        if let value = text("RELAY_FAIR_SHARE") {
            guard let share = Double(value), share.isFinite, share >= 0, share <= 1 else {
                throw RelayError(
                    code: .invalidConfiguration,
                    message: "RELAY_FAIR_SHARE must be a number from 0 (fairness off) to 1, such as 0.25")
            }
            fairShare = share
        }
        if let value = text("RELAY_REPLY_TO_PATTERN") {
            do {
                replyTo = try ReplyToPolicy(specification: value)
            } catch {
                throw RelayError(
                    code: .invalidConfiguration, message: "RELAY_REPLY_TO_PATTERN: \(error)", underlying: error)
            }
        }
        if text("RELAY_ENABLE_FAULT_INJECTION") == "1", let point = text("RELAY_FAULT_CRASH_AT") {
            guard let stage = CrashPoint.Stage(rawValue: point) else {
                throw RelayError(
                    code: .invalidConfiguration,
                    message: "RELAY_FAULT_CRASH_AT must be one of "
                        + CrashPoint.Stage.allCases.map(\.rawValue).joined(separator: ", "))
            }
            crashPoint = CrashPoint(stage: stage, commandID: text("RELAY_FAULT_CRASH_COMMAND_ID"))
        }
    }

    /// The shortest `RELAY_API_TOKEN` / `RELAY_LINK_SECRET` accepted outside `--dev`, in bytes.
    public static let minimumSecretBytes = 32

    /// The longest duration any setting or option accepts: one year. Longer ones are refused with a clear
    /// error instead of overflowing some later arithmetic.
    public static let maximumDuration: Duration = .seconds(365 * 86_400)
    static let maximumDurationText = "365d"

    /// Parses `500ms`, `30s`, `2m`, `1h`, `7d`, or a bare number of seconds, up to ``maximumDuration``; nil
    /// for anything else (also for longer durations).
    public static func parseDuration(_ text: String) -> Duration? {
        guard let milliseconds = parseDurationMilliseconds(text), .milliseconds(milliseconds) <= maximumDuration
        else { return nil }
        return .milliseconds(milliseconds)
    }

    /// The duration in milliseconds, saturating at `Int64.max` (never wrapping or trapping) for absurd values.
    static func parseDurationMilliseconds(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        var value: Int64?
        var unit: Int64 = 1000
        for (suffix, milliseconds) in units where text.hasSuffix(suffix) {
            if let number = Int64(text.dropLast(suffix.count)), number >= 0 {
                value = number
                unit = milliseconds
                break
            }
        }
        if value == nil, let number = Int64(text), number >= 0 { value = number }
        guard let value else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: unit)
        return overflow ? .max : product
    }

    /// Settings that are valid each but work against each other; `consume` logs each one as a warning at startup
    /// (a refusal would stop a fleet for a tuning mistake whose cost is bounded).
    public var cautions: [String] {
        var found: [String] = []
        if let coalescing, coalescing.lockTTL <= httpTimeout {
            found.append(
                "RELAY_COALESCE_LOCK_TTL (\(coalescing.lockTTL.roundedDescription)) is not longer than "
                    + "RELAY_HTTP_TIMEOUT (\(httpTimeout.roundedDescription)): a bulk import submit still waiting for "
                    + "Klaviyo can be taken for a dead one, and another process then adopts a job or submits the "
                    + "batch again (a second job of the same upserts); set the lock TTL above the HTTP timeout")
        }
        let parkable = (RelayTopology.defaultRetryTiers.first?.delay ?? .zero) + RetryPolicy.defaultHeldBackReturnMargin
        if rateLimitEnabled, rateLimitMaxWait < parkable {
            found.append(
                "RELAY_RATE_LIMIT_MAX_WAIT (\(rateLimitMaxWait.roundedDescription)) is below \(parkable.roundedDescription) "
                    + "(the shortest retry tier plus \(RetryPolicy.defaultHeldBackReturnMargin.roundedDescription)): a "
                    + "command held back for less than that is parked in the shortest tier, can come back after its "
                    + "rate-limiter slot and then queues for a new one, leaving its slot of the quota unused")
        }
        return found
    }

    /// Non-secret settings, for the startup log line.
    public var description: String {
        "amqp=\(amqpURL.split(separator: ",").map { redactURL(String($0)) }.joined(separator: ",")) "
            + "redis=\(redactURL(redisURL)) klaviyo=\(klaviyoBaseURL) prefix=\(queuePrefix) "
            + "topology=\(topologyMode.rawValue) "
            + "concurrency=\(concurrency) oauth=\(klaviyoClientID == nil ? "disabled" : "enabled") "
            + "keys=\(encryptionKeys.keyIDs.joined(separator: ",")) "
            + (rateLimitEnabled
                ? "rate_limit=spec share=\(rateLimitShare) max_wait=\(rateLimitMaxWait.roundedDescription) "
                : "rate_limit=off ")
            + "batch_window=\(batchWindow == .zero ? "off" : batchWindow.roundedDescription) "
            + "\(coalescing?.description ?? "coalesce=off") "
            + "fair_share=\(fairShare == 0 ? "off" : "\(fairShare)") "
            + "reply_to=\(replyTo) "
            + "dev=\(isDevelopment)"
    }
}

/// Replaces the password of `scheme://user:password@host` with `***`.
public func redactURL(_ url: String) -> String {
    guard let schemeEnd = url.range(of: "://"), let at = url[schemeEnd.upperBound...].lastIndex(of: "@") else {
        return url
    }
    let userInfo = url[schemeEnd.upperBound..<at]
    guard let colon = userInfo.firstIndex(of: ":") else { return url }
    return String(url[..<schemeEnd.upperBound]) + userInfo[..<colon] + ":***" + url[at...]
}
