import Klaviyo

/// Execution of `account.get`.
extension CommandExecutor {
    func getAccount(credential: KlaviyoCredential) async throws(KlaviyoError) -> CommandExecution {
        let account = try await klaviyo.getAccount(credential: credential)
        return CommandExecution(
            outcome: .succeeded, klaviyo: .init(status: 200, ids: [account.id], data: account.jsonValue))
    }
}
