/// Validates JSON bodies against a request schema taken from Klaviyo's OpenAPI spec.
///
/// The schema is compiled once into a tree of nodes; validation walks the body and that tree together and stops
/// at the first problem, which it reports as a JSON pointer and a Klaviyo-style message. Supported keywords:
/// `type`, `nullable`, `enum`, `required`, `properties`, `items`, `minItems`, `maxItems`, `minimum`, `maximum`,
/// `oneOf`/`anyOf` (any branch may match), `allOf`. Objects that declare `properties` reject unknown members,
/// as Klaviyo does ("is not a valid field").
public final class SchemaValidator: Sendable {
    /// The first problem found in a body.
    public struct Failure: Sendable, Equatable {
        /// JSON pointer of the offending member, e.g. `/data/attributes/email`.
        public var pointer: String
        /// Human-readable detail for the error body.
        public var detail: String
    }

    let root: SchemaNode

    /// Compiles a schema given as JSON text.
    public init(schemaJSON: String) throws {
        self.root = SchemaNode(try JSONValue.parse(schemaJSON))
    }

    /// Returns the first validation failure, or `nil` when `value` is valid.
    public func validate(_ value: JSONValue) -> Failure? {
        root.validate(value, pointer: .root)
    }
}

/// One compiled schema node.
final class SchemaNode: Sendable {
    let types: [String]
    let nullable: Bool
    let enumValues: [JSONValue]?
    let required: [String]
    let properties: [String: SchemaNode]?
    let allowsAdditional: Bool
    let items: SchemaNode?
    let minItems: Int?
    let maxItems: Int?
    let minimum: Double?
    let maximum: Double?
    let anyOf: [SchemaNode]
    let allOf: [SchemaNode]

    init(_ json: JSONValue) {
        let o = json.objectValue ?? [:]
        if case .string(let t) = o["type"] { types = [t] } else { types = [] }
        nullable = o["nullable"] == .bool(true)
        enumValues = o["enum"]?.arrayValue
        required = (o["required"]?.arrayValue ?? []).compactMap(\.stringValue)
        if let props = o["properties"]?.objectValue {
            properties = props.mapValues { SchemaNode($0) }
        } else {
            properties = nil
        }
        allowsAdditional = o["additionalProperties"] != nil && o["additionalProperties"] != .bool(false)
        items = o["items"].map { SchemaNode($0) }
        minItems = o["minItems"]?.intValue
        maxItems = o["maxItems"]?.intValue
        minimum = Self.number(o["minimum"])
        maximum = Self.number(o["maximum"])
        anyOf = ((o["oneOf"]?.arrayValue ?? []) + (o["anyOf"]?.arrayValue ?? [])).map { SchemaNode($0) }
        allOf = (o["allOf"]?.arrayValue ?? []).map { SchemaNode($0) }
    }

    static func number(_ v: JSONValue?) -> Double? {
        switch v {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }

    static func key(_ pointer: Pointer) -> String {
        switch pointer {
        case .root: "data"
        case .member(_, let name): name
        case .index(let parent, _): key(parent)
        }
    }

    func validate(_ value: JSONValue, pointer: Pointer) -> SchemaValidator.Failure? {
        if value.isNull {
            if nullable || (types.isEmpty && anyOf.isEmpty && allOf.isEmpty) { return nil }
            return .init(pointer: pointer.string, detail: "'\(Self.key(pointer))' may not be null.")
        }
        if let t = types.first, !Self.matches(value, type: t) {
            return .init(
                pointer: pointer.string,
                detail: "Invalid input: '\(Self.key(pointer))' must be of type \(t), got \(value.typeName).")
        }
        if let enumValues, !enumValues.contains(value) {
            let choices = enumValues.map { $0.stringValue.map { "'\($0)'" } ?? $0.jsonString }.joined(separator: ", ")
            return .init(
                pointer: pointer.string,
                detail: "'\(value.stringValue ?? value.jsonString)' is not a valid choice for '\(Self.key(pointer))'. "
                    + "Valid choices: \(choices).")
        }
        for node in allOf {
            if let f = node.validate(value, pointer: pointer) { return f }
        }
        if !anyOf.isEmpty {
            var firstFailure: SchemaValidator.Failure?
            for node in anyOf {
                guard let f = node.validate(value, pointer: pointer) else {
                    firstFailure = nil
                    break
                }
                if firstFailure == nil { firstFailure = f }
                firstFailure = firstFailure ?? f
            }
            if let firstFailure { return firstFailure }
        }
        switch value {
        case .object(let members):
            for name in required where members[name] == nil {
                return .init(pointer: pointer.string + "/" + name, detail: "'\(name)' is a required field.")
            }
            if let properties {
                for (name, member) in members {
                    if let node = properties[name] {
                        if let f = node.validate(member, pointer: Self.child(pointer, name)) { return f }
                    } else if !allowsAdditional {
                        return .init(
                            pointer: pointer.string + "/" + name,
                            detail: "'\(name)' is not a valid field for the resource '\(Self.key(pointer))'.")
                    }
                }
            }
        case .array(let elements):
            if let minItems, elements.count < minItems {
                return .init(
                    pointer: pointer.string, detail: "'\(Self.key(pointer))' must contain at least \(minItems) items.")
            }
            if let maxItems, elements.count > maxItems {
                return .init(
                    pointer: pointer.string, detail: "'\(Self.key(pointer))' must contain at most \(maxItems) items.")
            }
            if let items {
                for (i, e) in elements.enumerated() {
                    if let f = items.validate(e, pointer: Self.child(pointer, i)) { return f }
                }
            }
        case .int, .double:
            let d = Self.number(value) ?? 0
            if let minimum, d < minimum {
                return .init(pointer: pointer.string, detail: "'\(Self.key(pointer))' must be at least \(minimum).")
            }
            if let maximum, d > maximum {
                return .init(pointer: pointer.string, detail: "'\(Self.key(pointer))' must be at most \(maximum).")
            }
        default: break
        }
        return nil
    }

    /// Child pointers are built only when a failure is reported (see ``Pointer``), keeping valid bodies cheap.
    static func child(_ parent: Pointer, _ name: String) -> Pointer { .member(parent, name) }
    static func child(_ parent: Pointer, _ index: Int) -> Pointer { .index(parent, index) }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("string", .string), ("boolean", .bool), ("object", .object), ("array", .array): true
        case ("integer", .int): true
        case ("integer", .double(let d)): d.rounded() == d
        case ("number", .int), ("number", .double): true
        default: false
        }
    }
}

/// A JSON pointer built as a linked list, rendered to text only for error reports.
indirect enum Pointer: Sendable {
    case root
    case member(Pointer, String)
    case index(Pointer, Int)

    var string: String {
        switch self {
        case .root: ""
        case .member(let parent, let name): parent.string + "/" + name
        case .index(let parent, let i): parent.string + "/\(i)"
        }
    }
}
