/// One entry of a Klaviyo JSON:API `errors` array.
///
/// Decoded leniently: real responses carry `status` as a number while the spec omits it, and `meta`,
/// `links` and `source` are optional.
public struct KlaviyoAPIError: Sendable, Hashable, Codable {
    /// Klaviyo's error id (useful when talking to Klaviyo support).
    public var id: String?
    /// HTTP status as reported inside the error.
    public var status: Int?
    /// Machine code such as `invalid`, `not_authenticated`, `permission_denied`, `throttled`.
    public var code: String?
    /// Short title.
    public var title: String?
    /// Human-readable detail.
    public var detail: String?
    /// JSON pointer into the request document that caused the error.
    public var sourcePointer: String?
    /// Query parameter that caused the error.
    public var sourceParameter: String?
    /// `meta.duplicate_profile_id` of a 409 on profile creation.
    public var duplicateProfileID: String?

    /// Creates an error entry.
    public init(
        id: String? = nil, status: Int? = nil, code: String? = nil, title: String? = nil, detail: String? = nil,
        sourcePointer: String? = nil, sourceParameter: String? = nil, duplicateProfileID: String? = nil
    ) {
        self.id = id
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.sourcePointer = sourcePointer
        self.sourceParameter = sourceParameter
        self.duplicateProfileID = duplicateProfileID
    }

    enum CodingKeys: String, CodingKey {
        case id, status, code, title, detail, source, meta
        case sourcePointer = "source_pointer"
        case sourceParameter = "source_parameter"
        case duplicateProfileID = "duplicate_profile_id"
    }

    /// Decodes Klaviyo's shape (`source.pointer`, `meta.duplicate_profile_id`) or the flat shape this type
    /// encodes to.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try? container.decodeIfPresent(String.self, forKey: .id)
        if let number = try? container.decodeIfPresent(Int.self, forKey: .status) {
            status = number
        } else if let text = try? container.decodeIfPresent(String.self, forKey: .status) {
            status = Int(text)
        }
        code = try? container.decodeIfPresent(String.self, forKey: .code)
        title = try? container.decodeIfPresent(String.self, forKey: .title)
        detail = try? container.decodeIfPresent(String.self, forKey: .detail)
        let source = try? container.decodeIfPresent(JSONValue.self, forKey: .source)
        sourcePointer =
            source?["pointer"]?.stringValue ?? (try? container.decodeIfPresent(String.self, forKey: .sourcePointer))
        sourceParameter =
            source?["parameter"]?.stringValue
            ?? (try? container.decodeIfPresent(String.self, forKey: .sourceParameter))
        let meta = try? container.decodeIfPresent(JSONValue.self, forKey: .meta)
        duplicateProfileID =
            meta?["duplicate_profile_id"]?.stringValue
            ?? (try? container.decodeIfPresent(String.self, forKey: .duplicateProfileID))
    }

    /// Encodes the flat shape used in results and dead-letter details.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(id, forKey: .id)
        try container.encodeIfPresent(status, forKey: .status)
        try container.encodeIfPresent(code, forKey: .code)
        try container.encodeIfPresent(title, forKey: .title)
        try container.encodeIfPresent(detail, forKey: .detail)
        try container.encodeIfPresent(sourcePointer, forKey: .sourcePointer)
        try container.encodeIfPresent(sourceParameter, forKey: .sourceParameter)
        try container.encodeIfPresent(duplicateProfileID, forKey: .duplicateProfileID)
    }

    /// `code: detail (at pointer)` in one line.
    public var summary: String {
        var text = code ?? "error"
        if let detail { text += ": \(detail)" }
        if let pointer = sourcePointer { text += " (at \(pointer))" }
        if let parameter = sourceParameter { text += " (parameter \(parameter))" }
        return text
    }
}
