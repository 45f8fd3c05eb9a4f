extension AccountState {
    /// Records one event for a profile (created or updated from `profileData`). Events repeating
    /// (profile, metric, unique_id), or (profile, metric, time to the second) without a unique_id, are dropped,
    /// as Klaviyo records only the first. Returns whether the event was recorded.
    mutating func recordEvent(
        profileData: JSONValue?, event: JSONValue, now: String
    ) -> Result<Bool, KlaviyoAPIError> {
        let attrs = profileData?["attributes"]?.objectValue ?? [:]
        let id = profileData?["id"]?.stringValue
        let profile: ProfileRecord
        switch upsert(id: id, attributes: attrs, create: true, now: now) {
        case .failure(let e): return .failure(e)
        case .success(let p?): profile = p
        case .success(nil):
            return .failure(.invalid("A profile identifier is required.", pointer: "/data/attributes/profile"))
        }
        let metricName = event["metric"]?["data"]?["attributes"]?["name"]?.stringValue ?? ""
        let metricId: String
        if let existing = resources.metrics[metricName] {
            metricId = existing
        } else {
            metricId = SimIdentifiers.short()
            resources.metrics[metricName] = metricId
        }
        let time = event["time"]?.stringValue ?? now
        let uniqueId = event["unique_id"]?.stringValue ?? String(time.prefix(19))
        let key = "\(profile.id)|\(metricId)|\(uniqueId)"
        guard resources.eventKeys.insert(key).inserted else {
            note(
                "event_deduplicated",
                ["profile_id": .string(profile.id), "metric": .string(metricName), "unique_id": .string(uniqueId)])
            return .success(false)
        }
        resources.events.append(
            .init(
                id: SimIdentifiers.ulid(), metricId: metricId, profileId: profile.id,
                properties: event["properties"] ?? [:], time: time, value: event["value"], uniqueId: uniqueId))
        if var p = profiles[profile.id] {
            p.lastEventDate = time
            profiles[profile.id] = p
        }
        note(
            "event_recorded",
            ["profile_id": .string(profile.id), "metric": .string(metricName), "unique_id": .string(uniqueId)])
        return .success(true)
    }
}

extension KlaviyoSimulator {
    /// `POST /api/events` → 202, no body.
    func createEvent(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        guard let attrs = call.body?["data"]?["attributes"] else {
            throw .invalid("'attributes' is required.", pointer: "/data/attributes")
        }
        let profileAttrs = attrs["profile"]?["data"]?["attributes"]?.objectValue ?? [:]
        try Self.checkIdentifierFormats(profileAttrs, pointer: "/data/attributes/profile/data/attributes")
        let now = SimIdentifiers.timestamp()
        let result = call.caller.box.state.withLock { s in
            s.recordEvent(profileData: attrs["profile"]?["data"], event: attrs, now: now)
        }
        _ = try result.get()
        return APIResult(status: 202, body: nil)
    }

    /// `POST /api/event-bulk-create-jobs` → 202, no body (≤ 1000 events in total).
    func bulkCreateEvents(_ call: APICall) throws(KlaviyoAPIError) -> APIResult {
        let groups = call.body?["data"]?["attributes"]?["events-bulk-create"]?["data"]?.arrayValue ?? []
        let total = groups.reduce(0) { $0 + ($1["attributes"]?["events"]?["data"]?.arrayValue?.count ?? 0) }
        guard total <= 1000 else {
            throw .invalid(
                "At most 1000 events per request, got \(total).", pointer: "/data/attributes/events-bulk-create/data")
        }
        for (i, g) in groups.enumerated() {
            let attrs = g["attributes"]?["profile"]?["data"]?["attributes"]?.objectValue ?? [:]
            try Self.checkIdentifierFormats(
                attrs, pointer: "/data/attributes/events-bulk-create/data/\(i)/attributes/profile/data/attributes")
        }
        let now = SimIdentifiers.timestamp()
        let error: KlaviyoAPIError? = call.caller.box.state.withLock { s in
            // A refused request records nothing, like Klaviyo's (it validates the whole body before accepting).
            let before = s
            for g in groups {
                let profileData = g["attributes"]?["profile"]?["data"]
                for e in g["attributes"]?["events"]?["data"]?.arrayValue ?? [] {
                    if case .failure(let err) = s.recordEvent(
                        profileData: profileData, event: e["attributes"] ?? [:], now: now)
                    {
                        s = before
                        return err
                    }
                }
            }
            return nil
        }
        if let error { throw error }
        return APIResult(status: 202, body: nil)
    }
}
