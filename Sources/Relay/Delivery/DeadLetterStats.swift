public import Klaviyo

/// Counts of dead letters by error code, account, command type and age (`klaviyo-relay dlq stats`): what an
/// on-call engineer asks first ("what is failing, for whom, since when").
public struct DeadLetterStats: Sendable, Hashable {
    /// The age buckets, youngest first: a dead letter falls in the first whose limit exceeds its age.
    public static let ageBuckets: [(label: String, limit: Duration)] = [
        ("<1h", .seconds(3600)), ("1h-24h", .seconds(86_400)), ("1d-7d", .seconds(7 * 86_400)),
        (">=7d", .seconds(Int64.max / 2)),
    ]
    /// The bucket of a dead letter whose time is unknown (no `x-relay-last-failed-at`, no broker death time).
    public static let unknownAge = "unknown"

    /// Dead letters counted.
    public private(set) var total = 0
    /// By `x-relay-error-code` (or the broker's reason).
    public private(set) var byCode: [String: Int] = [:]
    /// By account id (`-` when the body names none).
    public private(set) var byAccount: [String: Int] = [:]
    /// By command type (the original routing key when the body names none).
    public private(set) var byType: [String: Int] = [:]
    /// By age bucket label (``ageBuckets`` and ``unknownAge``).
    public private(set) var byAge: [String: Int] = [:]

    /// Empty counts.
    public init() {}

    /// Counts `summaries` as of `nowMilliseconds`.
    public init(_ summaries: [DeadLetterSummary], nowMilliseconds: Int64) {
        for summary in summaries { add(summary, nowMilliseconds: nowMilliseconds) }
    }

    /// Counts one dead letter.
    public mutating func add(_ summary: DeadLetterSummary, nowMilliseconds: Int64) {
        total += 1
        byCode[summary.code, default: 0] += 1
        byAccount[summary.accountID ?? "-", default: 0] += 1
        byType[summary.type ?? summary.originalRoutingKey, default: 0] += 1
        byAge[Self.ageBucket(summary.age(nowMilliseconds: nowMilliseconds)), default: 0] += 1
    }

    /// The age bucket label of an age (nil: ``unknownAge``).
    public static func ageBucket(_ age: Duration?) -> String {
        guard let age else { return unknownAge }
        return ageBuckets.first { age < $0.limit }?.label ?? ageBuckets[ageBuckets.count - 1].label
    }

    /// `[(key, count)]` largest first, ties by key.
    public static func ranked(_ counts: [String: Int]) -> [(key: String, count: Int)] {
        counts.map { (key: $0.key, count: $0.value) }.sorted {
            $0.count != $1.count ? $0.count > $1.count : $0.key < $1.key
        }
    }

    /// `{"total", "by_code", "by_account", "by_type", "by_age"}`.
    public var json: JSONValue {
        func object(_ counts: [String: Int]) -> JSONValue { .object(counts.mapValues { .int(Int64($0)) }) }
        return .object([
            "total": .int(Int64(total)), "by_code": object(byCode), "by_account": object(byAccount),
            "by_type": object(byType), "by_age": object(byAge),
        ])
    }
}
