/// Everything one simulated account holds; lives inside its ``AccountBox`` mutex.
struct AccountState: Sendable {
    var account: SimAccount
    var profiles: [String: ProfileRecord] = [:]
    /// Profile ids in creation order (pagination order).
    var profileOrder: [String] = []
    var byEmail: [String: String] = [:]
    var byPhone: [String: String] = [:]
    var byExternalId: [String: String] = [:]

    var resources: AccountResources

    init(account: SimAccount) {
        self.account = account
        self.resources = AccountResources(now: SimIdentifiers.timestamp())
    }

    static func emailKey(_ email: String) -> String { email.lowercased() }

    /// The id of a profile other than `excluding` that already owns one of the identifiers in `attributes`.
    func conflictingProfile(for attributes: [String: JSONValue], excluding: String?) -> String? {
        if let e = attributes["email"]?.stringValue, let id = byEmail[Self.emailKey(e)], id != excluding { return id }
        if let p = attributes["phone_number"]?.stringValue, let id = byPhone[p], id != excluding { return id }
        if let x = attributes["external_id"]?.stringValue, let id = byExternalId[x], id != excluding { return id }
        return nil
    }

    /// Finds a profile by email, then phone number, then external id.
    func lookup(_ attributes: [String: JSONValue]) -> String? {
        if let e = attributes["email"]?.stringValue, let id = byEmail[Self.emailKey(e)] { return id }
        if let p = attributes["phone_number"]?.stringValue, let id = byPhone[p] { return id }
        if let x = attributes["external_id"]?.stringValue, let id = byExternalId[x] { return id }
        return nil
    }

    /// Creates a profile from validated attributes.
    mutating func create(attributes: [String: JSONValue], meta: JSONValue?, now: String) -> ProfileRecord {
        var record = ProfileRecord(
            id: SimIdentifiers.ulid(), attributes: [:], location: [:], properties: [:], created: now, updated: now)
        Self.apply(attributes: attributes, meta: meta, to: &record)
        profileOrder.append(record.id)
        store(record, previous: nil)
        return record
    }

    /// Updates an existing profile in place and returns it.
    mutating func update(id: String, attributes: [String: JSONValue], meta: JSONValue?, now: String) -> ProfileRecord? {
        guard var record = profiles[id] else { return nil }
        let previous = record
        Self.apply(attributes: attributes, meta: meta, to: &record)
        record.updated = now
        store(record, previous: previous)
        return record
    }

    mutating func store(_ record: ProfileRecord, previous: ProfileRecord?) {
        if let previous {
            if let e = previous.email { byEmail[Self.emailKey(e)] = nil }
            if let p = previous.phoneNumber { byPhone[p] = nil }
            if let x = previous.externalId { byExternalId[x] = nil }
        }
        if let e = record.email { byEmail[Self.emailKey(e)] = record.id }
        if let p = record.phoneNumber { byPhone[p] = record.id }
        if let x = record.externalId { byExternalId[x] = record.id }
        profiles[record.id] = record
    }

    /// Applies write semantics: `null` clears, omitted is unchanged, `location`/`properties` merge member-wise
    /// (a `null` member removes it; `properties: null` clears all), then `meta.patch_properties`.
    static func apply(attributes: [String: JSONValue], meta: JSONValue?, to record: inout ProfileRecord) {
        for (name, value) in attributes {
            switch name {
            case "location":
                if case .object(let members) = value {
                    for (k, v) in members {
                        if v.isNull { record.location.removeValue(forKey: k) } else { record.location[k] = v }
                    }
                } else {
                    record.location = [:]
                }
            case "properties":
                if case .object(let members) = value {
                    for (k, v) in members {
                        if v.isNull { record.properties.removeValue(forKey: k) } else { record.properties[k] = v }
                    }
                } else {
                    record.properties = [:]
                }
            case "_kx", "anonymous_id": continue
            default:
                if value.isNull { record.attributes.removeValue(forKey: name) } else { record.attributes[name] = value }
            }
        }
        guard let patch = meta?["patch_properties"]?.objectValue else { return }
        if let append = patch["append"]?.objectValue {
            for (k, v) in append {
                var list: [JSONValue]
                switch record.properties[k] {
                case .array(let a): list = a
                case nil, .null?: list = []
                case let other?: list = [other]
                }
                if case .array(let more) = v { list += more } else { list.append(v) }
                record.properties[k] = .array(list)
            }
        }
        if let unappend = patch["unappend"]?.objectValue {
            for (k, v) in unappend {
                guard case .array(let list)? = record.properties[k] else { continue }
                let remove: [JSONValue] = v.arrayValue ?? [v]
                record.properties[k] = .array(list.filter { !remove.contains($0) })
            }
        }
        switch patch["unset"] {
        case .string(let k)?: record.properties.removeValue(forKey: k)
        case .array(let keys)?: for k in keys.compactMap(\.stringValue) { record.properties.removeValue(forKey: k) }
        default: break
        }
    }
}

extension AccountState {
    /// Finds a profile by `id` or identifiers and applies `attributes`; creates one when none matches and
    /// `create` is true. Used by events, bulk imports and subscriptions. Returns nil when nothing matched and
    /// nothing was created.
    mutating func upsert(
        id: String?, attributes: [String: JSONValue], create: Bool, now: String
    ) -> Result<ProfileRecord?, KlaviyoAPIError> {
        if let id {
            guard profiles[id] != nil else { return .failure(.notFound("A profile with id \(id) does not exist.")) }
            if let other = conflictingProfile(for: attributes, excluding: id) {
                return .failure(.duplicateProfile(other))
            }
            return .success(update(id: id, attributes: attributes, meta: nil, now: now))
        }
        if let existing = lookup(attributes) {
            if let other = conflictingProfile(for: attributes, excluding: existing) {
                return .failure(.duplicateProfile(other))
            }
            return .success(update(id: existing, attributes: attributes, meta: nil, now: now))
        }
        guard create else { return .success(nil) }
        return .success(self.create(attributes: attributes, meta: nil, now: now))
    }

    /// Appends a side effect for `GET /_sim/accounts/{id}/side-effects`.
    mutating func note(_ kind: String, _ details: [String: JSONValue]) {
        var entry = details
        entry["kind"] = .string(kind)
        entry["at"] = .string(SimIdentifiers.timestamp())
        resources.sideEffects.append(.object(entry))
    }
}
