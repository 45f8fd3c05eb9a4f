public import Klaviyo

/// `profile.upsert`: create or update a profile by identifiers (Klaviyo `POST /api/profile-import`).
public struct ProfileUpsertPayload: Sendable, Hashable {
    /// Klaviyo profile attributes; `null` clears a field. Contains at least one identifier.
    public var attributes: [String: JSONValue]
    /// Optional Klaviyo profile id to upsert by.
    public var profileID: String?
}
