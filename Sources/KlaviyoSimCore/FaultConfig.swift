/// Injected faults (`PUT /_sim/faults`). All rates are probabilities in 0…1, drawn per request.
///
/// Faults are decided and applied BEFORE any state change, so a failed request never changed anything;
/// the one exception is `fail_after_apply_rate`, which applies the request and then answers 500 (an
/// "ambiguous failure" for testing retries of non-idempotent calls).
public struct FaultConfig: Sendable, Equatable {
    /// Fixed extra latency, milliseconds.
    public var latencyMs: Int = 0
    /// Uniform random extra latency on top, milliseconds.
    public var latencyJitterMs: Int = 0
    /// Probability of answering one of `errorStatuses`.
    public var errorRate: Double = 0
    /// Statuses to pick from for injected errors.
    public var errorStatuses: [Int] = [500, 503]
    /// Probability of answering 429.
    public var throttleRate: Double = 0
    /// `Retry-After` for injected 429s, seconds.
    public var retryAfterSeconds: Int = 1
    /// Probability of closing the connection with no response.
    public var resetRate: Double = 0
    /// Probability of waiting `timeoutMs` and then answering 504.
    public var timeoutRate: Double = 0
    /// How long a timeout fault waits, milliseconds.
    public var timeoutMs: Int = 30_000
    /// Probability of applying the change and then answering 500.
    public var failAfterApplyRate: Double = 0
    /// Only this admin account id (nil = all accounts).
    public var accountId: String?
    /// Only paths with one of these prefixes (nil = all paths).
    public var paths: [String]?

    /// No faults.
    public init() {}

    /// Whether the config applies to a request.
    func applies(accountId: String?, path: String) -> Bool {
        if let only = self.accountId, only != accountId { return false }
        if let paths, !paths.contains(where: { path.hasPrefix($0) }) { return false }
        return true
    }

    /// Parses the admin body. Unknown keys are rejected so typos are not silently ignored.
    init(json: JSONValue) throws(KlaviyoAPIError) {
        guard let o = json.objectValue else { throw .invalid("Body must be a JSON object.", pointer: "") }
        func int(_ k: String) throws(KlaviyoAPIError) -> Int? {
            guard let v = o[k], !v.isNull else { return nil }
            guard let i = v.intValue, i >= 0 else {
                throw .invalid("'\(k)' must be a non-negative integer.", pointer: "/\(k)")
            }
            return i
        }
        func rate(_ k: String) throws(KlaviyoAPIError) -> Double? {
            switch o[k] {
            case nil, .null?: return nil
            case .int(let i)? where (0...1).contains(i): return Double(i)
            case .double(let d)? where (0...1).contains(d): return d
            default: throw .invalid("'\(k)' must be a number between 0 and 1.", pointer: "/\(k)")
            }
        }
        let known: Set<String> = [
            "latency_ms", "latency_jitter_ms", "error_rate", "error_statuses", "throttle_rate", "retry_after_seconds",
            "reset_rate", "timeout_rate", "timeout_ms", "fail_after_apply_rate", "account_id", "paths",
        ]
        if let unknown = o.keys.first(where: { !known.contains($0) }) {
            throw .invalid("Unknown fault setting '\(unknown)'.", pointer: "/\(unknown)")
        }
        latencyMs = try int("latency_ms") ?? 0
        latencyJitterMs = try int("latency_jitter_ms") ?? 0
        errorRate = try rate("error_rate") ?? 0
        if let statuses = o["error_statuses"], !statuses.isNull {
            guard let list = statuses.arrayValue?.compactMap(\.intValue), !list.isEmpty,
                list.allSatisfy({ (400...599).contains($0) })
            else {
                throw .invalid(
                    "'error_statuses' must be a non-empty list of 4xx/5xx codes.", pointer: "/error_statuses")
            }
            errorStatuses = list
        }
        throttleRate = try rate("throttle_rate") ?? 0
        retryAfterSeconds = try int("retry_after_seconds") ?? 1
        resetRate = try rate("reset_rate") ?? 0
        timeoutRate = try rate("timeout_rate") ?? 0
        timeoutMs = try int("timeout_ms") ?? 30_000
        failAfterApplyRate = try rate("fail_after_apply_rate") ?? 0
        accountId = o["account_id"]?.stringValue
        if let p = o["paths"], !p.isNull {
            guard let list = p.arrayValue?.compactMap(\.stringValue) else {
                throw .invalid("'paths' must be a list of path prefixes.", pointer: "/paths")
            }
            paths = list
        }
    }

    /// The admin representation.
    var json: JSONValue {
        [
            "latency_ms": .int(latencyMs), "latency_jitter_ms": .int(latencyJitterMs), "error_rate": .double(errorRate),
            "error_statuses": .array(errorStatuses.map { .int($0) }), "throttle_rate": .double(throttleRate),
            "retry_after_seconds": .int(retryAfterSeconds), "reset_rate": .double(resetRate),
            "timeout_rate": .double(timeoutRate), "timeout_ms": .int(timeoutMs),
            "fail_after_apply_rate": .double(failAfterApplyRate), "account_id": .optional(accountId),
            "paths": paths.map { .array($0.map { .string($0) }) } ?? .null,
        ]
    }
}
