extension KlaviyoClient {
    /// One of Klaviyo's values reports (the Reporting API): what is reported on and how the request is named.
    public enum ValuesReport: String, Sendable, CaseIterable {
        /// `POST /api/campaign-values-reports` (query_campaign_values, scope `campaigns:read`).
        case campaign
        /// `POST /api/flow-values-reports` (query_flow_values, scope `flows:read`).
        case flow

        /// The spec's operationId (names the rate-limit bucket: 1/s burst, 2/min steady, 225/day).
        public var operationID: String {
            switch self {
            case .campaign: return "query_campaign_values"
            case .flow: return "query_flow_values"
            }
        }

        /// The path of the operation.
        public var path: String {
            switch self {
            case .campaign: return "/api/campaign-values-reports"
            case .flow: return "/api/flow-values-reports"
            }
        }

        /// The JSON:API `type` of the request and response resource.
        public var resourceType: String {
            switch self {
            case .campaign: return "campaign-values-report"
            case .flow: return "flow-values-report"
            }
        }

        /// The attributes a report may be grouped by and filtered on (the spec's description of `group_by`
        /// and `filter`).
        public var fields: [String] {
            switch self {
            case .campaign: return ["campaign_id", "campaign_message_id", "send_channel"]
            case .flow: return ["flow_id", "flow_message_id", "send_channel"]
            }
        }

        /// The `group_by` attributes Klaviyo requires whenever `group_by` is given.
        public var requiredGroupings: [String] {
            switch self {
            case .campaign: return ["campaign_id", "campaign_message_id"]
            case .flow: return ["flow_id", "flow_message_id"]
            }
        }

        /// The grouping that names the reported resource (`campaign_id` or `flow_id`).
        public var idField: String { fields[0] }
    }

    /// The statistics a values report may ask for (the spec's enum; rates come back as fractions in [0, 1]).
    public static let reportStatistics: [String] = [
        "average_order_value", "bounce_rate", "bounced", "bounced_or_failed", "bounced_or_failed_rate", "click_rate",
        "click_to_open_rate", "clicks", "clicks_unique", "conversion_rate", "conversion_uniques", "conversion_value",
        "conversions", "delivered", "delivery_rate", "failed", "failed_rate", "message_segment_count_sum",
        "open_rate", "opens", "opens_unique", "recipients", "revenue_per_recipient", "spam_complaint_rate",
        "spam_complaints", "text_message_credit_usage_amount", "text_message_roi", "text_message_spend",
        "unsubscribe_rate", "unsubscribe_uniques", "unsubscribes",
    ]

    /// The pre-defined timeframe keys (the spec's `Timeframe.key` enum).
    public static let reportTimeframeKeys: [String] = [
        "last_12_months", "last_30_days", "last_365_days", "last_3_months", "last_7_days", "last_90_days",
        "last_month", "last_week", "last_year", "this_month", "this_week", "this_year", "today", "yesterday",
    ]

    /// The send channels a report filter may name.
    public static let reportSendChannels: [String] = ["email", "sms", "push-notification"]

    /// The request for a values report: `timeframe` is `{"key": …}` or `{"start": …, "end": …}`; `filter` and
    /// `groupBy` are sent only when given. A read: repeating it is harmless.
    public static func valuesReportRequest(
        _ report: ValuesReport, statistics: [String], timeframe: JSONValue, conversionMetricID: String,
        filter: String? = nil, groupBy: [String]? = nil
    ) -> KlaviyoRequest {
        var attributes: [String: JSONValue] = [
            "statistics": .array(statistics.map { .string($0) }), "timeframe": timeframe,
            "conversion_metric_id": .string(conversionMetricID),
        ]
        if let filter { attributes["filter"] = .string(filter) }
        if let groupBy { attributes["group_by"] = .array(groupBy.map { .string($0) }) }
        return KlaviyoRequest(
            operationID: report.operationID, method: "POST", path: report.path,
            body: ["data": ["type": .string(report.resourceType), "attributes": .object(attributes)]],
            isIdempotent: true)
    }

    /// Runs a values report and returns every `results` item, following `links.next` (the same body with the
    /// next `page_cursor`) for at most `maxPages` pages.
    public func valuesReport(
        _ request: KlaviyoRequest, credential: KlaviyoCredential, maxPages: Int = 10
    ) async throws(KlaviyoError) -> [JSONValue] {
        var current = request
        var results: [JSONValue] = []
        for _ in 0..<maxPages {
            let response = try await send(current, credential: credential)
            guard let page = response.data?["attributes"]?["results"]?.arrayValue else {
                throw KlaviyoError(
                    code: .invalidResponse, status: response.status, operationID: request.operationID,
                    message: "response has no data.attributes.results array", usedOAuth: credential.isOAuth)
            }
            results += page
            guard let next = response.document?["links"]?["next"]?.stringValue, !next.isEmpty else {
                return results
            }
            guard var following = Self.request(following: next, like: current) else {
                throw KlaviyoError(
                    code: .invalidResponse, status: response.status, operationID: request.operationID,
                    message: "links.next is not a URL below /api/", usedOAuth: credential.isOAuth)
            }
            following.body = request.body
            current = following
        }
        throw KlaviyoError(
            code: .invalidResponse, operationID: request.operationID,
            message: "more than \(maxPages) pages of report results", usedOAuth: credential.isOAuth)
    }
}
