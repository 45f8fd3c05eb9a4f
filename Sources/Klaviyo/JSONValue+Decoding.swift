import Foundation

extension JSONValue {
    /// Decodes a `Decodable` type from this value.
    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(value.jsonBytes()))
    }

    /// Encodes an `Encodable` value into a `JSONValue`.
    public static func encode(_ value: some Encodable) throws -> JSONValue {
        try JSONValue.parse(Array(JSONEncoder().encode(value)))
    }
}
