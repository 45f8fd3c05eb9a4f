extension KlaviyoClient {
    /// `GET /api/accounts` (get_accounts, tier XS): the one account a credential belongs to.
    public func getAccount(credential: KlaviyoCredential) async throws(KlaviyoError) -> KlaviyoAccount {
        let request = KlaviyoRequest(operationID: "get_accounts", method: "GET", path: "/api/accounts", isIdempotent: true)
        let response = try await send(request, credential: credential)
        guard let first = response.data?.arrayValue?.first, let account = KlaviyoAccount(resource: first) else {
            throw KlaviyoError(
                code: .invalidResponse, status: response.status, operationID: request.operationID,
                message: "response has no account resource", usedOAuth: credential.isOAuth)
        }
        return account
    }
}
