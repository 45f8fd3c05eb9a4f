import Klaviyo

/// Payload validation of `account.get`.
extension CommandDecoder {
    /// `account.get` takes an empty payload.
    static func decodeAccountGet(_ members: [String: JSONValue]) throws(SchemaViolation) {
        if let key = members.keys.sorted().first {
            throw SchemaViolation(
                pointer: "/payload/" + Check.escape(key), message: "is not allowed (account.get takes an empty payload)"
            )
        }
    }
}
