/// A Klaviyo profile resource: its id and attributes as Klaviyo returned them.
public struct KlaviyoProfile: Sendable, Hashable {
    /// Klaviyo's profile id.
    public var id: String
    /// The `attributes` object, passed through unchanged.
    public var attributes: JSONValue

    /// Creates a profile value.
    public init(id: String, attributes: JSONValue) {
        self.id = id
        self.attributes = attributes
    }

    /// Reads a profile resource object.
    init?(resource: JSONValue) {
        guard resource["type"]?.stringValue == "profile", let id = resource["id"]?.stringValue else { return nil }
        self.init(id: id, attributes: resource["attributes"] ?? .object([:]))
    }

    /// `{"id": …, "attributes": …}` for results.
    public var jsonValue: JSONValue {
        .object(["id": .string(id), "attributes": attributes])
    }
}
