import Klaviyo

/// Payload validation of `connection.validate` and `connection.disconnect`.
extension CommandDecoder {
    /// `connection.validate` takes an empty payload.
    static func decodeConnectionValidate(_ members: [String: JSONValue]) throws(SchemaViolation) {
        if let key = members.keys.sorted().first {
            throw SchemaViolation(
                pointer: "/payload/" + Check.escape(key),
                message: "is not allowed (connection.validate takes an empty payload)")
        }
    }

    /// `connection.disconnect`: an optional `reason`, carried into the connection event.
    static func decodeConnectionDisconnect(_ members: [String: JSONValue]) throws(SchemaViolation) -> String? {
        try Check.onlyKeys(members, ["reason"], at: "/payload")
        var reason: String?
        if let value = members["reason"] { reason = try Check.string(value, at: "/payload/reason", maxLength: 200) }
        return reason
    }
}
