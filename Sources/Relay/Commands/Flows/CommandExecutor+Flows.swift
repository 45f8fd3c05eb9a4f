import Klaviyo

/// Execution of `flow.list` and `flow.update_status`.
extension CommandExecutor {
    func listFlows(
        _ payload: FlowListPayload, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        // The status filter is sent to Klaviyo and applied again here, so the result holds only matches.
        let flows = try await klaviyo.allFlows(status: payload.status, credential: credential).filter { flow in
            payload.status == nil || flow["attributes"]?["status"]?.stringValue == payload.status
        }
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(
                status: 200, ids: flows.compactMap { $0["id"]?.stringValue },
                data: ["flows": .array(flows.map(Self.flowSummary))]))
    }

    func updateFlowStatus(
        _ payload: FlowUpdateStatusPayload, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        let flow = try await klaviyo.updateFlowStatus(
            id: payload.flowID, status: payload.status, credential: credential)
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(status: 200, ids: [payload.flowID], data: ["flow": Self.flowSummary(flow)]))
    }

    /// `{id, name, status, trigger_type, archived}` of a flow resource.
    static func flowSummary(_ flow: JSONValue) -> JSONValue {
        let attributes = flow["attributes"]
        return [
            "id": flow["id"] ?? .null, "name": attributes?["name"] ?? .null, "status": attributes?["status"] ?? .null,
            "trigger_type": attributes?["trigger_type"] ?? .null, "archived": attributes?["archived"] ?? .null,
        ]
    }
}
