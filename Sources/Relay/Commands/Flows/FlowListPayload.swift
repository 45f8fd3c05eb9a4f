/// `flow.list`: every flow, optionally only those with one status.
public struct FlowListPayload: Sendable, Hashable {
    /// `draft`, `manual` or `live`.
    public var status: String?
}
