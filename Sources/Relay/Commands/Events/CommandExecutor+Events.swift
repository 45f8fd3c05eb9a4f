import Klaviyo

/// Execution of `event.track` (coalesced with the account's other events by the ``EventBatcher``) and
/// `event.bulk_track`.
extension CommandExecutor {
    func trackEvent(
        _ payload: EventTrackPayload, command: CommandEnvelope, credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> CommandExecution {
        let event = payload.klaviyoEvent(commandID: command.id, createdAt: command.createdAt)
        var data: [String: JSONValue] = ["unique_id": .string(event.uniqueID), "time": .string(event.time)]
        let status: Int
        switch try await batcher?.submit(event, accountID: command.accountID, credential: credential, client: klaviyo) {
        case .single(let single):
            status = single
        case .batched(let bulk, let size):
            status = bulk
            data["batched"] = .int(Int64(size))
        case .sendAlone, nil:
            // No batching, or the bulk call was refused for what may be one bad event: this event alone.
            status = try await klaviyo.createEvent(event, credential: credential)
        }
        return CommandExecution(outcome: .succeeded, klaviyo: .init(status: status, data: .object(data)))
    }

    func bulkTrackEvents(
        _ payload: EventBulkTrackPayload, command: CommandEnvelope, credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> CommandExecution {
        let batches = payload.batches(commandID: command.id, createdAt: command.createdAt)
        var status = 202
        for batch in batches {
            status = try await klaviyo.bulkCreateEvents(batch, credential: credential)
        }
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(
                status: status,
                data: ["events": .int(Int64(payload.events.count)), "calls": .int(Int64(batches.count))]
            ))
    }
}
