public import Klaviyo

/// Execution of `connection.validate` (`connection.disconnect` needs no Klaviyo credential: the processor runs
/// it through ``ConnectionLifecycle``, see `CommandProcessor+Disconnect.swift`).
extension CommandExecutor {
    /// The cheap reads `connection.validate` makes: one per scope area the relay's commands use.
    public static let scopeChecks: [(scope: String, request: KlaviyoRequest)] = [
        (
            "accounts:read",
            KlaviyoRequest(operationID: "get_accounts", method: "GET", path: "/api/accounts", isIdempotent: true)
        ),
        (
            "profiles:read",
            KlaviyoRequest(
                operationID: "get_profiles", method: "GET", path: "/api/profiles", query: [("page[size]", "1")],
                isIdempotent: true)
        ),
        ("lists:read", KlaviyoRequest(operationID: "get_lists", method: "GET", path: "/api/lists", isIdempotent: true)),
        (
            "campaigns:read",
            KlaviyoRequest(
                operationID: "get_campaigns", method: "GET", path: "/api/campaigns",
                query: [("filter", "equals(messages.channel,'email')")], isIdempotent: true)
        ),
        (
            "flows:read",
            KlaviyoRequest(
                operationID: "get_flows", method: "GET", path: "/api/flows", query: [("page[size]", "1")],
                isIdempotent: true)
        ),
    ]

    /// A test call per scope area: what works, and which scopes are missing (a 403 is a missing scope; any
    /// other failure is the command's failure, retried or rejected as usual).
    func validateConnection(credential: KlaviyoCredential) async throws(KlaviyoError) -> CommandExecution {
        var checks: [JSONValue] = []
        var missing: [JSONValue] = []
        for check in Self.scopeChecks {
            let operation = "\(check.request.method) \(check.request.path)"
            do throws(KlaviyoError) {
                let response = try await klaviyo.send(check.request, credential: credential)
                checks.append([
                    "scope": .string(check.scope), "operation": .string(operation), "ok": true,
                    "status": .int(Int64(response.status)),
                ])
            } catch  where error.status == 403 {
                missing.append(.string(check.scope))
                checks.append([
                    "scope": .string(check.scope), "operation": .string(operation), "ok": false, "status": 403,
                ])
            }
        }
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(
                status: 200,
                data: ["ok": .bool(missing.isEmpty), "checks": .array(checks), "missing_scopes": .array(missing)]))
    }
}
