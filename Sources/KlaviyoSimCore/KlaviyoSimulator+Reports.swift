import Foundation

/// Klaviyo's values reports (`POST /api/campaign-values-reports`, `POST /api/flow-values-reports`).
///
/// One row per sent campaign message (campaigns not in Draft) or per flow message (flows that are live or
/// manual; each simulated flow has one email message). Delivery numbers are derived deterministically from
/// the ids; conversions are the account's recorded events of the conversion metric inside the timeframe,
/// spread over the rows by event id. The body was already validated against the spec (statistics and
/// timeframe key enums); this adds what the spec states in words: a non-empty statistics list, a custom
/// timeframe of at most a year with start before end, the filter's fields and operators, the required
/// groupings, and a conversion metric the account knows (404 otherwise).
extension KlaviyoSimulator {
    /// Which report a call asks for.
    enum ValuesReportKind: Sendable {
        case campaign, flow

        var resourceType: String { self == .campaign ? "campaign-values-report" : "flow-values-report" }
        var fields: [String] {
            self == .campaign
                ? ["campaign_id", "campaign_message_id", "send_channel"]
                : ["flow_id", "flow_message_id", "send_channel"]
        }
    }

    /// The statistics the spec's enum allows (also what ``reportStatistics(_:conversions:value:uniques:)`` computes).
    static let reportStatisticNames: Set<String> = [
        "average_order_value", "bounce_rate", "bounced", "bounced_or_failed", "bounced_or_failed_rate", "click_rate",
        "click_to_open_rate", "clicks", "clicks_unique", "conversion_rate", "conversion_uniques", "conversion_value",
        "conversions", "delivered", "delivery_rate", "failed", "failed_rate", "message_segment_count_sum",
        "open_rate", "opens", "opens_unique", "recipients", "revenue_per_recipient", "spam_complaint_rate",
        "spam_complaints", "text_message_credit_usage_amount", "text_message_roi", "text_message_spend",
        "unsubscribe_rate", "unsubscribe_uniques", "unsubscribes",
    ]

    /// One reported row before statistics: its groupings.
    struct ReportRow: Sendable {
        var id: String
        var messageId: String
        var channel: String

        func value(of field: String) -> String {
            switch field {
            case "send_channel": return channel
            case "campaign_message_id", "flow_message_id": return messageId
            default: return id
            }
        }
    }

    /// `POST /api/campaign-values-reports` and `POST /api/flow-values-reports` → 200.
    func valuesReport(_ call: APICall, kind: ValuesReportKind) throws(KlaviyoAPIError) -> APIResult {
        let attributes = call.body?["data"]?["attributes"]
        let statistics = attributes?["statistics"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard !statistics.isEmpty else {
            throw .invalid("At least one statistic is required.", pointer: "/data/attributes/statistics")
        }
        for (index, name) in statistics.enumerated() where !Self.reportStatisticNames.contains(name) {
            throw .invalid(
                "'\(name)' is not a valid statistic.", pointer: "/data/attributes/statistics/\(index)")
        }
        let now = Date().timeIntervalSince1970
        let range = try Self.reportRange(attributes?["timeframe"], now: now)
        let filters = try ReportFilterParser.parse(attributes?["filter"]?.stringValue, fields: kind.fields)
        var groupBy = kind.fields
        if let requested = attributes?["group_by"]?.arrayValue?.compactMap(\.stringValue) {
            for required in kind.fields.prefix(2) where !requested.contains(required) {
                throw .invalid(
                    "'\(required)' is a required group by attribute.", pointer: "/data/attributes/group_by")
            }
            groupBy = kind.fields.filter { requested.contains($0) }
        }
        let metricId = attributes?["conversion_metric_id"]?.stringValue ?? ""
        let (rows, conversions) = try call.caller.box.state.withLock { s throws(KlaviyoAPIError) in
            guard s.resources.metrics.values.contains(metricId) else {
                throw KlaviyoAPIError.notFound("Metric with id '\(metricId)' does not exist.")
            }
            let rows = Self.reportRows(s.resources, kind: kind).filter { row in
                filters.allSatisfy { filter in filter.values.contains(row.value(of: filter.field)) }
            }
            let events = s.resources.events.filter { event in
                guard event.metricId == metricId, let time = Self.epochSeconds(event.time) else { return false }
                return time >= range.start && time < range.end
            }
            return (rows, events)
        }
        var perRow = Array(repeating: (count: 0, value: 0.0, profiles: Set<String>()), count: rows.count)
        if !rows.isEmpty {
            for event in conversions {
                let index = Int(Self.stableHash(event.id) % UInt64(rows.count))
                perRow[index].count += 1
                perRow[index].value += Self.number(event.value)
                perRow[index].profiles.insert(event.profileId)
            }
        }
        let results: [JSONValue] = rows.enumerated().map { index, row in
            let all = Self.reportStatistics(
                row, conversions: perRow[index].count, value: perRow[index].value,
                uniques: perRow[index].profiles.count)
            var groupings: [String: JSONValue] = [:]
            for field in groupBy { groupings[field] = .string(row.value(of: field)) }
            var values: [String: JSONValue] = [:]
            for name in statistics { values[name] = all[name] ?? .int(0) }
            return ["groupings": .object(groupings), "statistics": .object(values)]
        }
        var relationships: [String: JSONValue] = [:]
        var seen: Set<String> = []
        let ids = rows.map(\.id).filter { seen.insert($0).inserted }
        switch kind {
        case .campaign:
            relationships["campaigns"] = ["data": .array(ids.map { ["type": "campaign", "id": .string($0)] })]
        case .flow:
            relationships["flows"] = ["data": .array(ids.map { ["type": "flow", "id": .string($0)] })]
            relationships["flow-messages"] = [
                "data": .array(rows.map { ["type": "flow-message", "id": .string($0.messageId)] })
            ]
        }
        return APIResult(
            status: 200,
            body: [
                "data": [
                    "type": .string(kind.resourceType), "attributes": ["results": .array(results)],
                    "relationships": .object(relationships),
                ]
            ])
    }

    /// The reported rows of an account: sent campaigns' messages, or live/manual flows' messages.
    static func reportRows(_ resources: AccountResources, kind: ValuesReportKind) -> [ReportRow] {
        switch kind {
        case .campaign:
            return resources.campaignOrder.compactMap { resources.campaigns[$0] }.filter { $0.status != "Draft" }
                .flatMap { campaign in
                    campaign.messageIds.map { ReportRow(id: campaign.id, messageId: $0, channel: "email") }
                }
        case .flow:
            return resources.flowOrder.compactMap { resources.flows[$0] }.filter { $0.status != "draft" }.map {
                ReportRow(id: $0.id, messageId: flowMessageId($0.id), channel: "email")
            }
        }
    }

    /// The one message of a simulated flow: a stable id derived from the flow's.
    static func flowMessageId(_ flowId: String) -> String {
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var hash = stableHash("flow-message|" + flowId)
        var id = ""
        for _ in 0..<6 {
            id.append(alphabet[Int(hash % UInt64(alphabet.count))])
            hash /= UInt64(alphabet.count)
        }
        return id
    }

    /// Every statistic of one row (rates as fractions rounded to 4 places).
    static func reportStatistics(_ row: ReportRow, conversions: Int, value: Double, uniques: Int) -> [String: JSONValue]
    {
        let h = stableHash(row.id + "|" + row.messageId)
        func part(_ shift: UInt64, _ modulo: UInt64) -> Int { Int((h >> shift) % modulo) }
        let recipients = 200 + Int(h % 4800)
        let failed = recipients * part(8, 3) / 100
        let bounced = recipients * part(12, 4) / 100
        let delivered = recipients - failed - bounced
        let opensUnique = delivered * (20 + part(16, 40)) / 100
        let opens = opensUnique + opensUnique * part(20, 50) / 100
        let clicksUnique = opensUnique * (5 + part(24, 20)) / 100
        let clicks = clicksUnique + clicksUnique * part(28, 40) / 100
        let unsubscribes = delivered * part(32, 10) / 1000
        let spam = delivered * part(36, 3) / 1000
        let segments = row.channel == "sms" ? delivered : 0
        let spend = Double(segments) * 0.01
        func rate(_ part: Int, _ whole: Int) -> JSONValue { .double(fraction(Double(part), Double(whole))) }
        func money(_ amount: Double) -> JSONValue { .double((amount * 100).rounded() / 100) }
        return [
            "recipients": .int(recipients), "delivered": .int(delivered), "failed": .int(failed),
            "bounced": .int(bounced), "bounced_or_failed": .int(bounced + failed), "opens": .int(opens),
            "opens_unique": .int(opensUnique), "clicks": .int(clicks), "clicks_unique": .int(clicksUnique),
            "unsubscribes": .int(unsubscribes), "unsubscribe_uniques": .int(unsubscribes),
            "spam_complaints": .int(spam), "conversions": .int(conversions), "conversion_uniques": .int(uniques),
            "conversion_value": money(value), "delivery_rate": rate(delivered, recipients),
            "bounce_rate": rate(bounced, recipients), "failed_rate": rate(failed, recipients),
            "bounced_or_failed_rate": rate(bounced + failed, recipients), "open_rate": rate(opensUnique, delivered),
            "click_rate": rate(clicksUnique, delivered), "click_to_open_rate": rate(clicksUnique, opensUnique),
            "unsubscribe_rate": rate(unsubscribes, delivered), "spam_complaint_rate": rate(spam, delivered),
            "conversion_rate": rate(uniques, delivered),
            "average_order_value": money(conversions == 0 ? 0 : value / Double(conversions)),
            "revenue_per_recipient": money(recipients == 0 ? 0 : value / Double(recipients)),
            "message_segment_count_sum": .int(segments), "text_message_credit_usage_amount": .int(segments),
            "text_message_spend": money(spend), "text_message_roi": money(spend == 0 ? 0 : value / spend),
        ]
    }

    static func fraction(_ part: Double, _ whole: Double) -> Double {
        whole <= 0 ? 0 : (part / whole * 10_000).rounded() / 10_000
    }

    static func number(_ value: JSONValue?) -> Double {
        switch value {
        case .int(let number)?: return Double(number)
        case .double(let number)?: return number.isFinite ? number : 0
        case .string(let text)?: return Double(text) ?? 0
        default: return 0
        }
    }

    /// FNV-1a, 64 bit: the same numbers for the same ids in every run.
    static func stableHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    // MARK: timeframes

    /// `[start, end)` in epoch seconds of a `{key}` or `{start, end}` timeframe (UTC; Klaviyo uses the
    /// account's timezone).
    static func reportRange(
        _ timeframe: JSONValue?, now: Double
    ) throws(KlaviyoAPIError) -> (start: Double, end: Double) {
        let pointer = "/data/attributes/timeframe"
        if let key = timeframe?["key"]?.stringValue {
            guard let range = keyRange(key, now: now) else {
                throw .invalid("'\(key)' is not a valid timeframe key.", pointer: pointer + "/key")
            }
            return range
        }
        guard let startText = timeframe?["start"]?.stringValue, let endText = timeframe?["end"]?.stringValue,
            let start = epochSeconds(startText), let end = epochSeconds(endText)
        else {
            throw .invalid("A timeframe needs a key, or a start and an end date-time.", pointer: pointer)
        }
        guard start < end else { throw .invalid("The timeframe's end must be after its start.", pointer: pointer) }
        guard end - start <= 366 * 86_400 else {
            throw .invalid("The timeframe must not be longer than one year.", pointer: pointer)
        }
        return (start, end)
    }

    static func keyRange(_ key: String, now: Double) -> (start: Double, end: Double)? {
        let day = 86_400.0
        let today = (now / day).rounded(.down)
        let (year, month, _) = civil(fromDays: Int(today))
        let weekStart = today - Double((Int(today) + 3) % 7)  // Monday (1970-01-01 was a Thursday)
        func monthStart(_ year: Int, _ month: Int) -> Double {
            let (y, m) = month < 1 ? (year - 1, month + 12) : (year, month)
            return Double(days(fromCivil: y, m, 1)) * day
        }
        switch key {
        case "today": return (today * day, now + 1)
        case "yesterday": return ((today - 1) * day, today * day)
        case "last_7_days": return (now - 7 * day, now + 1)
        case "last_30_days": return (now - 30 * day, now + 1)
        case "last_90_days", "last_3_months": return (now - 90 * day, now + 1)
        case "last_365_days", "last_12_months": return (now - 365 * day, now + 1)
        case "this_week": return (weekStart * day, now + 1)
        case "last_week": return ((weekStart - 7) * day, weekStart * day)
        case "this_month": return (monthStart(year, month), now + 1)
        case "last_month": return (monthStart(year, month - 1), monthStart(year, month))
        case "this_year": return (Double(days(fromCivil: year, 1, 1)) * day, now + 1)
        case "last_year":
            return (Double(days(fromCivil: year - 1, 1, 1)) * day, Double(days(fromCivil: year, 1, 1)) * day)
        default: return nil
        }
    }

    /// Epoch seconds of an RFC 3339 date-time (`Z` or `±hh:mm`; fractions ignored).
    static func epochSeconds(_ text: String) -> Double? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 19 else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard bytes[index] >= 0x30, bytes[index] <= 0x39 else { return nil }
                value = value * 10 + Int(bytes[index] - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let dayOfMonth = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var seconds = Double(days(fromCivil: year, month, dayOfMonth)) * 86_400
        seconds += Double(hour * 3600 + minute * 60 + second)
        var index = 19
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
        }
        if index + 6 == bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-"),
            let offsetHours = number((index + 1)..<(index + 3)), let offsetMinutes = number((index + 4)..<(index + 6))
        {
            let offset = Double(offsetHours * 3600 + offsetMinutes * 60)
            seconds += bytes[index] == UInt8(ascii: "+") ? -offset : offset
        }
        return seconds
    }

    /// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    static func days(fromCivil year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The civil date of a day count since 1970-01-01.
    static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// A report `filter`: `equals(field,"v")` / `contains-any(field,["a","b"])` on the report's fields, combined
/// only with `and(…)`, one filter per field, at most 100 values, send_channel values email/sms/push-notification.
enum ReportFilterParser {
    struct Clause: Sendable {
        var field: String
        var values: [String]
    }

    static func parse(_ text: String?, fields: [String]) throws(KlaviyoAPIError) -> [Clause] {
        guard let text else { return [] }
        func bad(_ why: String) -> KlaviyoAPIError {
            .invalid("Invalid filter provided: \(why)", pointer: "/data/attributes/filter")
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var terms: [Substring] = []
        if trimmed.hasPrefix("and("), trimmed.hasSuffix(")") {
            terms = splitTopLevel(trimmed.dropFirst(4).dropLast())
            guard terms.count >= 2 else { throw bad("'and' needs at least two filters.") }
        } else {
            terms = [Substring(trimmed)]
        }
        var clauses: [Clause] = []
        for term in terms {
            let t = term.trimmingCharacters(in: .whitespaces)
            guard let open = t.firstIndex(of: "("), t.hasSuffix(")") else {
                throw bad("expected operator(field,value).")
            }
            let op = String(t[..<open])
            let inner = t[t.index(after: open)..<t.index(before: t.endIndex)]
            guard let comma = inner.firstIndex(of: ",") else { throw bad("expected operator(field,value).") }
            let field = inner[..<comma].trimmingCharacters(in: .whitespaces)
            let raw = inner[inner.index(after: comma)...].trimmingCharacters(in: .whitespaces)
            guard fields.contains(field) else { throw bad("'\(field)' is not a filterable field of this report.") }
            guard !clauses.contains(where: { $0.field == field }) else {
                throw bad("only one filter per attribute is allowed ('\(field)').")
            }
            var values: [String]
            switch op {
            case "equals":
                guard let value = ProfileFilter.unquote(Substring(raw)) else { throw bad("expected a quoted string.") }
                values = [value]
            case "contains-any":
                guard raw.hasPrefix("["), raw.hasSuffix("]") else { throw bad("'contains-any' expects a list.") }
                values = []
                for item in ProfileFilter.splitList(raw.dropFirst().dropLast()) {
                    guard let value = ProfileFilter.unquote(item) else { throw bad("expected quoted strings.") }
                    values.append(value)
                }
                guard !values.isEmpty, values.count <= 100 else { throw bad("'contains-any' expects 1 to 100 values.") }
            default:
                throw bad("'\(op)' is not an allowed operator for '\(field)'.")
            }
            if field == "send_channel",
                let other = values.first(where: { !["email", "sms", "push-notification"].contains($0) })
            {
                throw bad("'\(other)' is not a valid send_channel.")
            }
            clauses.append(Clause(field: field, values: values))
        }
        return clauses
    }

    /// Splits on commas outside parentheses, brackets and quotes.
    static func splitTopLevel(_ text: Substring) -> [Substring] {
        var parts: [Substring] = []
        var depth = 0
        var quoted = false
        var start = text.startIndex
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "\"" { quoted.toggle() }
            if !quoted {
                if character == "(" || character == "[" { depth += 1 }
                if character == ")" || character == "]" { depth -= 1 }
                if character == "," && depth == 0 {
                    parts.append(text[start..<index])
                    start = text.index(after: index)
                }
            }
            index = text.index(after: index)
        }
        parts.append(text[start..<text.endIndex])
        return parts
    }
}
