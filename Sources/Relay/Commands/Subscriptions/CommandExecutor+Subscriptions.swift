import Klaviyo

/// Execution of `subscription.subscribe` and `subscription.unsubscribe`.
extension CommandExecutor {
    func subscribe(
        _ payload: SubscriptionSubscribePayload, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        var status = 202
        for batch in payload.batches {
            let request = KlaviyoClient.subscribeProfilesRequest(
                batch, listID: payload.listID, customSource: payload.customSource,
                historicalImport: payload.historicalImport)
            status = try await klaviyo.send(request, credential: credential).status
        }
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(
                status: status, ids: payload.listID.map { [$0] } ?? [],
                data: Self.counts(profiles: payload.profiles.count, calls: payload.batches.count)))
    }

    func unsubscribe(
        _ payload: SubscriptionUnsubscribePayload, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        var status = 202
        for batch in payload.batches {
            let request = KlaviyoClient.unsubscribeProfilesRequest(batch, listID: payload.listID)
            status = try await klaviyo.send(request, credential: credential).status
        }
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(
                status: status, ids: payload.listID.map { [$0] } ?? [],
                data: [
                    "profiles": .int(Int64(payload.profiles.count)), "calls": .int(Int64(payload.batches.count)),
                    "global": .bool(payload.listID == nil),
                ]))
    }
}
