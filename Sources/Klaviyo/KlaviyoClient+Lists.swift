/// A Klaviyo list (`GET /api/lists`, `POST /api/lists`).
public struct KlaviyoList: Sendable, Hashable {
    /// List id.
    public var id: String
    /// List name.
    public var name: String?

    init?(resource: JSONValue) {
        guard let id = resource["id"]?.stringValue else { return nil }
        self.id = id
        self.name = resource["attributes"]?["name"]?.stringValue
    }
}

extension KlaviyoClient {
    /// Klaviyo's limit of profile ids per list relationship call.
    public static let maxProfilesPerListCall = 1000

    /// The request for `GET /api/lists` filtered by exact name (get_lists).
    public static func findListsRequest(name: String) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: "get_lists", method: "GET", path: "/api/lists",
            query: [("filter", "equals(name,\"\(name.replacingBackslashesAndQuotes())\")")], isIdempotent: true)
    }

    /// Lists whose name equals `name` (first page; names are rarely duplicated).
    public func findLists(name: String, credential: KlaviyoCredential) async throws(KlaviyoError) -> [KlaviyoList] {
        let request = Self.findListsRequest(name: name)
        let response = try await send(request, credential: credential)
        guard let resources = response.data?.arrayValue else {
            throw KlaviyoError(
                code: .invalidResponse, status: response.status, operationID: request.operationID,
                message: "response has no data array", usedOAuth: credential.isOAuth)
        }
        return resources.compactMap(KlaviyoList.init(resource:))
    }

    /// The request for `POST /api/lists` (create_list; not idempotent, 150 a day).
    public static func createListRequest(name: String, optInProcess: String? = nil) -> KlaviyoRequest {
        var attributes: [String: JSONValue] = ["name": .string(name)]
        if let optInProcess { attributes["opt_in_process"] = .string(optInProcess) }
        return KlaviyoRequest(
            operationID: "create_list", method: "POST", path: "/api/lists",
            body: ["data": ["type": "list", "attributes": .object(attributes)]], isIdempotent: false)
    }

    /// Creates a list.
    public func createList(
        name: String, optInProcess: String? = nil, credential: KlaviyoCredential
    )
        async throws(KlaviyoError) -> KlaviyoList
    {
        let request = Self.createListRequest(name: name, optInProcess: optInProcess)
        let response = try await send(request, credential: credential)
        guard let data = response.data, let list = KlaviyoList(resource: data) else {
            throw KlaviyoError(
                code: .invalidResponse, status: response.status, operationID: request.operationID,
                message: "response has no list resource", usedOAuth: credential.isOAuth)
        }
        return list
    }

    /// The request for `POST` (add) or `DELETE` (remove) `/api/lists/{id}/relationships/profiles` with at
    /// most ``maxProfilesPerListCall`` profile ids.
    public static func listProfilesRequest(listID: String, profileIDs: [String], add: Bool) -> KlaviyoRequest {
        KlaviyoRequest(
            operationID: add ? "add_profiles_to_list" : "remove_profiles_from_list", method: add ? "POST" : "DELETE",
            path: "/api/lists/\(KlaviyoRequest.percentEncode(listID))/relationships/profiles",
            body: ["data": .array(profileIDs.map { ["type": "profile", "id": .string($0)] })], isIdempotent: true)
    }

    /// Adds or removes profiles (one call).
    public func changeListProfiles(
        listID: String, profileIDs: [String], add: Bool, credential: KlaviyoCredential
    )
        async throws(KlaviyoError) -> Int
    {
        try await send(
            Self.listProfilesRequest(listID: listID, profileIDs: profileIDs, add: add), credential: credential
        )
        .status
    }
}
