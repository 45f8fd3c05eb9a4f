import Hummingbird
import Klaviyo
import Relay

/// The JSON API of the dashboard backend (bearer `RELAY_API_TOKEN`): connect with an API key, status, disconnect.
extension RelayHTTP {
    func apiConnectAPIKey(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard authorized(request) else { return unauthorized }
        guard let account = accountParameter(context) else {
            return jsonError(.badRequest, "invalid_account_id", "the account id is missing or malformed")
        }
        let body = try await request.body.collect(upTo: 64 * 1024)
        guard let bytes = body.getBytes(at: body.readerIndex, length: body.readableBytes),
            let parsed = try? JSONValue.parse(bytes), let key = parsed["api_key"]?.stringValue
        else {
            return jsonError(.badRequest, "invalid_body", "send a JSON object {\"api_key\": \"pk_…\"}")
        }
        do {
            let record = try await dependencies.lifecycle.connectAPIKey(
                accountID: account, apiKey: key, connector: dependencies.apiKeyConnector)
            dependencies.logger.info("connected with an API key", metadata: ["account_id": "\(record.accountID)"])
            return json(.ok, try await dependencies.lifecycle.status(accountID: account))
        } catch let failure as APIKeyConnector.Failure {
            if let retryAfter = failure.retryAfter {
                var response = jsonError(.tooManyRequests, failure.code, failure.description)
                response.headers[.retryAfter] = String(retryAfter.components.seconds)
                return response
            }
            return jsonError(
                failure.isRetriable ? .serviceUnavailable : .unprocessableContent, failure.code, failure.description)
        }
    }

    /// The connection status; `"state": "reconnect_needed"` when the stored secrets cannot be read
    /// (``CredentialUnreadable``).
    func apiStatus(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard authorized(request) else { return unauthorized }
        guard let account = accountParameter(context) else {
            return jsonError(.badRequest, "invalid_account_id", "the account id is missing or malformed")
        }
        return json(.ok, try await dependencies.lifecycle.status(accountID: account))
    }

    func apiDisconnect(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard authorized(request) else { return unauthorized }
        guard let account = accountParameter(context) else {
            return jsonError(.badRequest, "invalid_account_id", "the account id is missing or malformed")
        }
        do {
            let changed = try await dependencies.lifecycle.disconnect(accountID: account)
            var status = try await dependencies.lifecycle.status(accountID: account)
            if case .object(var fields) = status {
                fields["disconnected_now"] = .bool(changed)
                status = .object(fields)
            }
            return json(.ok, status)
        } catch let failure as ConnectionLifecycle.Failure {
            return jsonError(.serviceUnavailable, failure.code, failure.description)
        }
    }
}
