extension KlaviyoClient {
    /// The request for `POST /api/profile-import` (create_or_update_profile): an upsert by `id`, else by
    /// identifiers. `null` attributes clear fields.
    public static func upsertProfileRequest(attributes: [String: JSONValue], id: String? = nil) -> KlaviyoRequest {
        var data: [String: JSONValue] = ["type": "profile", "attributes": .object(attributes)]
        if let id { data["id"] = .string(id) }
        var request = KlaviyoRequest(
            operationID: "create_or_update_profile", method: "POST", path: "/api/profile-import",
            body: .object(["data": .object(data)]), isIdempotent: true)
        // The caller sent the attributes; it reads the profile's id (the answer's attributes are checked, not built).
        request.responseProjection = .members(["data": .members(["type": .all, "id": .all])])
        return request
    }

    /// Upserts a profile. Returns the profile's id and whether Klaviyo created it (201) or updated it (200).
    public func upsertProfile(
        attributes: [String: JSONValue], id: String? = nil, credential: KlaviyoCredential
    )
        async throws(KlaviyoError) -> (id: String, created: Bool)
    {
        let request = Self.upsertProfileRequest(attributes: attributes, id: id)
        let response = try await send(request, credential: credential)
        let profile = try profile(from: response, request: request, credential: credential)
        return (profile.id, response.status == 201)
    }

    /// The request for `PATCH /api/profiles/{id}` (update_profile): omitted fields stay, `null` clears.
    public static func updateProfileRequest(id: String, attributes: [String: JSONValue]) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "update_profile", method: "PATCH", path: "/api/profiles/\(KlaviyoRequest.percentEncode(id))",
            body: .object([
                "data": .object(["type": "profile", "id": .string(id), "attributes": .object(attributes)])
            ]), isIdempotent: true)
    }

    /// Updates a profile by Klaviyo id.
    public func updateProfile(
        id: String, attributes: [String: JSONValue], credential: KlaviyoCredential
    )
        async throws(KlaviyoError) -> KlaviyoProfile
    {
        let request = Self.updateProfileRequest(id: id, attributes: attributes)
        let response = try await send(request, credential: credential)
        return try profile(from: response, request: request, credential: credential)
    }

    /// The request for `GET /api/profiles` with a filter (get_profiles).
    public static func findProfilesRequest(_ lookup: ProfileLookup, pageSize: Int = 20) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "get_profiles", method: "GET", path: "/api/profiles",
            query: [("filter", lookup.filter), ("page[size]", String(pageSize))], isIdempotent: true)
    }

    /// Finds profiles matching one identifier (first page: an identifier matches at most one profile).
    public func findProfiles(
        _ lookup: ProfileLookup, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> [KlaviyoProfile]
    {
        let request = Self.findProfilesRequest(lookup)
        let response = try await send(request, credential: credential)
        guard let resources = response.data?.arrayValue else {
            throw KlaviyoError(
                code: .invalidResponse, status: response.status, operationID: request.operationID,
                message: "response has no data array", usedOAuth: credential.isOAuth)
        }
        return resources.compactMap(KlaviyoProfile.init(resource:))
    }

    private func profile(
        from response: KlaviyoResponse, request: KlaviyoRequest, credential: KlaviyoCredential
    )
        throws(KlaviyoError) -> KlaviyoProfile
    {
        guard let data = response.data, let profile = KlaviyoProfile(resource: data) else {
            throw KlaviyoError(
                code: .invalidResponse, status: response.status, operationID: request.operationID,
                message: "response has no profile resource", usedOAuth: credential.isOAuth)
        }
        return profile
    }
}
