#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Wall-clock timestamps in RFC 3339 (UTC, milliseconds), as results and dead-letter headers carry them.
public enum Timestamp {
    /// Now, as `2026-11-29T12:00:00.123Z`.
    public static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return format(seconds: Int(spec.tv_sec), milliseconds: Int(spec.tv_nsec / 1_000_000))
    }

    /// Milliseconds since the Unix epoch.
    public static func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec / 1_000_000)
    }

    /// Seconds since the Unix epoch.
    public static func nowSeconds() -> Int64 {
        nowMilliseconds() / 1000
    }

    /// Earliest epoch second formatted: 0001-01-01T00:00:00Z.
    static let minimumSeconds = -62_135_596_800
    /// Latest epoch second formatted: 9999-12-31T23:59:59Z.
    static let maximumSeconds = 253_402_300_799

    /// Formats epoch seconds plus milliseconds. Total: seconds outside years 1…9999 are shown as the nearest of
    /// those (RFC 3339 has four-digit years) and milliseconds are limited to 0...999.
    public static func format(seconds: Int, milliseconds: Int = 0) -> String {
        var time = time_t(min(max(seconds, minimumSeconds), maximumSeconds))
        let milliseconds =
            seconds > maximumSeconds ? 999 : seconds < minimumSeconds ? 0 : min(max(milliseconds, 0), 999)
        var parts = tm()
        gmtime_r(&time, &parts)
        // Written digit by digit straight into the string's storage (a timestamp goes into every result): one
        // allocation, no intermediate buffer.
        return String(unsafeUninitializedCapacity: 24) { text in
            var position = 0
            func append(_ value: Int, width: Int, then separator: UInt8) {
                var divisor = 1
                for _ in 1..<width { divisor *= 10 }
                var rest = value
                while divisor > 0 {
                    text[position] = UInt8(ascii: "0") + UInt8(rest / divisor)
                    position += 1
                    rest %= divisor
                    divisor /= 10
                }
                text[position] = separator
                position += 1
            }
            append(Int(parts.tm_year) + 1900, width: 4, then: UInt8(ascii: "-"))
            append(Int(parts.tm_mon) + 1, width: 2, then: UInt8(ascii: "-"))
            append(Int(parts.tm_mday), width: 2, then: UInt8(ascii: "T"))
            append(Int(parts.tm_hour), width: 2, then: UInt8(ascii: ":"))
            append(Int(parts.tm_min), width: 2, then: UInt8(ascii: ":"))
            append(Int(parts.tm_sec), width: 2, then: UInt8(ascii: "."))
            append(milliseconds, width: 3, then: UInt8(ascii: "Z"))
            return position
        }
    }

    /// Formats epoch milliseconds (any value; see ``format(seconds:milliseconds:)``).
    public static func format(milliseconds: Int64) -> String {
        // Floor division, so -1 ms is 1969-12-31T23:59:59.999Z.
        let (quotient, remainder) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        let seconds = remainder < 0 ? quotient - 1 : quotient
        return format(seconds: Int(seconds), milliseconds: Int(remainder < 0 ? remainder + 1000 : remainder))
    }

    /// Formats an epoch-seconds timestamp from outside (an AMQP `timestamp` property or field), whatever its
    /// value (see ``format(seconds:milliseconds:)``).
    public static func format(epochSeconds: UInt64) -> String {
        format(seconds: Int(clamping: epochSeconds))
    }

    /// Parses `2026-11-29T12:00:00Z` or `2026-11-29T12:00:00.123Z` (UTC, as ``now()`` writes them) into epoch
    /// milliseconds; `nil` for anything else.
    public static func parseMilliseconds(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else {
                    return nil
                }
                value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
            }
            return value
        }
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var milliseconds = 0
        if bytes.count > 20 {
            guard bytes[19] == UInt8(ascii: "."), bytes.count <= 30, let fraction = number(20..<(bytes.count - 1))
            else { return nil }
            let digits = bytes.count - 21
            milliseconds = digits >= 3 ? fraction / Int(pow10(digits - 3)) : fraction * Int(pow10(3 - digits))
        } else if bytes[19] != UInt8(ascii: "Z") {
            return nil
        }
        // Days from the civil date (Howard Hinnant's algorithm), valid for the proleptic Gregorian calendar.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
        return Int64(seconds) * 1000 + Int64(milliseconds)
    }

    private static func pow10(_ exponent: Int) -> Int64 {
        var value: Int64 = 1
        for _ in 0..<max(0, exponent) { value *= 10 }
        return value
    }
}
