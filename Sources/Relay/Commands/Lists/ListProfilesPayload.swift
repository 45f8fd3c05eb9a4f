import Klaviyo

/// `list.add_profiles` / `list.remove_profiles`.
public struct ListProfilesPayload: Sendable, Hashable {
    /// The list.
    public var listID: String
    /// Profile ids (≤ 10,000, no duplicates).
    public var profileIDs: [String]

    /// The ids in calls of at most 1,000.
    public var batches: [[String]] {
        stride(from: 0, to: profileIDs.count, by: KlaviyoClient.maxProfilesPerListCall).map {
            Array(profileIDs[$0..<min($0 + KlaviyoClient.maxProfilesPerListCall, profileIDs.count)])
        }
    }
}
