/// Constants of the Klaviyo REST API revision this client speaks.
public enum KlaviyoAPI {
    /// The API revision sent in the `revision` header of every request.
    public static let revision = "2025-10-15"
    /// JSON:API media type used for `Accept` and `Content-Type`.
    public static let mediaType = "application/vnd.api+json"
    /// Production API base URL (token and revoke calls also go here).
    public static let defaultBaseURL = "https://a.klaviyo.com"
    /// Largest request payload Klaviyo accepts on its newer APIs (decompressed).
    public static let maxPayloadBytes = 5 * 1024 * 1024
    /// Largest profile payload for the profile endpoints.
    public static let maxProfilePayloadBytes = 100 * 1024
}
