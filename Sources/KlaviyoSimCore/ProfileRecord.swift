/// One stored profile. `attributes` holds the writable attributes exactly as last written (absent = null).
struct ProfileRecord: Sendable {
    /// Attribute names a profile write may set, besides `location` and `properties`.
    static let scalarAttributes = [
        "email", "phone_number", "external_id", "first_name", "last_name", "organization", "locale", "title",
        "image",
    ]
    /// Location members, all rendered (null when unset).
    static let locationMembers = [
        "address1", "address2", "city", "country", "latitude", "longitude", "region", "zip", "timezone", "ip",
    ]

    var id: String
    var attributes: [String: JSONValue]
    var location: [String: JSONValue]
    var properties: [String: JSONValue]
    var created: String
    var updated: String
    var lastEventDate: String?

    var email: String? { attributes["email"]?.stringValue }
    var phoneNumber: String? { attributes["phone_number"]?.stringValue }
    var externalId: String? { attributes["external_id"]?.stringValue }

    /// The JSON:API resource object (`type`, `id`, `attributes`, `relationships`, `links`).
    func resource(base: String) -> JSONValue {
        var attrs: [String: JSONValue] = [:]
        for name in Self.scalarAttributes { attrs[name] = attributes[name] ?? .null }
        var loc: [String: JSONValue] = [:]
        for name in Self.locationMembers { loc[name] = location[name] ?? .null }
        attrs["location"] = .object(loc)
        attrs["properties"] = .object(properties)
        attrs["created"] = .string(created)
        attrs["updated"] = .string(updated)
        attrs["last_event_date"] = .optional(lastEventDate)
        let selfLink = "\(base)/api/profiles/\(id)/"
        func rel(_ name: String) -> JSONValue {
            [
                "links": [
                    "self": .string("\(selfLink)relationships/\(name)/"),
                    "related": .string("\(selfLink)\(name)/"),
                ]
            ]
        }
        return [
            "type": "profile",
            "id": .string(id),
            "attributes": .object(attrs),
            "relationships": ["lists": rel("lists"), "segments": rel("segments"), "push-tokens": rel("push-tokens")],
            "links": ["self": .string(selfLink)],
        ]
    }

    /// A flat summary for the admin API.
    var adminSummary: JSONValue {
        var attrs: [String: JSONValue] = attributes
        attrs["location"] = .object(location)
        attrs["properties"] = .object(properties)
        return [
            "id": .string(id),
            "email": .optional(email),
            "phone_number": .optional(phoneNumber),
            "external_id": .optional(externalId),
            "attributes": .object(attrs),
            "created": .string(created),
            "updated": .string(updated),
        ]
    }
}
