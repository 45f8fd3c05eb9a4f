import Logging

extension CommandProcessor {
    /// Why an OAuth command cannot get a token: the dead-letter code and detail.
    struct TokenRejection: Error {
        var code: DeadLetterCode
        var detail: String
    }

    /// A connection with a usable access token from the token manager (after a 401: a refreshed one).
    /// `reauth_required`, `not_connected` and `credential_unreadable` are final; a transient failure is retried a
    /// few times, then the command is dead-lettered `retries_exhausted` (replayable).
    func oauthConnection(
        _ record: ConnectionRecord, tokenManager: TokenManager, afterUnauthorized: Bool, logger: Logger
    ) async throws -> Result<ConnectionRecord, TokenRejection> {
        var backoff = Duration.milliseconds(200)
        var attempt = 0
        while true {
            attempt += 1
            let failure: TokenManager.Failure
            do {
                return .success(
                    afterUnauthorized
                        ? try await tokenManager.refreshAfterUnauthorized(record)
                        : try await tokenManager.usableConnection(record))
            } catch let error as TokenManager.Failure {
                failure = error
            } catch let unreadable as CredentialUnreadable {
                // The token manager re-read the connection and cannot decrypt it: final, not transient.
                noteCredentialUnreadable(unreadable, logger: logger)
                return .failure(TokenRejection(code: .credentialUnreadable, detail: unreadable.description))
            } catch {
                failure = .unavailable("\(error)")
            }
            switch failure {
            case .reauthRequired(let detail):
                return .failure(TokenRejection(code: .reauthRequired, detail: detail))
            case .notConnected(let detail):
                return .failure(TokenRejection(code: .notConnected, detail: detail))
            case .unavailable(let detail):
                guard attempt < 3 else {
                    return .failure(
                        TokenRejection(
                            code: .retriesExhausted, detail: "no access token after \(attempt) tries: \(detail)"))
                }
                logger.warning("no access token yet; retrying", metadata: [LogKeys.errorDetail: "\(detail)"])
                try await pause(&backoff)
            }
        }
    }
}
