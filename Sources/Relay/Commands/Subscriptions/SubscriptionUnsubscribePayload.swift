public import Klaviyo

/// `subscription.unsubscribe`: from one list, or globally only when asked explicitly.
public struct SubscriptionUnsubscribePayload: Sendable, Hashable {
    /// The list; nil only with `global`.
    public var listID: String?
    /// The profiles (≤ 10,000).
    public var profiles: [KlaviyoSubscriber]

    /// The profiles in calls of at most 100.
    public var batches: [[KlaviyoSubscriber]] { profiles.chunked(KlaviyoClient.maxProfilesPerUnsubscribeJob) }
}
