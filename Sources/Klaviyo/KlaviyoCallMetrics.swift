import Metrics

/// The Prometheus series of the calls ``KlaviyoClient`` makes (swift-metrics; names carry their unit).
///
/// Labels come from closed sets only: `operation` is the OpenAPI operation id of the call (a fixed list of the
/// spec's operations), `status` is a ``StatusClass``. No account id ever becomes a label.
public enum KlaviyoCallMetrics {
    /// Calls by `operation` and `status` (a ``StatusClass`` raw value).
    public static let callsTotal = "relay_klaviyo_calls_total"
    /// Latency of a call, by `operation` (from the request being handed to the transport to the answer).
    public static let callDuration = "relay_klaviyo_call_duration_seconds"
    /// `Retry-After` seconds of the 429 answers, by `operation`.
    public static let retryAfter = "relay_klaviyo_retry_after_seconds"
    /// Buckets of ``retryAfter`` (seconds): Klaviyo's windows are 1 s, 1 min and 1 day.
    public static let retryAfterBuckets: [Double] = [0, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 86400]
    /// Buckets of ``callDuration``.
    public static let callDurationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        .seconds(30),
    ]

    /// What a call came to, as the `status` label.
    public enum StatusClass: String, Sendable, CaseIterable {
        /// A 2xx answer.
        case success = "2xx"
        /// A 4xx answer other than 429.
        case clientError = "4xx"
        /// 429 Too Many Requests.
        case throttled = "429"
        /// A 5xx answer.
        case serverError = "5xx"
        /// Any other status (1xx, 3xx).
        case other = "other"
        /// No answer: the connection failed or broke.
        case network = "network"
        /// No answer in time.
        case timeout = "timeout"

        /// The class of an HTTP status.
        public init(status: Int) {
            switch status {
            case 200..<300: self = .success
            case 429: self = .throttled
            case 400..<500: self = .clientError
            case 500..<600: self = .serverError
            default: self = .other
            }
        }
    }

    /// Counts one call and records its latency.
    static func record(operationID: String, status: StatusClass, elapsed: Duration) {
        calls[operationID, status.rawValue].increment()
        durations[operationID].recordNanoseconds(elapsed.nanosecondsClamped)
    }

    private static let calls = MetricHandles {
        Counter(label: callsTotal, dimensions: [("operation", $0), ("status", $1)])
    }
    private static let durations = MetricHandles { operation, _ in
        Timer(label: callDuration, dimensions: [("operation", operation)])
    }

    /// Records the `Retry-After` of a 429 (already clamped to 0…1 day by
    /// ``KlaviyoClient/interpret(_:operationID:usedOAuth:)``).
    static func recordRetryAfter(operationID: String, _ delay: Duration) {
        let (seconds, attoseconds) = delay.components
        Recorder(label: retryAfter, dimensions: [("operation", operationID)], aggregate: true)
            .record(Double(seconds) + Double(attoseconds) / 1e18)
    }
}

extension Duration {
    /// Nanoseconds, saturating at `Int64.max`.
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        return Clamp.sum(whole, attoseconds / 1_000_000_000)
    }
}
