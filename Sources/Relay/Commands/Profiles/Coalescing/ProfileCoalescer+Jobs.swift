public import Klaviyo
import Logging
import Metrics

/// The Klaviyo side of a batch: submit, adopt after a crash, poll, read the import errors.
extension ProfileCoalescer {
    /// Submits the batch this delivery claimed (`submitting` is already recorded). Nil: step the batch again.
    func submit(
        _ command: CommandEnvelope, membership: Membership, batch: String, keys: Keys, token: String, rows: Int,
        klaviyo: KlaviyoClient, credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> Visit? {
        let profiles = try await storedRows(batch)
        guard !profiles.isEmpty else {
            try await abandon(batch, keys: keys, membership: membership, reason: "no rows")
            return nil
        }
        let response: (status: Int, resource: JSONValue)
        do {
            response = try await klaviyo.resource(
                KlaviyoClient.bulkImportProfilesRequest(profiles: profiles, listID: nil), credential: credential)
        } catch {
            return try await afterSubmitFailure(
                error, membership: membership, batch: batch, keys: keys, token: token, rows: profiles.count)
        }
        // The job exists at Klaviyo; its id is not recorded yet (the crash case adoption resolves).
        crashPoint?.trigger(.afterBulkSubmit, commandID: command.id)
        let jobID = response.resource["id"]?.stringValue ?? ""
        let status = response.resource["attributes"]?["status"]?.stringValue ?? "queued"
        Counter(label: "relay_coalesced_jobs_total").increment()
        logger.info(
            "profile bulk import job submitted for a coalesced batch",
            metadata: ["job_id": "\(jobID)", "coalesce.batch": "\(membership.batch)", "coalesce.rows": "\(rows)"])
        return try await recordJob(jobID, status: status, membership: membership, batch: batch, keys: keys)
    }

    /// Records the batch's job; the member waits for its first poll.
    func recordJob(
        _ jobID: String, status: String, membership: Membership, batch: String, keys: Keys
    ) async throws(KlaviyoError) -> Visit {
        let reply = try await script(
            Self.submittedScript, [batch, keys.jobs], [jobID, status, String(settings.ttl.wholeMilliseconds)])
        if reply.first == "already", reply.count > 1, reply[1] != jobID {
            logger.warning(
                "another process recorded a different job for this batch first",
                metadata: ["job_id": "\(jobID)", "coalesce.recorded_job_id": "\(reply[1])"])
        }
        let recorded = reply.count > 1 ? reply[1] : jobID
        return .pending(pending(membership, jobID: recorded, wait: settings.pollInterval))
    }

    /// Records a bulk import job that a `profile.bulk_import` command created among the account's known jobs
    /// (`…jobs`, beside the batches' own), so a batch's crash adoption (``adoptable(_:rows:since:lockTTL:excluding:)``)
    /// never adopts it, even when it has the batch's row count and was created while the batch's submit could
    /// have run. Best effort: the job exists whatever Redis answers, and failing the command would submit it
    /// again; when Redis fails, the adoption still refuses to guess between two jobs that fit.
    public func recordJob(_ jobID: String, accountID: String) async {
        guard !jobID.isEmpty else { return }
        do {
            _ = try await script(
                Self.knownJobScript, [RedisKeys.coalescing(accountID) + "jobs"],
                [jobID, String(settings.ttl.wholeMilliseconds)])
        } catch {
            logger.warning(
                "could not record a profile.bulk_import job among the known jobs",
                metadata: ["job_id": "\(jobID)", LogKeys.errorDetail: "\(error)"])
        }
    }

    /// A failed submit: a refusal of the whole request (4xx, nothing created) gives every member a single call;
    /// a call that never left gives the claim back; an answer that may have created a job keeps `submitting`
    /// (the lock expires, and the next visitor looks for the job before submitting again).
    func afterSubmitFailure(
        _ error: KlaviyoError, membership: Membership, batch: String, keys: Keys, token: String, rows: Int
    ) async throws(KlaviyoError) -> Visit? {
        let refusedWhole =
            error.code == .rejected || error.code == .invalidRequest || error.code == .conflict
        if refusedWhole {
            logger.warning(
                "Klaviyo refused the coalesced bulk import request; its upserts go out singly",
                metadata: [LogKeys.errorDetail: "\(error)", "coalesce.batch": "\(membership.batch)"])
            try await abandon(batch, keys: keys, membership: membership, reason: String(error.description.prefix(500)))
            return nil
        }
        let nothingCreated =
            !error.requestMayHaveBeenSent || error.code == .throttled || error.code == .unauthorized
            || error.code == .forbidden
        if nothingCreated {
            _ = try await script(Self.releaseSubmitScript, [batch], [token])
        } else {
            logger.warning(
                "coalesced bulk import submit failed ambiguously; the batch is checked against the job list later",
                metadata: [LogKeys.errorDetail: "\(error)", "coalesce.batch": "\(membership.batch)"])
        }
        throw error
    }

    /// After a submitter vanished: adopt the job it created (``adoptable(_:rows:since:lockTTL:excluding:)``), or
    /// submit again when there is none or no single one.
    func adopt(
        _ command: CommandEnvelope, membership: Membership, batch: String, keys: Keys, token: String, rows: Int,
        submittingAt: Int64, klaviyo: KlaviyoClient, credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> Visit? {
        let jobs: [JSONValue]
        do {
            jobs = try await klaviyo.recentBulkImportJobs(credential: credential)
        } catch {
            _ = try await script(Self.releaseLockScript, [batch], [token])
            throw error
        }
        let known = Set(try await script(Self.membersScript, [keys.jobs], []))
        if let job = Self.adoptable(jobs, rows: rows, since: submittingAt, lockTTL: settings.lockTTL, excluding: known)
        {
            let jobID = job["id"]?.stringValue ?? ""
            logger.warning(
                "adopted the bulk import job of a submitter that vanished (no second submit)",
                metadata: ["job_id": "\(jobID)", "coalesce.batch": "\(membership.batch)"])
            Counter(label: "relay_coalesced_jobs_adopted_total").increment()
            return try await recordJob(
                jobID, status: job["attributes"]?["status"]?.stringValue ?? "queued", membership: membership,
                batch: batch, keys: keys)
        }
        guard
            try await script(Self.resubmitScript, [batch], [token, String(settings.lockTTL.wholeMilliseconds)])
                .first == "1"
        else { return nil }
        logger.warning(
            "no single bulk import job fits a vanished submitter; submitting the batch again",
            metadata: ["coalesce.batch": "\(membership.batch)"])
        return try await submit(
            command, membership: membership, batch: batch, keys: keys, token: token, rows: rows, klaviyo: klaviyo,
            credential: credential)
    }

    /// The listed job a vanished submitter created: the batch's row count, not any batch's recorded job, and
    /// created while its submit could have run (from `submitting` being recorded until its lock expired, with a
    /// minute of clock skew either side). Nil when no job fits, and when several do: a guess could hand the batch
    /// another batch's (or a `profile.bulk_import` command's) job, so it is submitted again instead (its rows are
    /// upserts: a second job of them is harmless).
    public static func adoptable(
        _ jobs: [JSONValue], rows: Int, since: Int64, lockTTL: Duration, excluding known: Set<String>
    ) -> JSONValue? {
        let skew: Int64 = 60
        let earliest = since / 1000 - skew
        let latest = since / 1000 + lockTTL.components.seconds + skew
        var candidates: [String: JSONValue] = [:]
        for job in jobs {
            guard let id = job["id"]?.stringValue, !known.contains(id),
                job["attributes"]?["total_count"]?.jobInteger == Int64(rows),
                let created = job["attributes"]?["created_at"]?.stringValue.flatMap({
                    Timestamp.epochSeconds(rfc3339: $0)
                }),
                created >= earliest, created <= latest
            else { continue }
            candidates[id] = job
        }
        return candidates.count == 1 ? candidates.values.first : nil
    }

    /// One poll of the batch's job; when it is final, its row errors are read and stored. Nil: step again.
    func poll(
        membership: Membership, batch: String, keys: Keys, token: String, jobID: String, klaviyo: KlaviyoClient,
        credential: KlaviyoCredential
    ) async throws(KlaviyoError) -> Visit? {
        let job: JSONValue
        do {
            job = try await klaviyo.resource(KlaviyoClient.getBulkImportJobRequest(id: jobID), credential: credential)
                .resource
        } catch  where error.status == 404 {
            logger.warning("Klaviyo does not know the batch's bulk import job; its upserts go out singly")
            try await abandon(batch, keys: keys, membership: membership, reason: "job not found")
            return nil
        } catch {
            _ = try await script(Self.releaseLockScript, [batch], [token])
            throw error
        }
        let attributes = job["attributes"]
        let status = attributes?["status"]?.stringValue ?? ""
        guard KlaviyoClient.finalJobStatuses.contains(status) else {
            _ = try await script(
                Self.polledScript, [batch, batch + ":errors", keys.identifiers, keys.holds],
                [
                    membership.batch, status, "0", "", "0", String(settings.ttl.wholeMilliseconds),
                    String(settings.holdTTL.wholeMilliseconds), keys.prefix,
                ])
            return .pending(pending(membership, jobID: jobID, wait: settings.pollInterval))
        }
        var finalState = "cancelled"
        var uncertain = true
        var pairs: [String] = []
        if status == "complete" {
            finalState = "complete"
            let failed = Int(attributes?["failed_count"]?.jobInteger ?? 0)
            uncertain = false
            if failed > 0 {
                let errors: [JSONValue]
                let rows: [[String: JSONValue]]
                do {
                    errors = try await klaviyo.bulkImportErrors(jobID: jobID, credential: credential, pageSize: 100)
                    rows = try await storedRows(batch)
                } catch {
                    _ = try await script(Self.releaseLockScript, [batch], [token])
                    throw error
                }
                let matches = ImportErrorMatcher.match(errors: errors, rows: rows)
                uncertain = matches.unmatched > 0 || matches.byRow.count < failed
                for (row, error) in matches.byRow {
                    let compact: JSONValue = [
                        "code": error["code"] ?? .null, "title": error["title"] ?? .null,
                        "detail": error["detail"] ?? .null, "source": error["source"] ?? .null,
                    ]
                    pairs += [String(row), String(decoding: compact.jsonBytes(), as: UTF8.self)]
                }
                if uncertain {
                    logger.warning(
                        "import errors of a coalesced job could not all be tied to rows; rows without one go singly",
                        metadata: [
                            "job_id": "\(jobID)", "coalesce.failed": "\(failed)",
                            "coalesce.matched": "\(matches.byRow.count)", "coalesce.unmatched": "\(matches.unmatched)",
                        ])
                }
            }
        }
        _ = try await script(
            Self.polledScript, [batch, batch + ":errors", keys.identifiers, keys.holds],
            [
                membership.batch, status, "1", finalState, uncertain ? "1" : "0",
                String(settings.ttl.wholeMilliseconds), String(settings.holdTTL.wholeMilliseconds), keys.prefix,
            ] + pairs)
        logger.info(
            "coalesced bulk import job finished",
            metadata: ["job_id": "\(jobID)", "coalesce.batch": "\(membership.batch)", "job_status": "\(status)"])
        return nil
    }

    /// Cancels a batch that will never become a job: every member goes out singly (``abandonScript``).
    func abandon(_ batch: String, keys: Keys, membership: Membership, reason: String) async throws(KlaviyoError) {
        _ = try await script(
            Self.abandonScript, [batch, keys.identifiers, keys.holds],
            [
                membership.batch, reason, String(settings.holdTTL.wholeMilliseconds),
                String(settings.ttl.wholeMilliseconds), keys.prefix,
            ])
    }

    /// The batch's rows (attributes), in request order.
    func storedRows(_ batch: String) async throws(KlaviyoError) -> [[String: JSONValue]] {
        let rows = try await script(Self.rowsScript, [batch + ":rows"], [])
        return rows.map { text in (try? JSONValue.parse(Array(text.utf8)))?["attributes"]?.objectValue ?? [:] }
    }
}
