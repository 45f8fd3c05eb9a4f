/// A parsed `filter` for `GET /api/profiles`: `equals(field,"v")` or `any(field,["a","b"])` on `id`, `email`,
/// `phone_number` or `external_id` (the spec's allowed fields/operators for identifiers).
struct ProfileFilter: Sendable {
    let field: String
    let values: [String]

    static let fields: Set<String> = ["id", "email", "phone_number", "external_id"]

    init(parsing text: String, allowedFields: Set<String> = fields) throws(KlaviyoAPIError) {
        func bad(_ why: String) -> KlaviyoAPIError { .invalid("Invalid filter provided: \(why)", parameter: "filter") }
        let t = text.trimmingCharacters(in: .whitespaces)
        guard let open = t.firstIndex(of: "("), t.hasSuffix(")") else { throw bad("expected operator(field,value).") }
        let op = String(t[..<open])
        let inner = t[t.index(after: open)..<t.index(before: t.endIndex)]
        guard let comma = inner.firstIndex(of: ",") else { throw bad("expected operator(field,value).") }
        let field = inner[..<comma].trimmingCharacters(in: .whitespaces)
        let rawValue = inner[inner.index(after: comma)...].trimmingCharacters(in: .whitespaces)
        guard allowedFields.contains(field) else { throw bad("'\(field)' is not a filterable field of this resource.") }
        switch op {
        case "equals":
            guard let v = Self.unquote(Substring(rawValue)) else { throw bad("expected a quoted string.") }
            values = [v]
        case "any":
            guard rawValue.hasPrefix("["), rawValue.hasSuffix("]") else { throw bad("'any' expects a list.") }
            let body = rawValue.dropFirst().dropLast()
            var out: [String] = []
            for item in Self.splitList(body) {
                guard let v = Self.unquote(item) else { throw bad("expected quoted strings.") }
                out.append(v)
            }
            guard !out.isEmpty, out.count <= 100 else { throw bad("'any' expects 1 to 100 values.") }
            values = out
        default:
            throw bad("'\(op)' is not an allowed operator for '\(field)'.")
        }
        self.field = field
    }

    static func unquote(_ s: Substring) -> String? {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard t.count >= 2, let q = t.first, q == "\"" || q == "'", t.last == q else { return nil }
        return String(t.dropFirst().dropLast())
    }

    /// Splits `"a","b"` on commas outside quotes.
    static func splitList(_ s: Substring) -> [Substring] {
        var parts: [Substring] = []
        var quote: Character?
        var start = s.startIndex
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "," {
                parts.append(s[start..<i])
                start = s.index(after: i)
            }
            i = s.index(after: i)
        }
        if start < s.endIndex || !parts.isEmpty { parts.append(s[start...]) }
        return parts
    }

    func matches(_ r: ProfileRecord) -> Bool {
        switch field {
        case "id": values.contains(r.id)
        case "email": r.email.map { e in values.contains { $0.lowercased() == e.lowercased() } } ?? false
        case "phone_number": r.phoneNumber.map(values.contains) ?? false
        default: r.externalId.map(values.contains) ?? false
        }
    }

    /// Candidate ids from the indexes, in creation order, deduplicated.
    func candidateIds(in s: AccountState) -> [String] {
        var ids: [String] = []
        for v in values {
            let id: String? =
                switch field {
                case "id": s.profiles[v] != nil ? v : nil
                case "email": s.byEmail[AccountState.emailKey(v)]
                case "phone_number": s.byPhone[v]
                default: s.byExternalId[v]
                }
            if let id, !ids.contains(id) { ids.append(id) }
        }
        return ids
    }
}
