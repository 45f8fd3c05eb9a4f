import Foundation
import Klaviyo

/// A JSON document broke a schema rule at a JSON pointer.
struct SchemaViolation: Error, Sendable {
    var pointer: String
    var message: String

    var detail: String { "\(pointer.isEmpty ? "/" : pointer): \(message)" }
}

/// Small validation helpers over ``JSONValue`` that name the offending JSON pointer.
enum Check {
    static func object(_ value: JSONValue?, at pointer: String) throws(SchemaViolation) -> [String: JSONValue] {
        guard let value else { throw SchemaViolation(pointer: pointer, message: "is required") }
        guard case .object(let members) = value else {
            throw SchemaViolation(pointer: pointer, message: "must be an object, not \(value.typeName)")
        }
        return members
    }

    static func onlyKeys(
        _ members: [String: JSONValue], _ allowed: Set<String>, at pointer: String
    )
        throws(SchemaViolation)
    {
        // The first unknown member in key order is named; nothing is sorted or built when all are allowed.
        if let unknown = members.keys.lazy.filter({ !allowed.contains($0) }).min() {
            throw SchemaViolation(
                pointer: pointer + "/" + escape(unknown),
                message: "is not an allowed member (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    static func string(
        _ value: JSONValue?, at pointer: String, minLength: Int = 1, maxLength: Int = 10_000
    ) throws(SchemaViolation) -> String {
        guard let value else { throw SchemaViolation(pointer: pointer, message: "is required") }
        guard case .string(let text) = value else {
            throw SchemaViolation(pointer: pointer, message: "must be a string, not \(value.typeName)")
        }
        let count = text.unicodeScalars.count
        if count < minLength {
            throw SchemaViolation(pointer: pointer, message: minLength == 1 ? "must not be empty" : "is too short")
        }
        if count > maxLength {
            throw SchemaViolation(pointer: pointer, message: "is longer than \(maxLength) characters")
        }
        return text
    }

    /// An identifier-like token: letters, digits, `.`, `_`, `:`, `-`, starting with a letter or digit.
    static func token(_ value: JSONValue?, at pointer: String, maxLength: Int = 128) throws(SchemaViolation) -> String {
        let text = try string(value, at: pointer, maxLength: maxLength)
        var first = true
        for byte in text.utf8 {
            let isAlphanumeric =
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            let isPunctuation =
                byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":")
                || byte == UInt8(ascii: "-")
            if !(isAlphanumeric || (!first && isPunctuation)) {
                throw SchemaViolation(
                    pointer: pointer,
                    message: "must contain only letters, digits, '.', '_', ':' and '-', starting with a letter or digit"
                )
            }
            first = false
        }
        return text
    }

    /// A Klaviyo resource id that becomes a URL path segment (`/api/profiles/{id}`): a non-empty string of at
    /// most `maxLength` characters that is not `.` or `..` (which a URL resolver would turn into another path).
    static func resourceID(
        _ value: JSONValue?, at pointer: String, maxLength: Int = 64
    ) throws(SchemaViolation)
        -> String
    {
        let text = try string(value, at: pointer, maxLength: maxLength)
        guard text != "." && text != ".." else {
            throw SchemaViolation(pointer: pointer, message: "must be a resource id, not \"\(text)\"")
        }
        return text
    }

    static func escape(_ key: String) -> String {
        key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    /// RFC 3339 date-time (`2026-11-29T12:00:00Z`, fractional seconds and offsets allowed).
    static func isRFC3339(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20 else { return false }
        func digits(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 else { return nil }
                value = value * 10 + Int(bytes[index] - 0x30)
            }
            return value
        }
        guard digits(0..<4) != nil, bytes[4] == UInt8(ascii: "-"), let month = digits(5..<7),
            bytes[7] == UInt8(ascii: "-"), let day = digits(8..<10),
            bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"), let hour = digits(11..<13),
            bytes[13] == UInt8(ascii: ":"), let minute = digits(14..<16), bytes[16] == UInt8(ascii: ":"),
            let second = digits(17..<19)
        else { return false }
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60 else {
            return false
        }
        var index = 19
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            guard index > start else { return false }
        }
        guard index < bytes.count else { return false }
        if bytes[index] == UInt8(ascii: "Z") || bytes[index] == UInt8(ascii: "z") {
            return index + 1 == bytes.count
        }
        guard bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-"), index + 6 == bytes.count,
            let offsetHour = digits((index + 1)..<(index + 3)), bytes[index + 3] == UInt8(ascii: ":"),
            let offsetMinute = digits((index + 4)..<(index + 6))
        else { return false }
        return offsetHour < 24 && offsetMinute < 60
    }

    /// A pragmatic email check: one `@`, a non-empty local part, a dotted domain, no spaces.
    static func isEmail(_ text: String) -> Bool {
        guard text.utf8.count <= 254 else { return false }
        // Nearly every address is ASCII: checked on its bytes, which for ASCII give the same answer as its
        // Characters (the only multi-scalar ASCII Character, CR LF, is whitespace either way) without grapheme
        // breaking and Unicode property lookups.
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return isASCIIEmail(text.utf8) }
        return isUnicodeEmail(text)
    }

    /// ``isEmail(_:)`` on the bytes of an ASCII address.
    static func isASCIIEmail(_ bytes: String.UTF8View) -> Bool {
        var localBytes = 0
        var atSeen = false
        var labels = 0
        var labelBytes = 0
        for byte in bytes {
            switch byte {
            case 0x09...0x0D, 0x20: return false
            case UInt8(ascii: "@"):
                guard !atSeen, localBytes > 0, localBytes <= 64 else { return false }
                atSeen = true
            case UInt8(ascii: ".") where atSeen:
                guard labelBytes > 0 else { return false }
                labels += 1
                labelBytes = 0
            default:
                if atSeen { labelBytes += 1 } else { localBytes += 1 }
            }
        }
        return atSeen && labels >= 1 && labelBytes > 0
    }

    /// ``isEmail(_:)`` on Characters: one `@`, a local part of 1 to 64 bytes, a domain of two or more non-empty
    /// labels, no whitespace.
    static func isUnicodeEmail(_ text: String) -> Bool {
        guard !text.contains(where: { $0.isWhitespace }) else { return false }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64 else { return false }
        let labels = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { !$0.isEmpty }
    }

    /// E.164: `+` then 7 to 15 digits, the first not zero.
    static func isE164(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 8, bytes.count <= 16, bytes[0] == UInt8(ascii: "+"), bytes[1] != UInt8(ascii: "0") else {
            return false
        }
        return bytes.dropFirst().allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}
