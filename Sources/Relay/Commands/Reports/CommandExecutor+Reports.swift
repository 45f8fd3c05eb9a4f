import Klaviyo

/// Execution of `campaign.report` and `flow.report`.
extension CommandExecutor {
    /// Runs the values report. The result's `klaviyo.data` is `{report, timeframe, conversion_metric_id,
    /// statistics, results: [{groupings, statistics}]}` with Klaviyo's numbers as it sent them; `klaviyo.ids`
    /// are the campaigns (or flows) reported on, in the order of the results.
    func runValuesReport(
        _ payload: ValuesReportPayload, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        let request = KlaviyoClient.valuesReportRequest(
            payload.report, statistics: payload.statistics, timeframe: payload.timeframe,
            conversionMetricID: payload.conversionMetricID, filter: payload.filter, groupBy: payload.groupBy)
        let results = try await klaviyo.valuesReport(request, credential: credential).map(Self.reportRow)
        var ids: [String] = []
        for row in results {
            if let id = row["groupings"]?[payload.report.idField]?.stringValue, !ids.contains(id) { ids.append(id) }
        }
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(
                status: 200, ids: ids,
                data: [
                    "report": .string(payload.report.rawValue), "timeframe": payload.timeframe,
                    "conversion_metric_id": .string(payload.conversionMetricID),
                    "statistics": .array(payload.statistics.map { .string($0) }), "results": .array(results),
                ]))
    }

    /// `{groupings, statistics}` of one result item (objects; anything else Klaviyo adds is left out).
    static func reportRow(_ item: JSONValue) -> JSONValue {
        [
            "groupings": item["groupings"]?.objectValue.map(JSONValue.object) ?? [:],
            "statistics": item["statistics"]?.objectValue.map(JSONValue.object) ?? [:],
        ]
    }
}
