public import Klaviyo

/// One `profile.upsert` as a row of a profile bulk import job, when its meaning is the same in both calls.
///
/// The rule (spec revision 2025-10-15): a bulk import row is a `ProfileUpsertQueryResourceObject`, the very
/// schema of `POST /api/profile-import`, so the attributes the relay accepts (``ProfileAttributesValidator``)
/// read the same in both. Three things do not carry over, and such upserts go out singly:
/// - `profile_id`: profile-import updates that profile by id (404 when it does not exist); a bulk row with an
///   `id` is not documented to behave alike, so it is never coalesced.
/// - explicit `null`s (anywhere, also inside `location` or `properties`): profile-import documents that `null`
///   clears a field; the bulk import documentation does not, so a row that clears something goes out singly.
/// - size: a bulk row is limited to 100 KB (and the request to 5 MB); a row over
///   ``KlaviyoAPI/maxProfilePayloadBytes`` goes out singly.
///
/// Identifiers (`email` case-insensitively, `phone_number`, `external_id`) are what bulk import upserts by
/// and what its import errors name: no two rows of one batch share one (the later upsert waits for the next
/// batch, so Klaviyo applies them in order), which also makes every import error point at exactly one row.
public struct CoalescedRow: Sendable, Hashable {
    /// The profile attributes, as the bulk row's `attributes`.
    public var attributes: [String: JSONValue]
    /// The row's identifiers, normalized (`email:<lowercased>`, `phone_number:<…>`, `external_id:<…>`).
    public var identifiers: [String]

    /// The row for `payload`, or nil when the upsert must go out singly (see the type's rule).
    public init?(_ payload: ProfileUpsertPayload) {
        guard payload.profileID == nil, !Self.containsNull(.object(payload.attributes)) else { return nil }
        let identifiers = Self.identifiers(of: payload.attributes)
        guard !identifiers.isEmpty else { return nil }
        guard Self.rowBytes(payload.attributes) <= KlaviyoAPI.maxProfilePayloadBytes else { return nil }
        self.attributes = payload.attributes
        self.identifiers = identifiers
    }

    /// The row as stored in its batch: the command id beside the attributes.
    func stored(commandID: String) -> String {
        let row: JSONValue = ["command_id": .string(commandID), "attributes": .object(attributes)]
        return String(decoding: row.jsonBytes(), as: UTF8.self)
    }

    /// Bytes the row adds to the bulk request body.
    var requestBytes: Int { Self.rowBytes(attributes) }

    static func rowBytes(_ attributes: [String: JSONValue]) -> Int {
        // `{"type":"profile","attributes":…},`
        JSONValue.object(attributes).jsonBytes().count + 34
    }

    static func containsNull(_ value: JSONValue) -> Bool {
        switch value {
        case .null: return true
        case .object(let members): return members.values.contains(where: containsNull)
        case .array(let elements): return elements.contains(where: containsNull)
        default: return false
        }
    }

    /// The normalized identifiers of a profile's attributes.
    public static func identifiers(of attributes: [String: JSONValue]) -> [String] {
        var result: [String] = []
        if let email = attributes["email"]?.stringValue, !email.isEmpty { result.append("email:\(email.lowercased())") }
        for key in ["phone_number", "external_id"] {
            if let value = attributes[key]?.stringValue, !value.isEmpty { result.append("\(key):\(value)") }
        }
        return result
    }
}

/// Import errors of a finished bulk import job, matched to the batch's rows.
public enum ImportErrorMatcher {
    /// What matching found.
    public struct Matches: Sendable, Hashable {
        /// The first error of each row that has one, by row index.
        public var byRow: [Int: JSONValue]
        /// Errors that named no row of the batch.
        public var unmatched: Int
    }

    /// Matches `errors` (import-error resources) to `rows` (each row's attributes, in request order).
    ///
    /// An error names its row by `source.pointer` (`/data/attributes/profiles/data/<index>/…`) and carries the
    /// row itself as `original_payload`. The pointer is taken when it is in range and agrees with the payload's
    /// identifiers (or there is no payload); otherwise the payload's identifiers pick the row (unique within a
    /// batch). An error that matches neither way is counted as unmatched.
    ///
    /// Identifiers compare by their bytes, as Klaviyo and the coalescing scripts compare them: Swift's `String`
    /// equality is canonical equivalence, under which `café` and `cafe` + U+0301, two profiles to Klaviyo, are one,
    /// and the second row's error landed on the first row's command.
    public static func match(errors: [JSONValue], rows: [[String: JSONValue]]) -> Matches {
        func bytes(_ identifiers: [String]) -> [[UInt8]] { identifiers.map { Array($0.utf8) } }
        var rowByIdentifier: [[UInt8]: Int] = [:]
        for (index, row) in rows.enumerated() {
            for identifier in bytes(CoalescedRow.identifiers(of: row)) where rowByIdentifier[identifier] == nil {
                rowByIdentifier[identifier] = index
            }
        }
        var byRow: [Int: JSONValue] = [:]
        var unmatched = 0
        for error in errors {
            let attributes = error["attributes"] ?? error
            let payload = attributes["original_payload"]
            let payloadAttributes = payload?["attributes"]?.objectValue ?? payload?.objectValue ?? [:]
            let payloadIdentifiers = bytes(CoalescedRow.identifiers(of: payloadAttributes))
            var row: Int?
            if let pointer = attributes["source"]?["pointer"]?.stringValue, let index = rowIndex(pointer),
                index < rows.count
            {
                let rowIdentifiers = Set(bytes(CoalescedRow.identifiers(of: rows[index])))
                if payloadIdentifiers.isEmpty || !rowIdentifiers.isDisjoint(with: payloadIdentifiers) { row = index }
            }
            if row == nil {
                row = payloadIdentifiers.lazy.compactMap { rowByIdentifier[$0] }.first
            }
            guard let row else {
                unmatched += 1
                continue
            }
            if byRow[row] == nil { byRow[row] = attributes }
        }
        return Matches(byRow: byRow, unmatched: unmatched)
    }

    /// The row index in a pointer such as `/data/attributes/profiles/data/12/attributes/email`.
    static func rowIndex(_ pointer: String) -> Int? {
        let prefix = "/data/attributes/profiles/data/"
        guard pointer.hasPrefix(prefix) else { return nil }
        let rest = pointer.dropFirst(prefix.count)
        return Int(rest.prefix { $0.isNumber })
    }
}
