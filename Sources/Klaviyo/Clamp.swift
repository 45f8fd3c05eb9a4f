/// Turns numbers that come from outside the process (Klaviyo's and the OAuth server's answers, broker headers,
/// Redis values, configuration, command-line options) into values the relay can compute with.
///
/// Swift traps on integer overflow and on converting a floating-point value that does not fit, so an absurd
/// number (`Retry-After: 100000000000000000`, `expires_in: 1e20`, an `x-death` time of `UInt64.max`) must never
/// reach `Int64(_:)`, `* 1000` or `Duration` arithmetic unchecked. Every such value goes through one of these
/// helpers first: each one is total (never traps) and documents the range it returns.
public enum Clamp {
    /// Longest `Retry-After` honoured: one day. Larger answers are taken as this.
    public static let maxRetryAfter: Duration = .seconds(86_400)

    /// Longest OAuth access-token lifetime believed: one year. Larger `expires_in` answers are taken as this.
    public static let maxTokenLifetimeSeconds: Int64 = 365 * 86_400

    /// Shortest OAuth access-token lifetime believed: one minute. A shorter `expires_in` (`0` included) is taken as
    /// this. A token believed expired the moment it is stored made every command of the account refresh it again,
    /// each refresh a call to Klaviyo's token endpoint (one for the whole app) that also rotates the refresh token;
    /// a token Klaviyo really ends sooner is refreshed after its first 401, once per version across all processes.
    public static let minTokenLifetimeSeconds: Int64 = 60

    /// The `expires_in` assumed when a token answer has none, or one that is not a usable number.
    public static let defaultTokenLifetimeSeconds: Int64 = 3600

    /// Latest epoch second that is believed as a timestamp: 9999-12-31T23:59:59Z (RFC 3339's last year).
    public static let maxEpochSeconds: Int64 = 253_402_300_799

    /// `value` limited to `range`.
    public static func value<T: Comparable>(_ value: T, to range: ClosedRange<T>) -> T {
        min(max(value, range.lowerBound), range.upperBound)
    }

    /// A floating-point value as a whole number in `range`, rounded toward zero; nil for NaN. Infinities and
    /// values beyond the range end up at its bounds.
    public static func int64(_ value: Double, to range: ClosedRange<Int64>) -> Int64? {
        guard !value.isNaN else { return nil }
        if value <= Double(range.lowerBound) { return range.lowerBound }
        // Double(Int64.max) rounds up to 2^63, so compare before converting.
        if value >= Double(range.upperBound) { return range.upperBound }
        return Self.value(Int64(value.rounded(.towardZero)), to: range)
    }

    /// `a - b`, saturating at `Int64.min` / `Int64.max` instead of trapping.
    public static func difference(_ a: Int64, _ b: Int64) -> Int64 {
        let (result, overflow) = a.subtractingReportingOverflow(b)
        guard overflow else { return result }
        return b < 0 ? .max : .min
    }

    /// `a + b`, saturating at `Int64.min` / `Int64.max` instead of trapping.
    public static func sum(_ a: Int64, _ b: Int64) -> Int64 {
        let (result, overflow) = a.addingReportingOverflow(b)
        guard overflow else { return result }
        return b > 0 ? .max : .min
    }

    /// A duration limited to `0...maximum` (negative durations become zero).
    public static func duration(_ duration: Duration, max maximum: Duration) -> Duration {
        value(duration, to: .zero...maximum)
    }

    /// Epoch milliseconds of an epoch-seconds timestamp from outside (an AMQP `timestamp`, an `x-death` time);
    /// nil when it is not a plausible time (before 1970 or after 9999), rather than a guess.
    public static func epochMilliseconds(fromEpochSeconds seconds: UInt64) -> Int64? {
        guard seconds <= UInt64(maxEpochSeconds) else { return nil }
        return Int64(seconds) * 1000
    }

    /// Epoch milliseconds of a signed epoch-seconds value (an `x-death` time sent as an integer); nil outside
    /// 1970…9999.
    public static func epochMilliseconds(fromEpochSeconds seconds: Int64) -> Int64? {
        guard seconds >= 0 else { return nil }
        return epochMilliseconds(fromEpochSeconds: UInt64(seconds))
    }

    /// The wait a `Retry-After` header asks for (RFC 9110 §10.2.3), within `0...maxRetryAfter`.
    ///
    /// Accepts delay-seconds (also fractional, rounded up, or absurdly large, taken as ``maxRetryAfter``) and an
    /// HTTP-date (IMF-fixdate, `Wed, 21 Oct 2015 07:28:00 GMT`: the time left until then, zero if it is past).
    /// A repeated header folded into one value (`5, 10`) counts by its first element. Returns nil for anything
    /// else (negative numbers, NaN, garbage): the caller then uses its own default.
    public static func retryAfter(_ text: String, nowEpochSeconds: Int64) -> Duration? {
        let trimmed = text.trimmingASCIIWhitespace()
        if let seconds = delaySeconds(trimmed) { return seconds }
        if let date = imfFixdateEpochSeconds(trimmed) {
            let left = int64(Double(date) - Double(nowEpochSeconds), to: 0...maxRetryAfter.components.seconds) ?? 0
            return .seconds(left)
        }
        if let comma = trimmed.firstIndex(of: ","),
            let first = delaySeconds(trimmed[..<comma].trimmingASCIIWhitespace())
        {
            return first
        }
        return nil
    }

    /// A `Retry-After` duration limited to `0...maxRetryAfter`.
    public static func retryAfter(_ duration: Duration) -> Duration {
        Self.duration(duration, max: maxRetryAfter)
    }

    /// delay-seconds: digits, optionally with a fraction (rounded up to the millisecond); a value too large even
    /// for a `Double` (infinity) is the maximum too.
    static func delaySeconds(_ text: String) -> Duration? {
        guard !text.isEmpty, text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") }),
            let value = Double(text)
        else { return nil }
        let maximum = maxRetryAfter.components.seconds * 1000
        return .milliseconds(int64((value * 1000).rounded(.up), to: 0...maximum) ?? 0)
    }

    /// Epoch seconds of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`); nil for any other text.
    static func imfFixdateEpochSeconds(_ text: String) -> Int64? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[0].count == 4, parts[0].hasSuffix(","), parts[5] == "GMT",
            parts[1].count == 2, let day = Int64(parts[1]), (1...31).contains(day),
            let monthIndex = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
                .firstIndex(of: String(parts[2])),
            parts[3].count == 4, let year = Int64(parts[3]), year >= 1970
        else { return nil }
        let clock = parts[4].split(separator: ":", omittingEmptySubsequences: false)
        guard clock.count == 3, clock.allSatisfy({ $0.count == 2 }), let hour = Int64(clock[0]),
            let minute = Int64(clock[1]), let second = Int64(clock[2]), (0..<24).contains(hour),
            (0..<60).contains(minute), (0...60).contains(second)
        else { return nil }
        let month = Int64(monthIndex) + 1
        // Days from the civil date (Howard Hinnant's algorithm); all inputs are small, nothing can overflow.
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return days * 86_400 + hour * 3600 + minute * 60 + min(second, 59)
    }

    /// The `expires_in` of a token answer as whole seconds in `minTokenLifetimeSeconds...maxTokenLifetimeSeconds`:
    /// a number (also fractional, rounded down, or `1e20`, taken as the maximum) or a numeric string; a missing,
    /// negative, NaN or non-numeric value gives ``defaultTokenLifetimeSeconds``.
    public static func tokenLifetimeSeconds(_ value: JSONValue?) -> Int64 {
        let range: ClosedRange<Int64> = minTokenLifetimeSeconds...maxTokenLifetimeSeconds
        switch value {
        case .int(let seconds)? where seconds >= 0:
            return Self.value(seconds, to: range)
        case .double(let seconds)? where seconds >= 0:
            return int64(seconds, to: range) ?? defaultTokenLifetimeSeconds
        case .string(let text)?:
            let trimmed = text.trimmingASCIIWhitespace()
            if let seconds = Int64(trimmed), seconds >= 0 { return Self.value(seconds, to: range) }
            if trimmed.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") }),
                let seconds = Double(trimmed), seconds >= 0
            {
                return int64(seconds, to: range) ?? defaultTokenLifetimeSeconds
            }
            return defaultTokenLifetimeSeconds
        default:
            return defaultTokenLifetimeSeconds
        }
    }

    /// A token lifetime limited to `minTokenLifetimeSeconds...maxTokenLifetimeSeconds`; negative values give the
    /// default.
    public static func tokenLifetimeSeconds(_ seconds: Int64) -> Int64 {
        guard seconds >= 0 else { return defaultTokenLifetimeSeconds }
        return value(seconds, to: minTokenLifetimeSeconds...maxTokenLifetimeSeconds)
    }
}

extension StringProtocol {
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        return String(self.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
