import Klaviyo

/// Validates Klaviyo profile attributes as commands carry them (spec: ProfileUpsertQueryResourceObject and
/// ProfilePartialUpdateQueryResourceObject attributes). `null` is allowed wherever Klaviyo allows it and
/// means "clear this field".
enum ProfileAttributesValidator {
    static let identifierKeys = ["email", "phone_number", "external_id"]
    static let stringKeys: Set<String> = [
        "email", "phone_number", "external_id", "first_name", "last_name", "organization", "locale", "title", "image",
    ]
    static let allowedKeys: Set<String> = stringKeys.union(["location", "properties"])
    static let locationStringKeys: Set<String> = [
        "address1", "address2", "city", "country", "region", "zip", "timezone", "ip",
    ]
    static let locationKeys: Set<String> = locationStringKeys.union(["latitude", "longitude"])

    /// Validates and returns the attributes. `requireIdentifier` demands a non-null email, phone number or
    /// external id (unless `hasProfileID`).
    static func validate(
        _ value: JSONValue?, at pointer: String, requireIdentifier: Bool, hasProfileID: Bool
    ) throws(SchemaViolation) -> [String: JSONValue] {
        let attributes = try Check.object(value, at: pointer)
        try Check.onlyKeys(attributes, allowedKeys, at: pointer)
        for (key, member) in attributes where stringKeys.contains(key) {
            if member.isNull { continue }
            // The member's pointer is only built for a violation (most commands have none).
            do throws(SchemaViolation) {
                let maxLength = key == "image" ? 2048 : 255
                let text = try Check.string(member, at: "", maxLength: key == "email" ? 254 : maxLength)
                if key == "email", !Check.isEmail(text) {
                    throw SchemaViolation(pointer: "", message: "is not a valid email address")
                }
                if key == "phone_number", !Check.isE164(text) {
                    throw SchemaViolation(pointer: "", message: "must be an E.164 phone number such as +15005550006")
                }
            } catch {
                throw SchemaViolation(pointer: pointer + "/" + key, message: error.message)
            }
        }
        if let location = attributes["location"], !location.isNull {
            let locationPointer = pointer + "/location"
            let members = try Check.object(location, at: locationPointer)
            try Check.onlyKeys(members, locationKeys, at: locationPointer)
            for (key, member) in members where !member.isNull {
                if locationStringKeys.contains(key) {
                    _ = try Check.string(member, at: locationPointer + "/" + key, minLength: 0, maxLength: 255)
                } else {
                    switch member {
                    case .int, .double, .string: break
                    default:
                        throw SchemaViolation(
                            pointer: locationPointer + "/" + key,
                            message: "must be a number or a string, not \(member.typeName)")
                    }
                }
            }
        }
        if let properties = attributes["properties"], !properties.isNull {
            let members = try Check.object(properties, at: pointer + "/properties")
            if members.count > 400 {
                throw SchemaViolation(pointer: pointer + "/properties", message: "has more than 400 properties")
            }
        }
        if requireIdentifier && !hasProfileID {
            let hasIdentifier = identifierKeys.contains { key in
                if let member = attributes[key], !member.isNull { return true }
                return false
            }
            if !hasIdentifier {
                throw SchemaViolation(
                    pointer: pointer, message: "needs at least one of email, phone_number or external_id")
            }
        }
        if !requireIdentifier && attributes.isEmpty {
            throw SchemaViolation(pointer: pointer, message: "must change at least one attribute")
        }
        if JSONValue.object(attributes).jsonBytes().count > KlaviyoAPI.maxProfilePayloadBytes - 1024 {
            throw SchemaViolation(pointer: pointer, message: "is larger than Klaviyo's 100 KB profile limit")
        }
        return attributes
    }
}
