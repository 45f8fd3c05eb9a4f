public import Klaviyo

/// `profile.get`: look a profile up by exactly one identifier.
public struct ProfileGetPayload: Sendable, Hashable {
    /// The identifier to look up by.
    public var lookup: ProfileLookup
}
