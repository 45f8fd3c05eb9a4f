import Logging
import Metrics

extension CommandProcessor {
    /// The account's connection from the cache; a ``CredentialUnreadable`` comes back as a value, so the
    /// `infrastructure` retry loop (meant for Redis outages) never retries it.
    func lookUpCredential(_ command: CommandEnvelope) async throws -> Result<ConnectionRecord?, CredentialUnreadable> {
        do {
            return .success(try await credentials.connection(for: command.accountID))
        } catch let unreadable as CredentialUnreadable {
            return .failure(unreadable)
        }
    }

    /// Logs an unreadable credential at error level (account, field and key id: never material) and counts it
    /// in `relay_credential_unreadable_total{reason}` (`unknown_key_id` or `decryption_failed`).
    func noteCredentialUnreadable(_ error: CredentialUnreadable, logger: Logger) {
        logger.error(
            "stored credential cannot be read; command dead-lettered without retry",
            metadata: [
                LogKeys.accountID: "\(error.accountID)", LogKeys.keyID: "\(error.keyID)",
                LogKeys.credentialField: "\(error.field)",
                LogKeys.errorCode: "\(DeadLetterCode.credentialUnreadable.rawValue)",
                LogKeys.errorDetail: "\(error.description)",
            ])
        Counter(label: "relay_credential_unreadable_total", dimensions: [("reason", error.reason.rawValue)])
            .increment()
    }
}
