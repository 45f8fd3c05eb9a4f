import Klaviyo

/// Payload validation of `campaign.report` and `flow.report`: what Klaviyo would refuse with a 400 is a dead
/// letter `schema_invalid` here, before any of the report's scarce daily calls is spent.
extension CommandDecoder {
    /// Longest custom timeframe Klaviyo accepts (one year; 366 days covers a leap year).
    static let maxReportTimeframeSeconds: Int64 = 366 * 86_400

    static func decodeValuesReport(
        _ members: [String: JSONValue], report: KlaviyoClient.ValuesReport
    ) throws(SchemaViolation) -> ValuesReportPayload {
        try Check.onlyKeys(
            members, ["statistics", "timeframe", "conversion_metric_id", "filter", "group_by"], at: "/payload")
        let statistics = try decodeReportStatistics(members["statistics"])
        let timeframe = try decodeReportTimeframe(members["timeframe"])
        let metricID = try Check.resourceID(members["conversion_metric_id"], at: "/payload/conversion_metric_id")
        var filter: String?
        if let value = members["filter"] {
            let text = try Check.string(value, at: "/payload/filter", maxLength: 8192)
            try ReportFilter.validate(text, report: report, at: "/payload/filter")
            filter = text
        }
        var groupBy: [String]?
        if let value = members["group_by"] {
            groupBy = try decodeReportGroupBy(value, report: report)
        }
        return ValuesReportPayload(
            report: report, statistics: statistics, timeframe: timeframe, conversionMetricID: metricID,
            filter: filter, groupBy: groupBy)
    }

    static func decodeReportStatistics(_ value: JSONValue?) throws(SchemaViolation) -> [String] {
        let pointer = "/payload/statistics"
        let items = try array(value, at: pointer, maxCount: KlaviyoClient.reportStatistics.count)
        var statistics: [String] = []
        for (index, item) in items.enumerated() {
            let name = try Check.string(item, at: "\(pointer)/\(index)", maxLength: 64)
            guard KlaviyoClient.reportStatistics.contains(name) else {
                throw SchemaViolation(
                    pointer: "\(pointer)/\(index)", message: "\"\(name)\" is not a statistic Klaviyo reports")
            }
            guard !statistics.contains(name) else {
                throw SchemaViolation(pointer: "\(pointer)/\(index)", message: "repeats \(name)")
            }
            statistics.append(name)
        }
        return statistics
    }

    static func decodeReportTimeframe(_ value: JSONValue?) throws(SchemaViolation) -> JSONValue {
        let pointer = "/payload/timeframe"
        let members = try Check.object(value, at: pointer)
        if members["key"] != nil {
            try Check.onlyKeys(members, ["key"], at: pointer)
            let key = try Check.string(members["key"], at: pointer + "/key", maxLength: 32)
            guard KlaviyoClient.reportTimeframeKeys.contains(key) else {
                throw SchemaViolation(
                    pointer: pointer + "/key",
                    message: "must be one of \(KlaviyoClient.reportTimeframeKeys.joined(separator: ", "))")
            }
            return ["key": .string(key)]
        }
        try Check.onlyKeys(members, ["start", "end"], at: pointer)
        guard members["start"] != nil || members["end"] != nil else {
            throw SchemaViolation(pointer: pointer, message: "needs a key, or a start and an end")
        }
        let (start, startSeconds) = try dateTime(members["start"], at: pointer + "/start")
        let (end, endSeconds) = try dateTime(members["end"], at: pointer + "/end")
        guard startSeconds < endSeconds else {
            throw SchemaViolation(pointer: pointer + "/end", message: "must be after start")
        }
        guard endSeconds - startSeconds <= maxReportTimeframeSeconds else {
            throw SchemaViolation(pointer: pointer, message: "spans more than a year (Klaviyo's maximum)")
        }
        return ["start": .string(start), "end": .string(end)]
    }

    static func decodeReportGroupBy(
        _ value: JSONValue, report: KlaviyoClient.ValuesReport
    ) throws(SchemaViolation) -> [String] {
        let pointer = "/payload/group_by"
        let items = try array(value, at: pointer, maxCount: report.fields.count)
        var fields: [String] = []
        for (index, item) in items.enumerated() {
            let field = try Check.string(item, at: "\(pointer)/\(index)", maxLength: 64)
            guard report.fields.contains(field) else {
                throw SchemaViolation(
                    pointer: "\(pointer)/\(index)",
                    message: "must be one of \(report.fields.joined(separator: ", "))")
            }
            guard !fields.contains(field) else {
                throw SchemaViolation(pointer: "\(pointer)/\(index)", message: "repeats \(field)")
            }
            fields.append(field)
        }
        for required in report.requiredGroupings where !fields.contains(required) {
            throw SchemaViolation(pointer: pointer, message: "must include \(required) (Klaviyo requires it)")
        }
        return fields
    }
}
