import Foundation

/// A parsed `filter` for `GET /api/campaigns`: one condition, or `and(…)` of several, of those the spec allows
/// for this endpoint (`messages.channel` equals; `name` contains; `status` equals or any; `archived` equals;
/// `id` any; `created_at`, `updated_at`, `scheduled_at` greater-or-equal, greater-than, less-or-equal,
/// less-than). The spec requires a `messages.channel` condition. Strings are quoted with `"` or `'` (a backslash
/// escapes the next character); date-times and booleans are not quoted, as on Klaviyo (a quoted date-time is an
/// invalid filter there too). Spaces between tokens are ignored.
struct CampaignFilter: Sendable, Equatable {
    /// One condition of the filter.
    enum Condition: Sendable, Equatable {
        /// `equals(messages.channel,'email')`.
        case channel(String)
        /// `contains(name,"…")` (case-sensitive).
        case nameContains(String)
        /// `equals(status,"…")` or `any(status,[…])`.
        case status([String])
        /// `equals(archived,true|false)`.
        case archived(Bool)
        /// `any(id,[…])`.
        case id([String])
        /// A comparison of `created_at`, `updated_at` or `scheduled_at` with epoch seconds.
        case time(field: String, comparison: Comparison, seconds: Double)
    }

    /// A date-time comparison operator.
    enum Comparison: String, Sendable, Equatable, CaseIterable {
        case greaterOrEqual = "greater-or-equal"
        case greaterThan = "greater-than"
        case lessOrEqual = "less-or-equal"
        case lessThan = "less-than"

        func holds(_ value: Double, _ bound: Double) -> Bool {
            switch self {
            case .greaterOrEqual: value >= bound
            case .greaterThan: value > bound
            case .lessOrEqual: value <= bound
            case .lessThan: value < bound
            }
        }
    }

    /// The conditions, all of which must hold.
    let conditions: [Condition]

    /// The date-time fields the spec lets this endpoint compare.
    static let timeFields: Set<String> = ["created_at", "updated_at", "scheduled_at"]

    init(parsing text: String) throws(KlaviyoAPIError) {
        var parser = Parser(text)
        let conditions = try parser.filter()
        guard conditions.contains(where: { if case .channel = $0 { true } else { false } }) else {
            throw Parser.bad(
                "a channel filter is required, e.g. equals(messages.channel,'email') or "
                    + "and(equals(messages.channel,'email'),…).")
        }
        self.conditions = conditions
    }

    /// Whether a campaign with these values passes every condition (`scheduledAt` nil: not scheduled).
    func matches(
        id: String, channel: String, name: String, status: String, archived: Bool, createdAt: String,
        updatedAt: String, scheduledAt: String?
    ) -> Bool {
        conditions.allSatisfy { condition in
            switch condition {
            case .channel(let wanted): return channel == wanted
            case .nameContains(let part): return name.contains(part)
            case .status(let statuses): return statuses.contains(status)
            case .archived(let wanted): return archived == wanted
            case .id(let ids): return ids.contains(id)
            case .time(let field, let comparison, let bound):
                let text = field == "created_at" ? createdAt : field == "updated_at" ? updatedAt : scheduledAt
                guard let text, let seconds = KlaviyoSimulator.epochSeconds(text) else { return false }
                return comparison.holds(seconds, bound)
            }
        }
    }

    /// A value in a condition: quoted string, list, or bare word (date-time, boolean).
    enum Value: Equatable {
        case quoted(String)
        case list([Value])
        case bare(String)
    }

    /// A recursive-descent parser of Klaviyo's filter syntax, restricted to what this endpoint allows.
    struct Parser {
        let characters: [Character]
        var index = 0

        init(_ text: String) {
            characters = Array(text.trimmingCharacters(in: .whitespaces))
        }

        static func bad(_ why: String) -> KlaviyoAPIError {
            .invalid("Invalid filter provided: \(why)", parameter: "filter")
        }

        /// `and(condition,condition,…)` or one condition, and nothing after it.
        mutating func filter() throws(KlaviyoAPIError) -> [Condition] {
            let start = index
            let name = word()
            var conditions: [Condition] = []
            if name == "and" {
                try expect("(")
                repeat { conditions.append(try condition()) } while accept(",")
                try expect(")")
                guard conditions.count >= 2 else { throw Self.bad("'and' needs at least two filters.") }
            } else {
                index = start
                conditions = [try condition()]
            }
            skipSpaces()
            guard index == characters.count else { throw Self.bad("unexpected text at position \(index + 1).") }
            return conditions
        }

        /// `operator(field,value)`, checked against the fields and operators the spec allows.
        mutating func condition() throws(KlaviyoAPIError) -> Condition {
            let op = word()
            guard !op.isEmpty else { throw Self.bad("expected operator(field,value) at position \(index + 1).") }
            guard op != "and", op != "or", op != "not" else {
                throw Self.bad("'\(op)' is not allowed here; combine conditions with one and(…).")
            }
            try expect("(")
            let field = word()
            try expect(",")
            let value = try self.value()
            try expect(")")
            switch (field, op, value) {
            case ("messages.channel", "equals", .quoted(let channel)):
                return .channel(channel)
            case ("name", "contains", .quoted(let part)):
                return .nameContains(part)
            case ("status", "equals", .quoted(let status)):
                return .status([status])
            case ("status", "any", .list(let items)):
                return .status(try Self.strings(items, op: op))
            case ("archived", "equals", .bare(let word)) where word == "true" || word == "false":
                return .archived(word == "true")
            case ("id", "any", .list(let items)):
                return .id(try Self.strings(items, op: op))
            case (let field, _, _) where Self.allowed(field: field, op: op):
                if Self.isTime(field), let comparison = Comparison(rawValue: op) {
                    guard case .bare(let text) = value else {
                        throw Self.bad("'\(field)' takes an unquoted ISO 8601 date-time, e.g. 2026-11-29T12:00:00Z.")
                    }
                    guard let seconds = Self.dateTime(text) else {
                        throw Self.bad("'\(text)' is not an ISO 8601 date-time.")
                    }
                    return .time(field: field, comparison: comparison, seconds: seconds)
                }
                throw Self.bad("invalid value for '\(op)' on '\(field)'.")
            default:
                throw Self.bad("'\(op)' is not an allowed operator for '\(field)' (or '\(field)' is not filterable).")
            }
        }

        static func isTime(_ field: String) -> Bool { CampaignFilter.timeFields.contains(field) }

        /// The spec's allowed field/operator pairs of get_campaigns' `filter`.
        static func allowed(field: String, op: String) -> Bool {
            switch field {
            case "id": op == "any"
            case "messages.channel": op == "equals"
            case "name": op == "contains"
            case "status": op == "any" || op == "equals"
            case "archived": op == "equals"
            case _ where isTime(field): Comparison(rawValue: op) != nil
            default: false
            }
        }

        static func strings(_ items: [Value], op: String) throws(KlaviyoAPIError) -> [String] {
            var strings: [String] = []
            for item in items {
                guard case .quoted(let text) = item else { throw bad("'\(op)' expects a list of quoted strings.") }
                strings.append(text)
            }
            guard !strings.isEmpty, strings.count <= 100 else { throw bad("'\(op)' expects 1 to 100 values.") }
            return strings
        }

        /// Epoch seconds of `YYYY-MM-DDTHH:MM:SS[.fff][Z|±hh:mm]` (no zone: UTC), nil for anything else.
        static func dateTime(_ text: String) -> Double? {
            let bytes = Array(text.utf8)
            guard bytes.count >= 19,
                bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
                bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: " "),
                bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":")
            else { return nil }
            var rest = bytes[19...]
            if rest.first == UInt8(ascii: ".") {
                rest = rest.dropFirst()
                let digits = rest.prefix { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
                guard !digits.isEmpty else { return nil }
                rest = rest.dropFirst(digits.count)
            }
            let zone = String(decoding: rest, as: UTF8.self)
            let offset =
                zone.utf8.count == 6 && (zone.hasPrefix("+") || zone.hasPrefix("-")) && zone.dropFirst(3).first == ":"
            guard zone.isEmpty || zone == "Z" || offset else { return nil }
            return KlaviyoSimulator.epochSeconds(text)
        }

        /// Skips spaces between tokens (never inside a quoted string).
        mutating func skipSpaces() {
            while index < characters.count, characters[index] == " " { index += 1 }
        }

        /// Letters, digits, `.`, `_` and `-` (an operator or a field name).
        mutating func word() -> String {
            skipSpaces()
            let start = index
            while index < characters.count,
                characters[index].isLetter || characters[index].isNumber || "._-".contains(characters[index])
            {
                index += 1
            }
            return String(characters[start..<index])
        }

        mutating func accept(_ character: Character) -> Bool {
            skipSpaces()
            guard index < characters.count, characters[index] == character else { return false }
            index += 1
            return true
        }

        mutating func expect(_ character: Character) throws(KlaviyoAPIError) {
            guard accept(character) else { throw Self.bad("expected '\(character)' at position \(index + 1).") }
        }

        /// A quoted string (`"…"` or `'…'`, backslash escapes), a `[…]` list, or a bare word up to `,` or `)`.
        mutating func value() throws(KlaviyoAPIError) -> Value {
            skipSpaces()
            guard index < characters.count else { throw Self.bad("expected a value at the end.") }
            let first = characters[index]
            if first == "\"" || first == "'" {
                index += 1
                var text = ""
                while index < characters.count, characters[index] != first {
                    if characters[index] == "\\" { index += 1 }
                    guard index < characters.count else { break }
                    text.append(characters[index])
                    index += 1
                }
                try expect(first)
                return .quoted(text)
            }
            if first == "[" {
                index += 1
                var items: [Value] = []
                if !accept("]") {
                    repeat { items.append(try value()) } while accept(",")
                    try expect("]")
                }
                return .list(items)
            }
            let start = index
            while index < characters.count, !",)]".contains(characters[index]) { index += 1 }
            let word = String(characters[start..<index]).trimmingCharacters(in: .whitespaces)
            guard !word.isEmpty else { throw Self.bad("expected a value at position \(index + 1).") }
            return .bare(word)
        }
    }
}
