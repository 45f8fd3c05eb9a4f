import Foundation
import Hummingbird

extension AccountResources {
    /// How an account's bulk import jobs behave (`PUT /_sim/accounts/{id}/bulk-import-jobs`).
    struct BulkImportBehaviour: Sendable {
        /// Processing time per 1,000 rows (a job is `processing` for at least 800 ms). Default 100 ms.
        var millisecondsPer1000Rows = 100
        /// Whether new jobs are cancelled at once (no row applied): the relay's "cancelled job" path.
        var cancelNewJobs = false

        var json: JSONValue {
            ["ms_per_1000_rows": .int(millisecondsPer1000Rows), "cancel_new_jobs": .bool(cancelNewJobs)]
        }

        /// How long a job of `rows` rows stays `processing`.
        func processing(rows: Int) -> Duration {
            max(.milliseconds(800), .milliseconds(Int64(rows) * Int64(millisecondsPer1000Rows) / 1000))
        }
    }
}

extension KlaviyoSimulator {
    static func importJobResource(
        _ j: AccountResources.JobRecord, base: String, now: ContinuousClock.Instant
    ) -> JSONValue {
        let status = AccountResources.status(of: j, now: now)
        let done = status == "complete"
        let selfLink = "\(base)/api/profile-bulk-import-jobs/\(j.id)/"
        func rel(_ name: String, _ type: String, _ ids: [String]?) -> JSONValue {
            var r: [String: JSONValue] = [
                "links": [
                    "self": .string("\(selfLink)relationships/\(name)/"), "related": .string("\(selfLink)\(name)/"),
                ]
            ]
            if let ids { r["data"] = .array(ids.map { ["type": .string(type), "id": .string($0)] }) }
            return .object(r)
        }
        return [
            "type": "profile-bulk-import-job", "id": .string(j.id),
            "attributes": [
                "status": .string(status), "created_at": .string(j.createdAt), "total_count": .int(j.total),
                "completed_count": .int(done ? j.total - j.failed : 0), "failed_count": .int(done ? j.failed : 0),
                "completed_at": done ? .string(j.createdAt) : .null,
                "started_at": status == "queued" ? .null : .string(j.createdAt),
                "expires_at": .string(SimIdentifiers.timestamp(.init(timeIntervalSinceNow: 7 * 86400))),
            ],
            "relationships": [
                "lists": rel("lists", "list", j.listIds), "profiles": rel("profiles", "profile", nil),
                "import-errors": rel("import-errors", "import-error", nil),
            ],
            "links": ["self": .string(selfLink)],
        ]
    }

    /// `POST /api/profile-bulk-import-jobs` → 202 with the job. Rows are applied at once; the job then reports
    /// queued (200 ms) → processing (at least 800 ms, or the account's time per 1,000 rows) → complete. Rows with
    /// an invalid email or phone (or no identifier) become import errors (`source.pointer` names the row,
    /// `original_payload` carries it) and count as failed. An account set to cancel new jobs gets a
    /// `cancelled` job that applied nothing.
    func bulkImportProfiles(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let data = call.body?["data"]
        let rows = data?["attributes"]?["profiles"]?["data"]?.arrayValue ?? []
        guard !rows.isEmpty, rows.count <= 10_000 else {
            throw .invalid("Between 1 and 10,000 profiles per job.", pointer: "/data/attributes/profiles/data")
        }
        let listIds = data?["relationships"]?["lists"]?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
        let now = SimIdentifiers.timestamp()
        let outcome: Result<AccountResources.JobRecord, KlaviyoAPIError> = call.caller.box.state.withLock { s in
            for id in listIds where s.resources.lists[id] == nil {
                return .failure(.notFound("A list with id \(id) does not exist."))
            }
            var job = AccountResources.JobRecord(
                id: SimIdentifiers.short(26), kind: "profile-bulk-import-job", createdAt: now, createdInstant: .now,
                total: rows.count, failed: 0, listIds: listIds)
            job.processing = s.resources.bulkImport.processing(rows: rows.count)
            if s.resources.bulkImport.cancelNewJobs {
                job.cancelled = true
                s.resources.jobs[job.id] = job
                s.note("profile_bulk_import", ["job_id": .string(job.id), "total": .int(job.total), "cancelled": true])
                return .success(job)
            }
            for (i, row) in rows.enumerated() {
                let attrs = row["attributes"]?.objectValue ?? [:]
                var problem: KlaviyoAPIError?
                do throws(KlaviyoAPIError) {
                    try Self.checkIdentifierFormats(attrs, pointer: "/data/attributes/profiles/data/\(i)/attributes")
                    if !Self.hasIdentifier(attrs) && row["id"]?.stringValue == nil {
                        throw .invalid(
                            "A profile identifier is required.",
                            pointer: "/data/attributes/profiles/data/\(i)/attributes")
                    }
                } catch { problem = error }
                if problem == nil {
                    switch s.upsert(id: row["id"]?.stringValue, attributes: attrs, create: true, now: now) {
                    case .success(let p?):
                        job.profileIds.append(p.id)
                        for id in listIds where s.resources.lists[id]!.memberSet.insert(p.id).inserted {
                            s.resources.lists[id]!.members.append(p.id)
                        }
                    case .success(nil): break
                    case .failure(let e): problem = e
                    }
                }
                if let problem {
                    job.failed += 1
                    job.errors.append([
                        "type": "import-error", "id": .string(SimIdentifiers.short(26)),
                        "attributes": [
                            "code": .string(problem.code), "title": .string(problem.title),
                            "detail": .string(problem.detail),
                            "source": ["pointer": .optional(problem.pointer)], "original_payload": row,
                        ],
                    ])
                }
            }
            s.resources.jobs[job.id] = job
            s.note(
                "profile_bulk_import",
                ["job_id": .string(job.id), "total": .int(job.total), "failed": .int(job.failed)])
            return .success(job)
        }
        let job = try outcome.get()
        return APIResult(status: 202, body: ["data": Self.importJobResource(job, base: call.base, now: .now)])
    }

    func job(_ call: APICall) throws(KlaviyoAPIError) -> AccountResources.JobRecord {
        let id = call.parameters.first ?? ""
        guard let job = call.caller.box.state.withLock({ $0.resources.jobs[id] }), job.kind == "profile-bulk-import-job"
        else {
            throw .notFound("A job with id \(id) does not exist.")
        }
        return job
    }

    /// `GET /api/profile-bulk-import-jobs/{job_id}`.
    func getImportJob(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        APIResult(status: 200, body: ["data": Self.importJobResource(try job(call), base: call.base, now: .now)])
    }

    /// `GET /api/profile-bulk-import-jobs/{id}/import-errors`: the errors once the job is complete, `page[size]`
    /// (1…100, default 20) per page with `page[cursor]`.
    func getImportErrors(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let j = try job(call)
        let (pageSize, offset) = try Self.paging(call)
        let visible = AccountResources.status(of: j, now: .now) == "complete" ? j.errors : []
        let page = Array(visible.dropFirst(offset).prefix(pageSize))
        return APIResult(
            status: 200,
            body: [
                "data": .array(page),
                "links": Self.collectionLinks(
                    call, path: "/api/profile-bulk-import-jobs/\(j.id)/import-errors/", offset: offset,
                    pageSize: pageSize, more: visible.count > offset + pageSize),
            ])
    }

    /// `GET /api/profile-bulk-import-jobs`: the account's bulk import jobs, `sort` `created_at` (default) or
    /// `-created_at`, `filter` `equals(status,'…')` or `any(status,[…])`, `page[size]` (1…100, default 20).
    func getImportJobs(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let (pageSize, offset) = try Self.paging(call)
        var newestFirst = false
        var statuses: Set<String>?
        for (name, value) in call.query {
            switch name {
            case "sort":
                guard value == "created_at" || value == "-created_at" else {
                    throw .invalid("'\(value)' is not a valid sort.", parameter: "sort")
                }
                newestFirst = value.hasPrefix("-")
            case "filter":
                statuses = try Self.statusFilter(value)
            default:
                break
            }
        }
        let now = ContinuousClock.now
        let all = call.caller.box.state.withLock { s in
            s.resources.jobs.values.filter { $0.kind == "profile-bulk-import-job" }
                .sorted { newestFirst ? $0.createdInstant > $1.createdInstant : $0.createdInstant < $1.createdInstant }
        }
        .filter { statuses?.contains(AccountResources.status(of: $0, now: now)) ?? true }
        let page = all.dropFirst(offset).prefix(pageSize)
        return APIResult(
            status: 200,
            body: [
                "data": .array(page.map { Self.importJobResource($0, base: call.base, now: now) }),
                "links": Self.collectionLinks(
                    call, path: "/api/profile-bulk-import-jobs/", offset: offset, pageSize: pageSize,
                    more: all.count > offset + pageSize),
            ])
    }

    /// `page[size]` (1…100, default 20) and the offset in `page[cursor]`.
    static func paging(_ call: APICall) throws(KlaviyoAPIError) -> (size: Int, offset: Int) {
        var size = 20
        var offset = 0
        for (name, value) in call.query {
            if name == "page[size]" {
                guard let number = Int(value), (1...100).contains(number) else {
                    throw .invalid("Page size must be an integer between 1 and 100.", parameter: "page[size]")
                }
                size = number
            }
            if name == "page[cursor]" {
                guard let decoded = decodeCursor(value) else {
                    throw .invalid("Invalid page cursor.", parameter: "page[cursor]")
                }
                offset = decoded
            }
        }
        return (size, offset)
    }

    /// The statuses of `equals(status,'queued')` or `any(status,['queued','processing'])`.
    static func statusFilter(_ text: String) throws(KlaviyoAPIError) -> Set<String> {
        let known: Set<String> = ["queued", "processing", "complete", "cancelled"]
        let trimmed = text.replacingOccurrences(of: " ", with: "")
        var inner: Substring
        if trimmed.hasPrefix("equals(status,"), trimmed.hasSuffix(")") {
            inner = trimmed.dropFirst("equals(status,".count).dropLast()
        } else if trimmed.hasPrefix("any(status,["), trimmed.hasSuffix("])") {
            inner = trimmed.dropFirst("any(status,[".count).dropLast(2)
        } else {
            throw .invalid("Only equals(status,…) and any(status,[…]) are supported.", parameter: "filter")
        }
        inner = inner.filter { $0 != "'" && $0 != "\"" }[...]
        let values = Set(inner.split(separator: ",").map(String.init))
        guard !values.isEmpty, values.isSubset(of: known) else {
            throw .invalid("'\(text)' is not a valid filter.", parameter: "filter")
        }
        return values
    }

    /// `PUT /_sim/accounts/{id}/bulk-import-jobs` (`ms_per_1000_rows`, `cancel_new_jobs`) and `GET`.
    func bulkImportAdmin(method: String, accountId: String, body: JSONValue?) throws(KlaviyoAPIError) -> Response {
        guard let box = registry.box(accountId) else { return admin(404, ["error": "Unknown account."]) }
        switch method {
        case "GET":
            return admin(200, box.state.withLock { $0.resources.bulkImport.json })
        case "PUT", "POST":
            var behaviour = box.state.withLock { $0.resources.bulkImport }
            if let value = body?["ms_per_1000_rows"] {
                guard let number = value.intValue, (0...600_000).contains(number) else {
                    throw .invalid(
                        "'ms_per_1000_rows' must be an integer from 0 to 600000.", pointer: "/ms_per_1000_rows")
                }
                behaviour.millisecondsPer1000Rows = number
            }
            if let value = body?["cancel_new_jobs"] {
                guard case .bool(let cancel) = value else {
                    throw .invalid("'cancel_new_jobs' must be true or false.", pointer: "/cancel_new_jobs")
                }
                behaviour.cancelNewJobs = cancel
            }
            box.state.withLock { $0.resources.bulkImport = behaviour }
            return admin(200, behaviour.json)
        default:
            return admin(405, ["error": "Use GET or PUT."])
        }
    }

    /// `POST /api/profile-subscription-bulk-create-jobs` (≤ 1000) and `…-delete-jobs` (≤ 100) → 202, no body.
    /// Subscribing with a list upserts the profile and adds it to the list; without a list only existing
    /// profiles change (3P: new emails are not created). Unsubscribing without a list is global.
    func bulkSubscription(_ call: APICall, subscribe: Bool) throws(KlaviyoAPIError) -> APIResult {
        let data = call.body?["data"]
        let rows = data?["attributes"]?["profiles"]?["data"]?.arrayValue ?? []
        let limit = subscribe ? 1000 : 100
        guard !rows.isEmpty, rows.count <= limit else {
            throw .invalid("Between 1 and \(limit) profiles per request.", pointer: "/data/attributes/profiles/data")
        }
        for (i, row) in rows.enumerated() {
            try Self.checkIdentifierFormats(
                row["attributes"]?.objectValue ?? [:], pointer: "/data/attributes/profiles/data/\(i)/attributes")
        }
        let listId = data?["relationships"]?["list"]?["data"]?["id"]?.stringValue
        let now = SimIdentifiers.timestamp()
        let error: KlaviyoAPIError? = call.caller.box.state.withLock { s in
            if let listId, s.resources.lists[listId] == nil {
                return .notFound("A list with id \(listId) does not exist.")
            }
            for row in rows {
                var attrs = row["attributes"]?.objectValue ?? [:]
                let subs = attrs.removeValue(forKey: "subscriptions")
                attrs.removeValue(forKey: "age_gated_date_of_birth")
                let identifiers = attrs.filter { ["email", "phone_number", "external_id"].contains($0.key) }
                guard
                    case .success(let found) = s.upsert(
                        id: row["id"]?.stringValue, attributes: identifiers, create: subscribe && listId != nil,
                        now: now),
                    let profile = found
                else { continue }
                var channels: [String] = []
                for channel in ["email", "sms"] where subs?[channel] != nil || (!subscribe && subs == nil) {
                    s.resources.consent[profile.id, default: [:]][channel] = subscribe ? "SUBSCRIBED" : "UNSUBSCRIBED"
                    channels.append(channel)
                }
                if let listId {
                    if subscribe, s.resources.lists[listId]!.memberSet.insert(profile.id).inserted {
                        s.resources.lists[listId]!.members.append(profile.id)
                    }
                    if !subscribe, s.resources.lists[listId]!.memberSet.remove(profile.id) != nil {
                        s.resources.lists[listId]!.members.removeAll { $0 == profile.id }
                    }
                }
                s.note(
                    subscribe ? "subscribed" : "unsubscribed",
                    [
                        "profile_id": .string(profile.id), "list_id": .optional(listId),
                        "channels": .array(channels.map { .string($0) }), "global": .bool(listId == nil),
                    ])
            }
            return nil
        }
        if let error { throw error }
        return APIResult(status: 202, body: nil)
    }
}
