import Foundation

extension KlaviyoSimulator {
    static func listResource(_ l: AccountResources.ListRecord, base: String) -> JSONValue {
        let selfLink = "\(base)/api/lists/\(l.id)/"
        func rel(_ name: String) -> JSONValue {
            [
                "links": [
                    "self": .string("\(selfLink)relationships/\(name)/"), "related": .string("\(selfLink)\(name)/"),
                ]
            ]
        }
        return [
            "type": "list", "id": .string(l.id),
            "attributes": [
                "name": .string(l.name), "created": .string(l.created), "updated": .string(l.updated),
                "opt_in_process": .string(l.optInProcess),
            ],
            "relationships": ["profiles": rel("profiles"), "tags": rel("tags"), "flow-triggers": rel("flow-triggers")],
            "links": ["self": .string(selfLink)],
        ]
    }

    /// `POST /api/lists` → 201 (not idempotent; the spec's 150/day cap is enforced by the rate limiter).
    func createList(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let attrs = call.body?["data"]?["attributes"]
        let name = attrs?["name"]?.stringValue ?? ""
        guard !name.isEmpty else { throw .invalid("'name' may not be blank.", pointer: "/data/attributes/name") }
        let now = SimIdentifiers.timestamp()
        let list = AccountResources.ListRecord(
            id: SimIdentifiers.short(), name: name,
            optInProcess: attrs?["opt_in_process"]?.stringValue ?? "single_opt_in",
            created: now, updated: now)
        call.caller.box.state.withLock { s in
            s.resources.lists[list.id] = list
            s.resources.listOrder.append(list.id)
            s.note("list_created", ["list_id": .string(list.id), "name": .string(name)])
        }
        return APIResult(status: 201, body: ["data": Self.listResource(list, base: call.base)])
    }

    /// `GET /api/lists` (filter on name with equals/any; 10 per page).
    func getLists(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        var filter: ProfileFilter?
        var offset = 0
        for (k, v) in call.query {
            if k == "filter" { filter = try ProfileFilter(parsing: v, allowedFields: ["name", "id"]) }
            if k == "page[cursor]" { offset = Self.decodeCursor(v) ?? 0 }
        }
        let (items, more) = call.caller.box.state.withLock { s in
            let all = s.resources.listOrder.compactMap { s.resources.lists[$0] }.filter { l in
                guard let filter else { return true }
                return filter.values.contains(filter.field == "name" ? l.name : l.id)
            }
            return (Array(all.dropFirst(offset).prefix(10)), all.count > offset + 10)
        }
        return APIResult(
            status: 200,
            body: [
                "data": .array(items.map { Self.listResource($0, base: call.base) }),
                "links": Self.collectionLinks(call, path: "/api/lists/", offset: offset, pageSize: 10, more: more),
            ])
    }

    /// `GET /api/lists/{id}`.
    func getList(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let id = call.parameters.first ?? ""
        guard let list = call.caller.box.state.withLock({ $0.resources.lists[id] }) else {
            throw .notFound("A list with id \(id) does not exist.")
        }
        return APIResult(status: 200, body: ["data": Self.listResource(list, base: call.base)])
    }

    /// `POST`/`DELETE /api/lists/{id}/relationships/profiles` → 204 (≤ 1000 profile ids; adding twice is a no-op).
    func changeListMembers(_ call: APICall, add: Bool) throws(KlaviyoAPIError) -> APIResult {
        let listId = call.parameters.first ?? ""
        let refs = call.body?["data"]?.arrayValue ?? []
        guard refs.count <= 1000 else { throw .invalid("At most 1000 profiles per request.", pointer: "/data") }
        let ids = refs.compactMap { $0["id"]?.stringValue }
        let result: KlaviyoAPIError? = call.caller.box.state.withLock { s in
            guard var list = s.resources.lists[listId] else {
                return .notFound("A list with id \(listId) does not exist.")
            }
            for (i, id) in ids.enumerated() where s.profiles[id] == nil {
                return .invalid("Profile \(id) does not exist.", pointer: "/data/\(i)/id")
            }
            for id in ids {
                if add, list.memberSet.insert(id).inserted { list.members.append(id) }
                if !add, list.memberSet.remove(id) != nil { list.members.removeAll { $0 == id } }
            }
            s.resources.lists[listId] = list
            s.note(
                add ? "list_members_added" : "list_members_removed",
                ["list_id": .string(listId), "profile_ids": .array(ids.map { .string($0) })])
            return nil
        }
        if let result { throw result }
        return APIResult(status: 204, body: nil)
    }

    static func decodeCursor(_ v: String) -> Int? {
        guard let d = Data(base64Encoded: v) else { return nil }
        let s = String(decoding: d, as: UTF8.self)
        return s.hasPrefix("offset:") ? Int(s.dropFirst(7)) : nil
    }

    static func collectionLinks(_ call: APICall, path: String, offset: Int, pageSize: Int, more: Bool) -> JSONValue {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        func link(_ at: Int) -> JSONValue {
            var items = call.query.filter { $0.0 != "page[cursor]" }
            items.append(("page[cursor]", Data("offset:\(at)".utf8).base64EncodedString()))
            let q = items.map {
                "\($0.0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)"
            }.joined(separator: "&")
            return .string("\(call.base)\(path)?\(q)")
        }
        // The spec's CollectionLinks has no nullable members: absent links are omitted.
        var links: [String: JSONValue] = [
            "self": .string("\(call.base)\(path)" + (call.rawQuery.isEmpty ? "" : "?\(call.rawQuery)"))
        ]
        if more { links["next"] = link(offset + pageSize) }
        if offset > 0 { links["prev"] = link(max(0, offset - pageSize)) }
        return .object(links)
    }
}
