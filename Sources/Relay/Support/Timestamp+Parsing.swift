extension Timestamp {
    /// Epoch seconds (rounded down) of an RFC 3339 date-time already accepted by `Check.isRFC3339`.
    static func epochSeconds(rfc3339 text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20 else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                guard index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 else { return nil }
                value = value * 10 + Int64(bytes[index] - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var index = 19
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
        }
        var offset: Int64 = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            guard let offsetHour = number((index + 1)..<(index + 3)),
                let offsetMinute = number((index + 4)..<(index + 6))
            else { return nil }
            offset = (offsetHour * 60 + offsetMinute) * 60 * (bytes[index] == UInt8(ascii: "-") ? -1 : 1)
        }
        // Days from civil (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offset
    }

    /// Formats epoch seconds as `2026-11-29T12:00:00Z` (no fraction).
    static func formatWholeSeconds(_ seconds: Int64) -> String {
        let text = format(seconds: Int(seconds))
        return String(text.prefix(19)) + "Z"
    }
}
