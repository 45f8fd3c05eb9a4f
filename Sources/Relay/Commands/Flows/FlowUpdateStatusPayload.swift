/// `flow.update_status`.
public struct FlowUpdateStatusPayload: Sendable, Hashable {
    /// The flow.
    public var flowID: String
    /// `draft`, `manual` or `live`.
    public var status: String
}
