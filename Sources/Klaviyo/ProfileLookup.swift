/// How to find a profile with `GET /api/profiles`.
public enum ProfileLookup: Sendable, Hashable {
    /// By email address.
    case email(String)
    /// By E.164 phone number.
    case phoneNumber(String)
    /// By the caller's external id.
    case externalID(String)
    /// By Klaviyo id.
    case id(String)

    /// The `filter` parameter, e.g. `equals(email,"a@example.com")`.
    public var filter: String {
        let (field, value): (String, String)
        switch self {
        case .email(let email): (field, value) = ("email", email)
        case .phoneNumber(let phone): (field, value) = ("phone_number", phone)
        case .externalID(let external): (field, value) = ("external_id", external)
        case .id(let id): (field, value) = ("id", id)
        }
        let escaped = value.replacingBackslashesAndQuotes()
        return "equals(\(field),\"\(escaped)\")"
    }
}

extension String {
    func replacingBackslashesAndQuotes() -> String {
        var result = ""
        for character in self {
            if character == "\\" || character == "\"" { result.append("\\") }
            result.append(character)
        }
        return result
    }
}
