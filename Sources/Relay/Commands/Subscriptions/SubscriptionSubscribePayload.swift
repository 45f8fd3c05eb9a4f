public import Klaviyo

/// `subscription.subscribe`: email and/or SMS marketing consent (`POST /api/profile-subscription-bulk-create-jobs`).
public struct SubscriptionSubscribePayload: Sendable, Hashable {
    /// Optional list to subscribe to.
    public var listID: String?
    /// Optional `custom_source`.
    public var customSource: String?
    /// Historical import (each profile carries a past `consented_at`).
    public var historicalImport: Bool
    /// The profiles (≤ 10,000).
    public var profiles: [KlaviyoSubscriber]

    /// The profiles in calls of at most 1,000.
    public var batches: [[KlaviyoSubscriber]] { profiles.chunked(KlaviyoClient.maxProfilesPerSubscribeJob) }
}
