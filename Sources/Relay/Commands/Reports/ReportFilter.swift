import Klaviyo

/// A cheap check of a values report's `filter` against the rules the spec states: `equals(field,"v")` or
/// `contains-any(field,["a","b"])` on the report's fields, combined only with `and(…)`, one filter per field,
/// at most 100 values per `contains-any`, and `send_channel` values from email, sms, push-notification.
enum ReportFilter {
    /// Most values in one `contains-any` list.
    static let maxValues = 100

    /// The fields the filter names, in order; throws the first rule it breaks.
    @discardableResult
    static func validate(
        _ text: String, report: KlaviyoClient.ValuesReport, at pointer: String
    ) throws(SchemaViolation) -> [String] {
        var parser = Parser(bytes: Array(text.utf8), report: report, pointer: pointer)
        return try parser.parseFilter()
    }

    struct Parser {
        var bytes: [UInt8]
        var index = 0
        var report: KlaviyoClient.ValuesReport
        var pointer: String

        init(bytes: [UInt8], report: KlaviyoClient.ValuesReport, pointer: String) {
            self.bytes = bytes
            self.report = report
            self.pointer = pointer
        }

        func fail(_ message: String) -> SchemaViolation {
            SchemaViolation(pointer: pointer, message: "\(message) (at character \(index + 1))")
        }

        mutating func parseFilter() throws(SchemaViolation) -> [String] {
            var fields: [String] = []
            if lookingAt("and(") {
                index += 4
                repeat {
                    skipSpaces()
                    fields.append(try parseTerm())
                    skipSpaces()
                } while consume(UInt8(ascii: ","))
                guard consume(UInt8(ascii: ")")) else { throw fail("expected ',' or ')' in and(…)") }
                guard fields.count >= 2 else { throw fail("and(…) needs at least two filters") }
            } else {
                fields.append(try parseTerm())
            }
            skipSpaces()
            guard index == bytes.count else { throw fail("unexpected text after the filter") }
            var seen: Set<String> = []
            for field in fields where !seen.insert(field).inserted {
                throw SchemaViolation(
                    pointer: pointer, message: "filters \(field) more than once (one filter per field)")
            }
            return fields
        }

        mutating func parseTerm() throws(SchemaViolation) -> String {
            let isList: Bool
            if lookingAt("equals(") {
                index += 7
                isList = false
            } else if lookingAt("contains-any(") {
                index += 13
                isList = true
            } else if lookingAt("or(") || lookingAt("not(") {
                throw fail("only and(…) may combine filters")
            } else {
                throw fail("expected equals(…) or contains-any(…)")
            }
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: ",") && bytes[index] != UInt8(ascii: ")") {
                index += 1
            }
            let field = String(decoding: bytes[start..<index], as: UTF8.self).trimmingSpaces()
            guard report.fields.contains(field) else {
                throw SchemaViolation(
                    pointer: pointer,
                    message:
                        "cannot filter on \"\(field.prefix(64))\" (allowed: \(report.fields.joined(separator: ", ")))")
            }
            guard consume(UInt8(ascii: ",")) else { throw fail("expected ',' after the field") }
            skipSpaces()
            var values: [String] = []
            if isList {
                guard consume(UInt8(ascii: "[")) else { throw fail("contains-any needs a [\"…\"] list") }
                repeat {
                    skipSpaces()
                    values.append(try parseString())
                    skipSpaces()
                } while consume(UInt8(ascii: ","))
                guard consume(UInt8(ascii: "]")) else { throw fail("expected ',' or ']' in the list") }
                guard values.count <= ReportFilter.maxValues else {
                    throw SchemaViolation(
                        pointer: pointer,
                        message:
                            "contains-any on \(field) has \(values.count) values; at most \(ReportFilter.maxValues)")
                }
            } else {
                values.append(try parseString())
            }
            skipSpaces()
            guard consume(UInt8(ascii: ")")) else { throw fail("expected ')'") }
            if field == "send_channel",
                let bad = values.first(where: { !KlaviyoClient.reportSendChannels.contains($0) })
            {
                throw SchemaViolation(
                    pointer: pointer,
                    message: "send_channel \"\(bad.prefix(32))\" is not one of email, sms, push-notification")
            }
            return field
        }

        mutating func parseString() throws(SchemaViolation) -> String {
            guard consume(UInt8(ascii: "\"")) else { throw fail("expected a \"quoted\" value") }
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                guard bytes[index] != UInt8(ascii: "\\") else { throw fail("escapes are not allowed in values") }
                index += 1
            }
            guard index < bytes.count else { throw fail("unterminated \"quoted\" value") }
            let value = String(decoding: bytes[start..<index], as: UTF8.self)
            index += 1
            guard !value.isEmpty else { throw fail("values must not be empty") }
            return value
        }

        func lookingAt(_ prefix: String) -> Bool {
            let wanted = Array(prefix.utf8)
            return bytes.count - index >= wanted.count && Array(bytes[index..<(index + wanted.count)]) == wanted
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func skipSpaces() {
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
        }
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var text = Substring(self)
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }
}
