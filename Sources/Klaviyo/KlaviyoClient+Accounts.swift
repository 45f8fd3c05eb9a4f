extension KlaviyoClient {
    /// `GET /api/accounts` (get_accounts, tier XS): the one account a credential belongs to.
    public func getAccount(credential: KlaviyoCredential) async throws(KlaviyoError) -> KlaviyoAccount {
        let request = KlaviyoRequest(
            operationID: "get_accounts", method: "GET", path: "/api/accounts", isIdempotent: true)
        let response = try await send(request, credential: credential)
        guard let first = response.data?.arrayValue?.first, let account = KlaviyoAccount(resource: first) else {
            throw KlaviyoError(
                code: .invalidResponse, status: response.status, operationID: request.operationID,
                message: "response has no account resource", usedOAuth: credential.isOAuth)
        }
        return account
    }
}

extension KlaviyoAccount {
    /// The account as results carry it (`account.get`'s `klaviyo.data`).
    public var jsonValue: JSONValue {
        func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
        return [
            "id": .string(id), "organization_name": text(organizationName), "timezone": text(timezone),
            "currency": text(preferredCurrency), "public_api_key": text(publicAPIKey),
        ]
    }
}

extension KlaviyoClient {
    /// `GET /api/accounts` for a person waiting on a connect page: the endpoint's burst limit is about one
    /// call a second per account, so a 429 with a short `Retry-After` (≤ `maxWait`) is waited out and retried,
    /// at most `attempts` times in all; anything else is thrown at once.
    public func getAccountPatiently(
        credential: KlaviyoCredential, attempts: Int = 3, maxWait: Duration = .seconds(3)
    ) async throws(KlaviyoError) -> KlaviyoAccount {
        var attempt = 1
        while true {
            do {
                return try await getAccount(credential: credential)
            } catch {
                let wait = error.retryAfter ?? .seconds(1)
                guard error.status == 429, attempt < attempts, wait <= maxWait else { throw error }
                attempt += 1
                try? await Task.sleep(for: wait)
            }
        }
    }
}
