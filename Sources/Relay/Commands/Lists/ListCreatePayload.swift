/// `list.create`: find a list by name, create it only if absent.
public struct ListCreatePayload: Sendable, Hashable {
    /// List name.
    public var name: String
    /// `single_opt_in` or `double_opt_in` (for a new list).
    public var optInProcess: String?
}
