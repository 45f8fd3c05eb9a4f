public import Klaviyo

/// `profile.bulk_import`: up to 10,000 profiles in one Klaviyo bulk-import job, optionally added to a list.
public struct ProfileBulkImportPayload: Sendable, Hashable {
    /// Profile attributes, each with at least one identifier.
    public var profiles: [[String: JSONValue]]
    /// Optional list the profiles are added to.
    public var listID: String?
}
