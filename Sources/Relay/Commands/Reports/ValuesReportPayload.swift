public import Klaviyo

/// `campaign.report` and `flow.report`: one of Klaviyo's values reports (`POST /api/campaign-values-reports`,
/// `POST /api/flow-values-reports`).
public struct ValuesReportPayload: Sendable, Hashable {
    /// Which report.
    public var report: KlaviyoClient.ValuesReport
    /// The statistics asked for (the spec's enum, no repeats).
    public var statistics: [String]
    /// `{"key": "last_30_days"}` or `{"start": …, "end": …}` (RFC 3339, start before end, at most a year).
    public var timeframe: JSONValue
    /// The metric conversions are counted on (e.g. Placed Order).
    public var conversionMetricID: String
    /// Klaviyo's filter string (checked by ``ReportFilter``), if any.
    public var filter: String?
    /// The groupings, if not Klaviyo's default (all of ``KlaviyoClient/ValuesReport/fields``).
    public var groupBy: [String]?
}

extension CommandType {
    /// The Klaviyo operation of a report command (`query_campaign_values`, `query_flow_values`), whose
    /// limits include a daily cap (225/day); nil for the other types.
    public var reportOperationID: String? {
        switch self {
        case .campaignReport: return KlaviyoClient.ValuesReport.campaign.operationID
        case .flowReport: return KlaviyoClient.ValuesReport.flow.operationID
        default: return nil
        }
    }
}
