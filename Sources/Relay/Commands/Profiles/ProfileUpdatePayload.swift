public import Klaviyo

/// `profile.update`: change attributes of a known profile (Klaviyo `PATCH /api/profiles/{id}`).
public struct ProfileUpdatePayload: Sendable, Hashable {
    /// Klaviyo profile id.
    public var profileID: String
    /// Attributes to change; omitted ones stay, `null` clears.
    public var attributes: [String: JSONValue]
}
