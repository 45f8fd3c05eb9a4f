import Hummingbird
import NIOCore

extension KlaviyoSimulator {
    /// The admin API under `/_sim` (no auth; not part of Klaviyo). Answers `application/json`.
    func handleAdmin(_ request: Request) async -> Response {
        var req = request
        let bytes = (try? await req.collectBody(upTo: 5 * 1024 * 1024)).map { Array($0.readableBytesView) } ?? []
        let body: JSONValue?
        if bytes.isEmpty {
            body = nil
        } else {
            guard let parsed = try? JSONValue.parse(bytes) else {
                return admin(400, ["error": "Body is not valid JSON."])
            }
            body = parsed
        }
        let segments = request.uri.path.split(separator: "/").dropFirst().map(String.init)
        let method = request.method.rawValue
        do {
            switch (method, segments) {
            case ("POST", ["accounts"]):
                return try postAccount(body)
            case ("GET", ["accounts"]):
                let accounts = registry.allBoxes().map(\.account).sorted { $0.accountId < $1.accountId }
                return admin(200, ["accounts": .array(accounts.map(Self.adminAccount))])
            case ("GET", let s) where s.count == 3 && s[0] == "accounts" && s[2] == "profiles":
                guard let box = registry.box(s[1]) else { return admin(404, ["error": "Unknown account."]) }
                let profiles = box.state.withLock { st in st.profileOrder.compactMap { st.profiles[$0]?.adminSummary } }
                return admin(200, ["profiles": .array(profiles), "count": .int(profiles.count)])
            case ("PUT", ["faults"]):
                let config = try FaultConfig(json: body ?? [:])
                faults.withLock { $0 = config }
                logger.info("Faults replaced", metadata: ["sim.faults": "\(config.json.jsonString)"])
                return admin(200, config.json)
            case ("GET", ["faults"]):
                return admin(200, faults.withLock { $0 }?.json ?? FaultConfig().json)
            case ("DELETE", ["faults"]):
                faults.withLock { $0 = nil }
                return admin(200, FaultConfig().json)
            case ("GET", ["stats"]):
                return admin(200, stats.json)
            case ("POST", ["reset"]):
                registry.reset()
                faults.withLock { $0 = nil }
                stats.reset()
                recorder.reset()
                resetExtensions()
                logger.info("State reset")
                return admin(200, ["reset": true])
            case ("GET", ["requests"]):
                let items = HTTPHelpers.queryItems(request.uri.query)
                let since = items.first { $0.0 == "since" }.flatMap { Int($0.1) } ?? 0
                let limit = min(max(items.first { $0.0 == "limit" }.flatMap { Int($0.1) } ?? 1000, 1), 100_000)
                let (entries, next) = recorder.entries(since: since, limit: limit)
                return admin(
                    200,
                    [
                        "requests": .array(entries.map(\.json)), "next_seq": .int(next),
                        "last_seq": .int(recorder.lastSeq),
                    ])
            default:
                return try handleAdminExtension(method: method, segments: segments, body: body)
                    ?? admin(404, ["error": .string("Unknown admin endpoint \(method) \(request.uri.path).")])
            }
        } catch {
            return admin(error.status, ["error": .string(error.detail), "pointer": .optional(error.pointer)])
        }
    }

    func admin(_ status: Int, _ body: JSONValue) -> Response {
        HTTPHelpers.response(status: status, body: body, contentType: "application/json")
    }

    static func adminAccount(_ a: SimAccount) -> JSONValue {
        [
            "account_id": .string(a.accountId), "klaviyo_account_id": .string(a.klaviyoAccountId),
            "public_api_key": .string(a.publicApiKey), "name": .string(a.name),
            "scopes": .array(a.scopes.sorted().map { .string($0) }),
        ]
    }

    /// `POST /_sim/accounts` (idempotent by account_id).
    func postAccount(_ body: JSONValue?) throws(KlaviyoAPIError) -> Response {
        guard let accountId = body?["account_id"]?.stringValue, !accountId.isEmpty else {
            throw .invalid("'account_id' is required.", pointer: "/account_id")
        }
        guard let apiKey = body?["api_key"]?.stringValue, apiKey.hasPrefix("pk_") else {
            throw .invalid("'api_key' must start with pk_.", pointer: "/api_key")
        }
        var scopes: Set<String>?
        if let list = body?["scopes"], !list.isNull {
            guard let items = list.arrayValue?.compactMap(\.stringValue) else {
                throw .invalid("'scopes' must be a list of strings.", pointer: "/scopes")
            }
            scopes = Set(items)
        }
        let stored = registry.upsert(
            SimAccount(
                accountId: accountId, apiKey: apiKey, name: body?["name"]?.stringValue ?? accountId, scopes: scopes))
        logger.info("Account upserted", metadata: ["account_id": "\(accountId)"])
        return admin(201, Self.adminAccount(stored))
    }
}

extension KlaviyoAPIError {
    var pointer: String? {
        switch source {
        case .pointer(let p), .parameter(let p): p
        case nil: nil
        }
    }
}
