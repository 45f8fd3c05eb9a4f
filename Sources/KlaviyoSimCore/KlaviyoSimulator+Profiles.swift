import Foundation

extension KlaviyoSimulator {
    /// Checks email and E.164 phone formats in a profile's attributes.
    static func checkIdentifierFormats(_ attributes: [String: JSONValue], pointer: String) throws(KlaviyoAPIError) {
        if let email = attributes["email"]?.stringValue, !isValidEmail(email) {
            throw .invalid("Invalid email address", pointer: "\(pointer)/email")
        }
        if let phone = attributes["phone_number"]?.stringValue, !isValidE164(phone) {
            throw .invalid(
                "Invalid phone number format (Example of a valid format: +13239169023)",
                pointer: "\(pointer)/phone_number")
        }
    }

    /// A pragmatic email check on UTF-8 bytes: one `@`, non-empty local part, a dotted domain without empty
    /// labels, no whitespace, commas or angle brackets, at most 254 bytes.
    static func isValidEmail(_ s: String) -> Bool {
        var at = -1
        var count = 0
        var dotAfterAt = false
        var previous: UInt8 = 0
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "@"):
                if at >= 0 { return false }
                at = count
            case UInt8(ascii: "."):
                if at >= 0 {
                    if previous == UInt8(ascii: "@") || previous == UInt8(ascii: ".") { return false }
                    dotAfterAt = true
                }
            case 0...0x20, UInt8(ascii: ","), UInt8(ascii: "<"), UInt8(ascii: ">"), 0x7F:
                return false
            default: break
            }
            previous = b
            count += 1
        }
        return at > 0 && count <= 254 && count - at - 1 >= 3 && dotAfterAt && previous != UInt8(ascii: ".")
    }

    static func isValidE164(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count >= 3, b.count <= 16, b[0] == UInt8(ascii: "+"), b[1] != UInt8(ascii: "0") else { return false }
        return b.dropFirst().allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    static func hasIdentifier(_ attributes: [String: JSONValue]) -> Bool {
        ["email", "phone_number", "external_id", "_kx", "anonymous_id"].contains { attributes[$0]?.stringValue != nil }
    }

    /// `POST /api/profile-import`: upsert by `data.id`, else email, phone number, external id.
    func createOrUpdateProfile(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let data = call.body?["data"]
        let attributes = data?["attributes"]?.objectValue ?? [:]
        let id = data?["id"]?.stringValue
        let meta = data?["meta"]
        guard id != nil || Self.hasIdentifier(attributes) else {
            throw .invalid(
                "One of the following identifiers is required: id, email, phone_number, external_id, _kx.",
                pointer: "/data/attributes")
        }
        try Self.checkIdentifierFormats(attributes, pointer: "/data/attributes")
        let now = SimIdentifiers.timestamp()
        let outcome: Result<(ProfileRecord, Bool), KlaviyoAPIError> = call.caller.box.state.withLock { s in
            if let id {
                guard s.profiles[id] != nil else {
                    return .failure(.notFound("A profile with id \(id) does not exist."))
                }
                // Klaviyo's quirk (docs/klaviyo-sim.md): id plus an identifier owned by another profile answers 404.
                if s.conflictingProfile(for: attributes, excluding: id) != nil {
                    return .failure(.notFound("A profile with id \(id) and the given identifiers does not exist."))
                }
                return .success((s.update(id: id, attributes: attributes, meta: meta, now: now)!, false))
            }
            if let existing = s.lookup(attributes) {
                if let other = s.conflictingProfile(for: attributes, excluding: existing) {
                    return .failure(.duplicateProfile(other))
                }
                return .success((s.update(id: existing, attributes: attributes, meta: meta, now: now)!, false))
            }
            return .success((s.create(attributes: attributes, meta: meta, now: now), true))
        }
        let (record, created) = try outcome.get()
        return APIResult(status: created ? 201 : 200, rawBody: record.document(base: call.base))
    }

    /// `POST /api/profiles`: 201, or 409 `duplicate_profile` when an identifier exists.
    func createProfile(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let data = call.body?["data"]
        let attributes = data?["attributes"]?.objectValue ?? [:]
        guard Self.hasIdentifier(attributes) else {
            throw .invalid(
                "One of the following identifiers is required: email, phone_number, external_id, _kx.",
                pointer: "/data/attributes")
        }
        try Self.checkIdentifierFormats(attributes, pointer: "/data/attributes")
        let now = SimIdentifiers.timestamp()
        let outcome: Result<ProfileRecord, KlaviyoAPIError> = call.caller.box.state.withLock { s in
            if let other = s.conflictingProfile(for: attributes, excluding: nil) {
                return .failure(.duplicateProfile(other))
            }
            return .success(s.create(attributes: attributes, meta: data?["meta"], now: now))
        }
        return APIResult(status: 201, rawBody: try outcome.get().document(base: call.base))
    }

    /// `GET /api/profiles/{id}`.
    func getProfile(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let id = call.parameters.first ?? ""
        guard let record = call.caller.box.state.withLock({ $0.profiles[id] }) else {
            throw .notFound("A profile with id \(id) does not exist.")
        }
        return APIResult(
            status: 200,
            body: [
                "data": record.resource(base: call.base),
                "links": ["self": .string("\(call.base)/api/profiles/\(id)/")],
            ])
    }

    /// `PATCH /api/profiles/{id}`: `null` clears, omitted unchanged; 409 on an identifier of another profile.
    func updateProfile(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let id = call.parameters.first ?? ""
        let data = call.body?["data"]
        guard data?["id"]?.stringValue == id else {
            throw KlaviyoAPIError(
                status: 409, code: "conflict", title: "Conflict.",
                detail: "The id in the request body does not match the id in the URL.", source: .pointer("/data/id"))
        }
        let attributes = data?["attributes"]?.objectValue ?? [:]
        try Self.checkIdentifierFormats(attributes, pointer: "/data/attributes")
        let now = SimIdentifiers.timestamp()
        let outcome: Result<ProfileRecord, KlaviyoAPIError> = call.caller.box.state.withLock { s in
            guard s.profiles[id] != nil else { return .failure(.notFound("A profile with id \(id) does not exist.")) }
            if let other = s.conflictingProfile(for: attributes, excluding: id) {
                return .failure(.duplicateProfile(other))
            }
            return .success(s.update(id: id, attributes: attributes, meta: data?["meta"], now: now)!)
        }
        return APIResult(status: 200, rawBody: try outcome.get().document(base: call.base))
    }

    /// `GET /api/profiles` with `filter`, `page[size]` (1…100, default 20) and `page[cursor]`.
    func getProfiles(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        var filter: ProfileFilter?
        var pageSize = 20
        var offset = 0
        for (name, value) in call.query {
            switch name {
            case "filter":
                filter = try ProfileFilter(parsing: value)
            case "page[size]":
                guard let n = Int(value), (1...100).contains(n) else {
                    throw .invalid("Page size must be an integer between 1 and 100.", parameter: "page[size]")
                }
                pageSize = n
            case "page[cursor]":
                guard let decoded = Data(base64Encoded: value).map({ String(decoding: $0, as: UTF8.self) }),
                    decoded.hasPrefix("offset:"), let n = Int(decoded.dropFirst(7)), n >= 0
                else { throw .invalid("Invalid page cursor.", parameter: "page[cursor]") }
                offset = n
            default: continue
            }
        }
        let (page, hasMore): ([ProfileRecord], Bool) = call.caller.box.state.withLock { s in
            var matches: [ProfileRecord] = []
            var skipped = 0
            var more = false
            func consider(_ id: String) -> Bool {
                guard let r = s.profiles[id], filter?.matches(r) ?? true else { return true }
                if skipped < offset {
                    skipped += 1
                    return true
                }
                if matches.count == pageSize {
                    more = true
                    return false
                }
                matches.append(r)
                return true
            }
            if let ids = filter?.candidateIds(in: s) {
                for id in ids where !consider(id) { break }
            } else {
                for id in s.profileOrder where !consider(id) { break }
            }
            return (matches, more)
        }
        let selfLink = "\(call.base)/api/profiles/" + (call.rawQuery.isEmpty ? "" : "?\(call.rawQuery)")
        var links: [String: JSONValue] = ["self": .string(selfLink)]
        func cursorLink(_ at: Int) -> JSONValue {
            let cursor = Data("offset:\(at)".utf8).base64EncodedString()
            var items = call.query.filter { $0.0 != "page[cursor]" }
            items.append(("page[cursor]", cursor))
            let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
            let q = items.map { k, v in
                "\(k.addingPercentEncoding(withAllowedCharacters: allowed) ?? k)=\(v.addingPercentEncoding(withAllowedCharacters: allowed) ?? v)"
            }.joined(separator: "&")
            return .string("\(call.base)/api/profiles/?\(q)")
        }
        if hasMore { links["next"] = cursorLink(offset + pageSize) }
        if offset > 0 { links["prev"] = cursorLink(max(0, offset - pageSize)) }
        return APIResult(
            status: 200,
            body: ["data": .array(page.map { $0.resource(base: call.base) }), "links": .object(links)])
    }
}
