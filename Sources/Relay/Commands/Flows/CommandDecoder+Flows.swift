import Klaviyo

/// Payload validation of `flow.list` and `flow.update_status`.
extension CommandDecoder {
    static func decodeFlowList(_ members: [String: JSONValue]) throws(SchemaViolation) -> FlowListPayload {
        try Check.onlyKeys(members, ["status"], at: "/payload")
        var status: String?
        if members["status"] != nil { status = try decodeFlowStatus(members["status"], at: "/payload/status") }
        return FlowListPayload(status: status)
    }

    static func decodeFlowUpdateStatus(
        _ members: [String: JSONValue]
    ) throws(SchemaViolation)
        -> FlowUpdateStatusPayload
    {
        try Check.onlyKeys(members, ["flow_id", "status"], at: "/payload")
        let flowID = try Check.resourceID(members["flow_id"], at: "/payload/flow_id")
        let status = try decodeFlowStatus(members["status"], at: "/payload/status")
        return FlowUpdateStatusPayload(flowID: flowID, status: status)
    }

    static func decodeFlowStatus(_ value: JSONValue?, at pointer: String) throws(SchemaViolation) -> String {
        let status = try Check.string(value, at: pointer, maxLength: 16)
        guard ["draft", "manual", "live"].contains(status) else {
            throw SchemaViolation(pointer: pointer, message: "must be draft, manual or live")
        }
        return status
    }

}
