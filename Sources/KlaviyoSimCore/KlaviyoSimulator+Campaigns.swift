extension KlaviyoSimulator {
    static func campaignResource(_ c: AccountResources.CampaignRecord, base: String) -> JSONValue {
        var attrs = c.attributes
        attrs["status"] = .string(c.status)
        attrs["created_at"] = .string(c.created)
        attrs["updated_at"] = .string(c.updated)
        if attrs["archived"] == nil { attrs["archived"] = false }
        if attrs["send_options"] == nil { attrs["send_options"] = ["use_smart_sending": true] }
        if attrs["send_strategy"] == nil { attrs["send_strategy"] = ["method": "immediate"] }
        if attrs["scheduled_at"] == nil { attrs["scheduled_at"] = .null }
        if attrs["send_time"] == nil { attrs["send_time"] = .null }
        let selfLink = "\(base)/api/campaigns/\(c.id)/"
        return [
            "type": "campaign", "id": .string(c.id), "attributes": .object(attrs),
            "relationships": [
                "campaign-messages": [
                    "data": .array(c.messageIds.map { ["type": "campaign-message", "id": .string($0)] }),
                    "links": [
                        "self": .string("\(selfLink)relationships/campaign-messages/"),
                        "related": .string("\(selfLink)campaign-messages/"),
                    ],
                ],
                "tags": [
                    "links": [
                        "self": .string("\(selfLink)relationships/tags/"), "related": .string("\(selfLink)tags/"),
                    ]
                ],
            ],
            "links": ["self": .string(selfLink)],
        ]
    }

    static func channel(of c: AccountResources.CampaignRecord) -> String {
        c.attributes["_channel"]?.stringValue ?? "email"
    }

    /// `POST /api/campaigns` → 201, status `Draft`.
    func createCampaign(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        var attrs = call.body?["data"]?["attributes"]?.objectValue ?? [:]
        let messages = attrs.removeValue(forKey: "campaign-messages")?["data"]?.arrayValue ?? []
        let channel = messages.first?["attributes"]?["definition"]?["channel"]?.stringValue ?? "email"
        let now = SimIdentifiers.timestamp()
        attrs["archived"] = false
        let campaign = AccountResources.CampaignRecord(
            id: SimIdentifiers.ulid(), attributes: attrs, messageIds: messages.map { _ in SimIdentifiers.ulid() },
            status: "Draft", created: now, updated: now)
        var stored = campaign
        stored.attributes["_channel"] = .string(channel)
        call.caller.box.state.withLock { s in
            s.resources.campaigns[campaign.id] = stored
            s.resources.campaignOrder.append(campaign.id)
            s.note("campaign_created", ["campaign_id": .string(campaign.id), "channel": .string(channel)])
        }
        return APIResult(status: 201, body: ["data": Self.campaignResource(campaign, base: call.base)])
    }

    func storedCampaign(_ call: APICall, id: String) throws(KlaviyoAPIError) -> AccountResources.CampaignRecord {
        guard var c = call.caller.box.state.withLock({ $0.resources.campaigns[id] }) else {
            throw .notFound("A campaign with id \(id) does not exist.")
        }
        c.attributes["_channel"] = nil
        return c
    }

    /// `GET /api/campaigns/{id}`.
    func getCampaign(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        APIResult(
            status: 200,
            body: [
                "data": Self.campaignResource(
                    try storedCampaign(call, id: call.parameters.first ?? ""), base: call.base)
            ])
    }

    /// `GET /api/campaigns`: `filter` is required and must hold a `messages.channel` condition; it may combine the
    /// conditions the spec allows with `and(…)` (``CampaignFilter``). `sort` is one of the spec's (`created_at`,
    /// `id`, `name`, `scheduled_at`, `updated_at`, each also descending with `-`); without it, creation order.
    func getCampaigns(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        guard let raw = call.query.first(where: { $0.0 == "filter" })?.1 else {
            throw .invalid("A channel filter is required, e.g. equals(messages.channel,'email').", parameter: "filter")
        }
        let filter = try CampaignFilter(parsing: raw)
        var sort: (field: String, descending: Bool)?
        if let value = call.query.first(where: { $0.0 == "sort" })?.1 { sort = try Self.campaignSort(value) }
        var items = call.caller.box.state.withLock { s in
            s.resources.campaignOrder.compactMap { s.resources.campaigns[$0] }.filter { c in
                filter.matches(
                    id: c.id, channel: Self.channel(of: c), name: c.attributes["name"]?.stringValue ?? "",
                    status: c.status, archived: c.attributes["archived"] == .bool(true), createdAt: c.created,
                    updatedAt: c.updated, scheduledAt: c.attributes["scheduled_at"]?.stringValue)
            }
        }
        if let sort {
            // Equal keys (timestamps here are whole seconds) are ordered by creation, so `-created_at` is exactly
            // the reverse of `created_at`. Timestamps share one format, so they sort as text.
            items = items.enumerated().sorted { a, b in
                let (x, y) = (Self.sortValue(a.element, sort.field), Self.sortValue(b.element, sort.field))
                let ascending = x == y ? a.offset < b.offset : x < y
                return sort.descending ? !ascending : ascending
            }.map(\.element)
        }
        return APIResult(
            status: 200,
            body: [
                "data": .array(
                    items.map { c in
                        var v = c
                        v.attributes["_channel"] = nil
                        return Self.campaignResource(v, base: call.base)
                    }),
                "links": Self.collectionLinks(
                    call, path: "/api/campaigns/", offset: 0, pageSize: items.count, more: false),
            ])
    }

    /// The field and direction of a `sort` value the spec allows for `GET /api/campaigns`; any other is a 400.
    static func campaignSort(_ value: String) throws(KlaviyoAPIError) -> (field: String, descending: Bool) {
        let descending = value.hasPrefix("-")
        let field = descending ? String(value.dropFirst()) : value
        guard ["created_at", "updated_at", "scheduled_at", "name", "id"].contains(field) else {
            throw .invalid("'\(value)' is not a valid sort for campaigns.", parameter: "sort")
        }
        return (field, descending)
    }

    /// A campaign's value of a sort field, as text.
    static func sortValue(_ c: AccountResources.CampaignRecord, _ field: String) -> String {
        switch field {
        case "created_at": c.created
        case "updated_at": c.updated
        case "id": c.id
        default: c.attributes[field]?.stringValue ?? ""
        }
    }

    /// `PATCH /api/campaigns/{id}`: merges the given attributes.
    func updateCampaign(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let id = call.parameters.first ?? ""
        guard call.body?["data"]?["id"]?.stringValue == id else {
            throw KlaviyoAPIError(
                status: 409, code: "conflict", title: "Conflict.",
                detail: "The id in the request body does not match the id in the URL.", source: .pointer("/data/id"))
        }
        let attrs = call.body?["data"]?["attributes"]?.objectValue ?? [:]
        let now = SimIdentifiers.timestamp()
        let updated: AccountResources.CampaignRecord? = call.caller.box.state.withLock { s in
            guard var c = s.resources.campaigns[id] else { return nil }
            for (k, v) in attrs { c.attributes[k] = v }
            c.updated = now
            s.resources.campaigns[id] = c
            s.note("campaign_updated", ["campaign_id": .string(id)])
            return c
        }
        guard var c = updated else { throw .notFound("A campaign with id \(id) does not exist.") }
        c.attributes["_channel"] = nil
        return APIResult(status: 200, body: ["data": Self.campaignResource(c, base: call.base)])
    }

    static func sendJobResource(_ j: AccountResources.JobRecord, base: String) -> JSONValue {
        [
            "type": "campaign-send-job", "id": .string(j.id),
            "attributes": ["status": .string(AccountResources.status(of: j, now: .now))],
            "links": ["self": .string("\(base)/api/campaign-send-jobs/\(j.id)/")],
        ]
    }

    /// `POST /api/campaign-send-jobs` → 202; sending the same campaign again while a job exists is a 400.
    func sendCampaign(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let id = call.body?["data"]?["id"]?.stringValue ?? ""
        let now = SimIdentifiers.timestamp()
        let result: Result<AccountResources.JobRecord, KlaviyoAPIError> = call.caller.box.state.withLock { s in
            guard var c = s.resources.campaigns[id] else {
                return .failure(.notFound("A campaign with id \(id) does not exist."))
            }
            if let existing = s.resources.jobs[id], !existing.cancelled {
                return .failure(.invalid("This campaign has already been sent or is sending.", pointer: "/data/id"))
            }
            let job = AccountResources.JobRecord(
                id: id, kind: "campaign-send-job", createdAt: now, createdInstant: .now, total: 1, failed: 0)
            s.resources.jobs[id] = job
            c.status = "Sending"
            c.attributes["send_time"] = .string(now)
            s.resources.campaigns[id] = c
            s.note("campaign_send", ["campaign_id": .string(id)])
            return .success(job)
        }
        return APIResult(status: 202, body: ["data": Self.sendJobResource(try result.get(), base: call.base)])
    }

    /// `GET /api/campaign-send-jobs/{id}`.
    func getCampaignSendJob(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let id = call.parameters.first ?? ""
        guard let job = call.caller.box.state.withLock({ $0.resources.jobs[id] }), job.kind == "campaign-send-job"
        else {
            throw .notFound("A campaign send job with id \(id) does not exist.")
        }
        return APIResult(status: 200, body: ["data": Self.sendJobResource(job, base: call.base)])
    }

    /// `PATCH /api/campaign-send-jobs/{id}` with `action` cancel or revert → 204.
    func cancelCampaignSend(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let id = call.parameters.first ?? ""
        let action = call.body?["data"]?["attributes"]?["action"]?.stringValue ?? ""
        let error: KlaviyoAPIError? = call.caller.box.state.withLock { s in
            guard var job = s.resources.jobs[id], job.kind == "campaign-send-job" else {
                return .notFound("A campaign send job with id \(id) does not exist.")
            }
            job.cancelled = true
            s.resources.jobs[id] = job
            s.resources.campaigns[id]?.status = action == "revert" ? "Draft" : "Cancelled"
            s.note("campaign_send_\(action)", ["campaign_id": .string(id)])
            return nil
        }
        if let error { throw error }
        return APIResult(status: 204, body: nil)
    }

    static func flowResource(_ f: AccountResources.FlowRecord, base: String) -> JSONValue {
        let selfLink = "\(base)/api/flows/\(f.id)/"
        return [
            "type": "flow", "id": .string(f.id),
            "attributes": [
                "name": .string(f.name), "status": .string(f.status), "archived": false, "created": .string(f.created),
                "updated": .string(f.updated), "trigger_type": .string(f.triggerType),
            ],
            "relationships": [
                "flow-actions": [
                    "links": [
                        "self": .string("\(selfLink)relationships/flow-actions/"),
                        "related": .string("\(selfLink)flow-actions/"),
                    ]
                ],
                "tags": [
                    "links": [
                        "self": .string("\(selfLink)relationships/tags/"), "related": .string("\(selfLink)tags/"),
                    ]
                ],
            ],
            "links": ["self": .string(selfLink)],
        ]
    }

    /// `GET /api/flows` (each account starts with three draft flows).
    func getFlows(_ call: APICall) -> APIResult {
        let flows = call.caller.box.state.withLock { s in s.resources.flowOrder.compactMap { s.resources.flows[$0] } }
        return APIResult(
            status: 200,
            body: [
                "data": .array(flows.map { Self.flowResource($0, base: call.base) }),
                "links": Self.collectionLinks(call, path: "/api/flows/", offset: 0, pageSize: 50, more: false),
            ])
    }

    /// `GET /api/flows/{id}`.
    func getFlow(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let id = call.parameters.first ?? ""
        guard let f = call.caller.box.state.withLock({ $0.resources.flows[id] }) else {
            throw .notFound("A flow with id \(id) does not exist.")
        }
        return APIResult(status: 200, body: ["data": Self.flowResource(f, base: call.base)])
    }

    /// `PATCH /api/flows/{id}`: status draft, manual or live.
    func updateFlow(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let id = call.parameters.first ?? ""
        guard call.body?["data"]?["id"]?.stringValue == id else {
            throw KlaviyoAPIError(
                status: 409, code: "conflict", title: "Conflict.",
                detail: "The id in the request body does not match the id in the URL.", source: .pointer("/data/id"))
        }
        let status = call.body?["data"]?["attributes"]?["status"]?.stringValue ?? ""
        guard ["draft", "manual", "live"].contains(status) else {
            throw .invalid("'\(status)' is not a valid choice for 'status'.", pointer: "/data/attributes/status")
        }
        let now = SimIdentifiers.timestamp()
        let flow: AccountResources.FlowRecord? = call.caller.box.state.withLock { s in
            guard var f = s.resources.flows[id] else { return nil }
            f.status = status
            f.updated = now
            s.resources.flows[id] = f
            s.note("flow_status", ["flow_id": .string(id), "status": .string(status)])
            return f
        }
        guard let flow else { throw .notFound("A flow with id \(id) does not exist.") }
        return APIResult(status: 200, body: ["data": Self.flowResource(flow, base: call.base)])
    }
}
