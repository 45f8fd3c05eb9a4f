import Klaviyo

/// Execution of `profile.upsert`, `profile.update`, `profile.get` and `profile.bulk_import`.
extension CommandExecutor {
    /// The Redis read the coalescer starts a `profile.upsert` with, for the processor to send with the idempotency
    /// lookup (nil: nothing to read, the command is not coalescable or there is no coalescer).
    public func admissionRead(for command: CommandEnvelope) -> [String]? {
        guard coalescer != nil, case .profileUpsert(let payload) = command.payload else { return nil }
        let identifiers = CoalescedRow(payload)?.identifiers ?? CoalescedRow.identifiers(of: payload.attributes)
        return identifiers.isEmpty ? nil : ProfileCoalescer.peekCommand(command, identifiers: identifiers)
    }

    /// Upserts one profile with `profile-import`, or, with a coalescer and a deep backlog, as a row of a bulk
    /// import job (``ProfileCoalescer``; the command is then parked until its batch's job is done). An upsert
    /// that cannot be coalesced waits, parked, for the unsettled batches of its profile's identifiers first.
    func upsertProfile(
        _ payload: ProfileUpsertPayload, command: CommandEnvelope, credential: KlaviyoCredential,
        peeked: [String]? = nil
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        if let coalescer {
            let visit: ProfileCoalescer.Visit
            if let row = CoalescedRow(payload) {
                visit = try await coalescer.visit(
                    command, row: row, klaviyo: klaviyo, credential: credential, peeked: peeked)
            } else {
                visit = try await coalescer.visitUncoalescable(
                    command, identifiers: CoalescedRow.identifiers(of: payload.attributes), klaviyo: klaviyo,
                    credential: credential, peeked: peeked)
            }
            switch visit {
            case .pending(let job):
                return CommandExecution(
                    outcome: .succeeded,
                    klaviyo: .init(status: 202, ids: job.state["job_id"]?.stringValue.map { [$0] } ?? []),
                    pending: job)
            case .finished(let execution):
                return execution
            case .single:
                break
            }
        }
        let (profileID, created) = try await klaviyo.upsertProfile(
            attributes: payload.attributes, id: payload.profileID, credential: credential)
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(status: created ? 201 : 200, ids: [profileID], data: .object(["created": .bool(created)])))
    }

    func updateProfile(
        _ payload: ProfileUpdatePayload, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        let profile = try await klaviyo.updateProfile(
            id: payload.profileID, attributes: payload.attributes, credential: credential)
        return CommandExecution(outcome: .succeeded, klaviyo: .init(status: 200, ids: [profile.id]))
    }

    func getProfile(
        _ payload: ProfileGetPayload, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        let profiles = try await klaviyo.findProfiles(payload.lookup, credential: credential)
        return CommandExecution(
            outcome: .succeeded,
            klaviyo: .init(
                status: 200, ids: profiles.map(\.id), data: .object(["profile": profiles.first?.jsonValue ?? .null])))
    }

    /// Submits the bulk-import job, or polls the one this command already submitted (`job`). With a coalescer,
    /// the new job is recorded among the account's known jobs, so a coalesced batch's crash adoption never takes
    /// it for its own (``ProfileCoalescer/recordJob(_:accountID:)``).
    func bulkImportProfiles(
        _ payload: ProfileBulkImportPayload, job: JSONValue?, accountID: String, credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> CommandExecution {
        if let job, let jobID = job["job_id"]?.stringValue {
            return try await pollBulkImport(jobID: jobID, state: job, credential: credential)
        }
        let (status, resource) = try await klaviyo.resource(
            KlaviyoClient.bulkImportProfilesRequest(profiles: payload.profiles, listID: payload.listID),
            credential: credential)
        let jobID = resource["id"]?.stringValue ?? ""
        await coalescer?.recordJob(jobID, accountID: accountID)
        return CommandExecution(
            outcome: .succeeded, klaviyo: .init(status: status, ids: [jobID]), pending: .submitted(jobID: jobID))
    }

    /// One poll of a bulk-import job: pending while it runs; when it is final, the result with the counts
    /// and every import error (`succeeded` when the job completed, even with failed rows; `failed` when
    /// Klaviyo cancelled or failed the job).
    func pollBulkImport(
        jobID: String, state: JSONValue, credential: KlaviyoCredential
    ) async throws(KlaviyoError)
        -> CommandExecution
    {
        let (status, job) = try await klaviyo.resource(
            KlaviyoClient.getBulkImportJobRequest(id: jobID), credential: credential)
        let attributes = job["attributes"]
        let jobStatus = attributes?["status"]?.stringValue ?? ""
        guard KlaviyoClient.finalJobStatuses.contains(jobStatus) else {
            return CommandExecution(
                outcome: .succeeded, klaviyo: .init(status: status, ids: [jobID]), pending: .polledAgain(state))
        }
        let failedCount = attributes?["failed_count"]?.jobInteger ?? 0
        let errors = failedCount > 0 ? try await klaviyo.bulkImportErrors(jobID: jobID, credential: credential) : []
        let rows: [JSONValue] = errors.map { error in
            let a = error["attributes"]
            return [
                "code": a?["code"] ?? .null, "title": a?["title"] ?? .null, "detail": a?["detail"] ?? .null,
                "source": a?["source"] ?? .null, "original_payload": a?["original_payload"] ?? .null,
            ]
        }
        let data: JSONValue = [
            "job_id": .string(jobID), "status": .string(jobStatus),
            "total_count": attributes?["total_count"] ?? .null,
            "completed_count": attributes?["completed_count"] ?? .null,
            "failed_count": attributes?["failed_count"] ?? .null, "import_errors": .array(rows),
            "polls": .int(Clamp.sum(state["polls"]?.jobInteger ?? 0, 1)),
        ]
        if jobStatus == "complete" {
            return CommandExecution(
                outcome: .succeeded,
                klaviyo: .init(
                    status: status, ids: [jobID], data: data, job: ["id": .string(jobID), "status": .string(jobStatus)])
            )
        }
        return CommandExecution(
            outcome: .failed,
            klaviyo: .init(
                status: status, ids: [jobID], data: data, job: ["id": .string(jobID), "status": .string(jobStatus)]),
            failure: .init(code: "job_\(jobStatus)", detail: "Klaviyo's bulk import job \(jobID) ended \(jobStatus)"))
    }
}
