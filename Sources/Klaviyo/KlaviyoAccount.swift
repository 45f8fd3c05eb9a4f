/// The Klaviyo account behind a credential (`GET /api/accounts`).
public struct KlaviyoAccount: Sendable, Hashable, Codable {
    /// Klaviyo's account id.
    public var id: String
    /// `contact_information.organization_name`.
    public var organizationName: String?
    /// The public (site) API key.
    public var publicAPIKey: String?
    /// Account timezone.
    public var timezone: String?
    /// Preferred currency.
    public var preferredCurrency: String?

    /// Creates an account value.
    public init(
        id: String, organizationName: String? = nil, publicAPIKey: String? = nil, timezone: String? = nil,
        preferredCurrency: String? = nil
    ) {
        self.id = id
        self.organizationName = organizationName
        self.publicAPIKey = publicAPIKey
        self.timezone = timezone
        self.preferredCurrency = preferredCurrency
    }

    /// Reads an account resource object.
    init?(resource: JSONValue) {
        guard let id = resource["id"]?.stringValue else { return nil }
        let attributes = resource["attributes"]
        self.init(
            id: id,
            organizationName: attributes?["contact_information"]?["organization_name"]?.stringValue,
            publicAPIKey: attributes?["public_api_key"]?.stringValue,
            timezone: attributes?["timezone"]?.stringValue,
            preferredCurrency: attributes?["preferred_currency"]?.stringValue)
    }
}
