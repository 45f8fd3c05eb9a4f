/// Matches request paths against the spec's path templates.
///
/// Templates are grouped by segment count; literal segments beat `{param}` segments, so `/api/profiles/{id}`
/// never shadows a literal sibling. Trailing slashes are ignored (Klaviyo accepts both forms).
public struct OperationRouter: Sendable {
    /// The outcome of a lookup.
    public enum Match: Sendable {
        /// A known operation, with its path parameters in template order.
        case operation(KlaviyoOperation, parameters: [String])
        /// The path exists, but not for this method.
        case methodNotAllowed
        /// No such path.
        case notFound
    }

    struct Template: Sendable {
        var segments: [Substring?]  // nil = parameter
        var literalCount: Int
        var operations: [String: KlaviyoOperation]  // by method
    }

    let bySegmentCount: [Int: [Template]]

    /// Builds a router over `operations`.
    public init(operations: [KlaviyoOperation]) {
        var templates: [String: Template] = [:]
        for op in operations {
            let segments = op.path.split(separator: "/").map { $0.hasPrefix("{") ? nil : $0 }
            var t =
                templates[op.path]
                ?? Template(segments: segments, literalCount: segments.count { $0 != nil }, operations: [:])
            t.operations[op.method] = op
            templates[op.path] = t
        }
        var grouped: [Int: [Template]] = [:]
        for t in templates.values { grouped[t.segments.count, default: []].append(t) }
        for k in grouped.keys { grouped[k]!.sort { $0.literalCount > $1.literalCount } }
        bySegmentCount = grouped
    }

    /// Looks up `method` and `path` (no query string).
    public func match(method: String, path: String) -> Match {
        let parts = path.split(separator: "/")
        guard let candidates = bySegmentCount[parts.count] else { return .notFound }
        for t in candidates {
            var params: [String] = []
            var ok = true
            for (seg, part) in zip(t.segments, parts) {
                if let seg {
                    if seg != part {
                        ok = false
                        break
                    }
                } else {
                    params.append(String(part))
                }
            }
            guard ok else { continue }
            guard let op = t.operations[method] else { return .methodNotAllowed }
            return .operation(op, parameters: params)
        }
        return .notFound
    }
}
