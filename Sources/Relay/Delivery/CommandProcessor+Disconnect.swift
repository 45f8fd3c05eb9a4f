import Klaviyo

extension CommandProcessor {
    /// `connection.disconnect`, handled here and only here (it needs no Klaviyo credential, so it never reaches
    /// the ``CommandExecutor``): the same effect as `DELETE /v1/accounts/{id}/connection` through
    /// ``ConnectionLifecycle`` (revoke, delete secrets, `connection.disconnected` event), then a result.
    @inline(never)  // ``perform(_:_:)``: see there
    func disconnect(reason: String, _ run: inout Run) async throws -> Action {
        guard let lifecycle else {
            return .deadLetter(
                code: .unsupportedType, detail: "this consumer has no connection lifecycle configured",
                attempts: run.attemptsSoFar, firstFailedAt: nil)
        }
        let disconnected: Bool
        do {
            disconnected = try await lifecycle.disconnect(accountID: run.command.accountID, reason: reason)
        } catch {
            // Klaviyo's revoke endpoint could not be reached: stay connected and try again later.
            return .deadLetter(
                code: .retriesExhausted, detail: "disconnect failed: \(error)", attempts: run.attemptsSoFar,
                firstFailedAt: nil)
        }
        credentials.invalidate(run.command.accountID)
        // The result's duration counts from here (as it always has for disconnects).
        run.started = ContinuousClock.now
        return .publishResult(
            CommandExecution(
                outcome: .succeeded, klaviyo: .init(status: 200, ids: [], data: ["disconnected": .bool(disconnected)])),
            attempts: 1)
    }
}
