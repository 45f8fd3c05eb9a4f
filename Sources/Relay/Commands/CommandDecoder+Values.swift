import Klaviyo

/// Helpers of the payload validations shared by several command families. Klaviyo's limits are enforced
/// when a command is decoded: what Klaviyo takes in smaller calls is split later, what no split can fix is
/// rejected with the reason.
extension CommandDecoder {
    /// Most items (events, profile ids, subscribers) one command may carry; larger sets are rejected.
    static let maxItemsPerCommand = 10_000

    static func array(
        _ value: JSONValue?, at pointer: String, minCount: Int = 1, maxCount: Int
    )
        throws(SchemaViolation) -> [JSONValue]
    {
        guard let value else { throw SchemaViolation(pointer: pointer, message: "is required") }
        guard case .array(let items) = value else {
            throw SchemaViolation(pointer: pointer, message: "must be an array, not \(value.typeName)")
        }
        if items.count < minCount {
            throw SchemaViolation(
                pointer: pointer, message: "needs at least \(minCount) item\(minCount == 1 ? "" : "s")")
        }
        if items.count > maxCount {
            throw SchemaViolation(
                pointer: pointer, message: "has \(items.count) items; at most \(maxCount) per command (split it)")
        }
        return items
    }

    static func bool(_ value: JSONValue?, at pointer: String) throws(SchemaViolation) -> Bool {
        guard case .bool(let flag)? = value else {
            throw SchemaViolation(pointer: pointer, message: "must be a boolean, not \(value?.typeName ?? "missing")")
        }
        return flag
    }

    static func email(_ value: JSONValue?, at pointer: String) throws(SchemaViolation) -> String {
        let text = try Check.string(value, at: pointer, maxLength: 254)
        guard Check.isEmail(text) else {
            throw SchemaViolation(pointer: pointer, message: "is not a valid email address")
        }
        return text
    }

    static func phone(_ value: JSONValue?, at pointer: String) throws(SchemaViolation) -> String {
        let text = try Check.string(value, at: pointer, maxLength: 16)
        guard Check.isE164(text) else {
            throw SchemaViolation(pointer: pointer, message: "must be an E.164 phone number such as +15005550006")
        }
        return text
    }

    /// An RFC 3339 date-time; returns the text and its epoch seconds.
    static func dateTime(_ value: JSONValue?, at pointer: String) throws(SchemaViolation) -> (String, Int64) {
        let text = try Check.string(value, at: pointer, maxLength: 64)
        guard Check.isRFC3339(text), let seconds = Timestamp.epochSeconds(rfc3339: text) else {
            throw SchemaViolation(pointer: pointer, message: "must be an RFC 3339 date-time")
        }
        return (text, seconds)
    }
}
