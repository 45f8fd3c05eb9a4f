import Klaviyo

/// Execution of `list.create`, `list.add_profiles` and `list.remove_profiles`.
extension CommandExecutor {
    /// Looks the name up first and creates the list only when absent (so a repeated attempt is harmless).
    func createList(
        _ payload: ListCreatePayload, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        if let existing = try await klaviyo.findLists(name: payload.name, credential: credential).first(where: {
            $0.name == payload.name
        }) {
            return CommandExecution(
                outcome: .succeeded, klaviyo: .init(status: 200, ids: [existing.id], data: ["created": false]))
        }
        let list = try await klaviyo.createList(
            name: payload.name, optInProcess: payload.optInProcess, credential: credential)
        return CommandExecution(
            outcome: .succeeded, klaviyo: .init(status: 201, ids: [list.id], data: ["created": true]))
    }

    /// Adds (`add`) or removes the profiles, in calls of at most 1,000.
    func changeListProfiles(
        _ payload: ListProfilesPayload, add: Bool, credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> CommandExecution {
        var status = 204
        for batch in payload.batches {
            status = try await klaviyo.changeListProfiles(
                listID: payload.listID, profileIDs: batch, add: add, credential: credential)
        }
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(
                status: status, ids: [payload.listID],
                data: Self.counts(profiles: payload.profileIDs.count, calls: payload.batches.count)))
    }
}
