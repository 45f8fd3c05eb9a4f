import Klaviyo

/// Payload validation of `profile.upsert`, `profile.update`, `profile.get` and `profile.bulk_import`.
extension CommandDecoder {
    /// Klaviyo: at most 100 KB per profile of a bulk-import job …
    static let maxBulkImportProfileBytes = 100 * 1024
    /// … and 5 MB per job request.
    static let maxBulkImportJobBytes = 5 * 1024 * 1024

    static func decodeProfileUpsert(_ members: [String: JSONValue]) throws(SchemaViolation) -> ProfileUpsertPayload {
        try Check.onlyKeys(members, ["profile", "profile_id"], at: "/payload")
        var profileID: String?
        if let idValue = members["profile_id"] {
            profileID = try Check.resourceID(idValue, at: "/payload/profile_id")
        }
        let attributes = try ProfileAttributesValidator.validate(
            members["profile"], at: "/payload/profile", requireIdentifier: true, hasProfileID: profileID != nil)
        return ProfileUpsertPayload(attributes: attributes, profileID: profileID)
    }

    static func decodeProfileUpdate(_ members: [String: JSONValue]) throws(SchemaViolation) -> ProfileUpdatePayload {
        try Check.onlyKeys(members, ["profile_id", "profile"], at: "/payload")
        let profileID = try Check.resourceID(members["profile_id"], at: "/payload/profile_id")
        let attributes = try ProfileAttributesValidator.validate(
            members["profile"], at: "/payload/profile", requireIdentifier: false, hasProfileID: true)
        return ProfileUpdatePayload(profileID: profileID, attributes: attributes)
    }

    static func decodeProfileGet(_ members: [String: JSONValue]) throws(SchemaViolation) -> ProfileGetPayload {
        let keys = ["email", "phone_number", "external_id", "profile_id"]
        try Check.onlyKeys(members, Set(keys), at: "/payload")
        let present = keys.filter { members[$0] != nil }
        guard present.count == 1, let key = present.first else {
            throw SchemaViolation(
                pointer: "/payload", message: "needs exactly one of email, phone_number, external_id or profile_id")
        }
        let text = try Check.string(members[key], at: "/payload/\(key)", maxLength: 255)
        switch key {
        case "email":
            guard Check.isEmail(text) else {
                throw SchemaViolation(pointer: "/payload/email", message: "is not a valid email address")
            }
            return ProfileGetPayload(lookup: .email(text))
        case "phone_number":
            guard Check.isE164(text) else {
                throw SchemaViolation(pointer: "/payload/phone_number", message: "must be an E.164 phone number")
            }
            return ProfileGetPayload(lookup: .phoneNumber(text))
        case "external_id":
            return ProfileGetPayload(lookup: .externalID(text))
        default:
            guard text != "." && text != ".." else {
                throw SchemaViolation(pointer: "/payload/profile_id", message: "must be a resource id, not \"\(text)\"")
            }
            return ProfileGetPayload(lookup: .id(text))
        }
    }

    /// `profile.bulk_import`: 1–10,000 profiles (each with an identifier, ≤ 100 KB), ≤ 5 MB in all, an
    /// optional `list_id`. Larger imports are rejected before any call: split them into several commands.
    static func decodeProfileBulkImport(
        _ members: [String: JSONValue]
    ) throws(SchemaViolation)
        -> ProfileBulkImportPayload
    {
        try Check.onlyKeys(members, ["profiles", "list_id"], at: "/payload")
        var listID: String?
        if members["list_id"] != nil {
            listID = try Check.resourceID(members["list_id"], at: "/payload/list_id")
        }
        let items = try array(members["profiles"], at: "/payload/profiles", maxCount: maxItemsPerCommand)
        var profiles: [[String: JSONValue]] = []
        profiles.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let pointer = "/payload/profiles/\(index)"
            let attributes = try ProfileAttributesValidator.validate(
                item, at: pointer, requireIdentifier: true, hasProfileID: false)
            let bytes = JSONValue.object(["type": "profile", "attributes": .object(attributes)]).jsonBytes().count
            if bytes > maxBulkImportProfileBytes {
                throw SchemaViolation(
                    pointer: pointer, message: "is \(bytes) bytes; Klaviyo takes at most 100 KB per profile")
            }
            profiles.append(attributes)
        }
        let request = KlaviyoClient.bulkImportProfilesRequest(profiles: profiles, listID: listID)
        let total = request.body?.jsonBytes().count ?? 0
        if total > maxBulkImportJobBytes {
            throw SchemaViolation(
                pointer: "/payload/profiles",
                message: "makes a \(total)-byte job; Klaviyo takes at most 5 MB per bulk import (split it)")
        }
        return ProfileBulkImportPayload(profiles: profiles, listID: listID)
    }
}
