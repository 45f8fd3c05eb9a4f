import Foundation
import Klaviyo
import Logging
import Redis
import Relay
import RelayTestSupport
import Synchronization
import Testing

struct CoalescingTestError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// `profile.upsert` coalescing: which upserts may become bulk rows, how import errors find their rows, the
/// settings, and the executor's batch lifecycle against the real Redis and a scripted Klaviyo (one submit, one
/// shared poll, each command its own outcome).
@Suite("Profile coalescing")
struct ProfileCoalescerTests {
    let types = CommandTypeTests()

    func payload(_ profile: JSONValue, profileID: String? = nil) throws -> ProfileUpsertPayload {
        var members: [String: JSONValue] = ["profile": profile]
        if let profileID { members["profile_id"] = .string(profileID) }
        guard case .profileUpsert(let payload) = try types.decode("profile.upsert", .object(members)).payload else {
            throw CoalescingTestError("not an upsert")
        }
        return payload
    }

    // MARK: the rule

    @Test func plainUpsertsBecomeRowsWithNormalizedIdentifiers() throws {
        let row = try #require(
            CoalescedRow(
                try payload([
                    "email": "Ada@Example.com", "phone_number": "+15005550006", "external_id": "x-1",
                    "first_name": "Ada", "location": ["city": "Boston"], "properties": ["plan": "pro"],
                ])))
        #expect(row.identifiers == ["email:ada@example.com", "phone_number:+15005550006", "external_id:x-1"])
        #expect(row.attributes["first_name"] == "Ada")
    }

    @Test func upsertsWhoseMeaningCouldDifferInBulkStaySingle() throws {
        // By Klaviyo profile id.
        #expect(CoalescedRow(try payload(["email": "a@example.com"], profileID: "01ABC")) == nil)
        // A null clears a field: at the top level, inside location, inside properties.
        #expect(CoalescedRow(try payload(["email": "a@example.com", "first_name": .null])) == nil)
        #expect(CoalescedRow(try payload(["email": "a@example.com", "location": ["city": .null]])) == nil)
        #expect(CoalescedRow(try payload(["email": "a@example.com", "properties": ["gone": .null]])) == nil)
        // No identifier left once nulls are excluded is impossible here; an ordinary one is a row.
        #expect(CoalescedRow(try payload(["email": "a@example.com", "properties": ["kept": 1]])) != nil)
    }

    // MARK: import errors → rows

    static func error(pointer: String?, payload: JSONValue?) -> JSONValue {
        var source: [String: JSONValue] = [:]
        if let pointer { source["pointer"] = .string(pointer) }
        return [
            "type": "import-error", "id": "E",
            "attributes": [
                "code": "invalid", "title": "Invalid input", "detail": "Invalid email address",
                "source": .object(source), "original_payload": payload ?? .null,
            ],
        ]
    }

    @Test func importErrorsFindTheirRowsByPointerOrByIdentifier() {
        let rows: [[String: JSONValue]] = [
            ["email": "a@example.com"], ["email": "B@example.com"], ["phone_number": "+15005550006"],
            ["external_id": "x-9"],
        ]
        let matches = ImportErrorMatcher.match(
            errors: [
                // The pointer names row 1, and the payload agrees (emails compare case-insensitively).
                Self.error(
                    pointer: "/data/attributes/profiles/data/1/attributes/email",
                    payload: ["type": "profile", "attributes": ["email": "b@example.com"]]),
                // No usable pointer: the payload's identifier picks row 2.
                Self.error(pointer: "/data", payload: ["phone_number": "+15005550006"]),
                // A pointer that disagrees with its payload is not trusted: the payload picks row 3.
                Self.error(
                    pointer: "/data/attributes/profiles/data/0/attributes", payload: ["external_id": "x-9"]),
                // Names no row at all.
                Self.error(pointer: nil, payload: ["email": "nobody@example.com"]),
                Self.error(pointer: "/data/attributes/profiles/data/99", payload: nil),
            ],
            rows: rows)
        #expect(Set(matches.byRow.keys) == [1, 2, 3])
        #expect(matches.byRow[1]?["detail"] == "Invalid email address")
        #expect(matches.unmatched == 2)
    }

    /// Two rows whose external ids differ only in Unicode normalization are two profiles to Klaviyo: the second
    /// row's error (no usable pointer) lands on the second row, not on the first (Swift `String` equality would
    /// take them for one identifier).
    @Test func importErrorsMatchIdentifiersByTheirBytes() {
        let composed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        #expect(composed == decomposed)  // what String equality says, and Klaviyo does not
        let rows: [[String: JSONValue]] = [["external_id": .string(composed)], ["external_id": .string(decomposed)]]
        let matches = ImportErrorMatcher.match(
            errors: [Self.error(pointer: "/data", payload: ["external_id": .string(decomposed)])], rows: rows)
        #expect(Set(matches.byRow.keys) == [1])
        let pointed = ImportErrorMatcher.match(
            errors: [
                Self.error(
                    pointer: "/data/attributes/profiles/data/0/attributes",
                    payload: ["external_id": .string(decomposed)])
            ],
            rows: rows)
        #expect(Set(pointed.byRow.keys) == [1])  // the pointer disagrees with the payload's bytes: the payload wins
    }

    // MARK: settings

    @Test func settingsFollowTheRateLimiterUnlessSetAndRefuseNonsense() throws {
        #expect(try ProfileCoalescer.Settings.fromEnvironment([:], rateLimitEnabled: true) != nil)
        #expect(try ProfileCoalescer.Settings.fromEnvironment([:], rateLimitEnabled: false) == nil)
        #expect(
            try ProfileCoalescer.Settings.fromEnvironment(["RELAY_COALESCE": "off"], rateLimitEnabled: true) == nil)
        let set = try #require(
            try ProfileCoalescer.Settings.fromEnvironment(
                [
                    "RELAY_COALESCE": "on", "RELAY_COALESCE_THRESHOLD": "0", "RELAY_COALESCE_WINDOW": "500ms",
                    "RELAY_COALESCE_LOCK_TTL": "90s",
                ], rateLimitEnabled: false))
        #expect(set.threshold == .zero)
        #expect(set.window == .milliseconds(500))
        #expect(set.lockTTL == .seconds(90))
        for bad in [
            ["RELAY_COALESCE": "yes"], ["RELAY_COALESCE_WINDOW": "2h"], ["RELAY_COALESCE_LOCK_TTL": "10ms"],
            ["RELAY_COALESCE_THRESHOLD": "soon"],
        ] {
            #expect(throws: RelayError.self) {
                try ProfileCoalescer.Settings.fromEnvironment(bad, rateLimitEnabled: true)
            }
        }
    }

    // MARK: the lifecycle, against Redis and a scripted Klaviyo

    static func redis() throws -> RedisClient {
        var logger = Logger(label: "coalescer-tests")
        logger.logLevel = .warning
        return RedisClient(configuration: try RedisConfiguration(url: TestServers.redisURL), logger: logger)
    }

    /// Klaviyo's 202 for a submitted bulk import job `J1` of `rows` profiles.
    static func jobAccepted(rows: Int) -> KlaviyoHTTPResponse {
        ScriptedTransport.reply(
            202,
            #"{"data":{"type":"profile-bulk-import-job","id":"J1","attributes":{"status":"queued","#
                + #""created_at":"2026-12-04T00:00:00+00:00","total_count":\#(rows)}}}"#)
    }

    /// Klaviyo's import errors of a job: one invalid email, at JSON pointer `pointer`.
    static func importError(pointer: String, email: String) -> KlaviyoHTTPResponse {
        ScriptedTransport.reply(
            200,
            #"{"data":[{"type":"import-error","id":"E1","attributes":{"code":"invalid","#
                + #""title":"Invalid input","detail":"Invalid email address","source":{"pointer":"\#(pointer)"},"#
                + #""original_payload":{"type":"profile","attributes":{"email":"\#(email)"}}}}],"links":{}}"#)
    }

    /// Klaviyo with one bulk import job: 202 on submit, `complete` with one failed row (row `failedRow`) on poll.
    static func klaviyo(failedRow: Int, email: String, status: String = "complete") -> ScriptedTransport {
        ScriptedTransport { request in
            if request.method == "POST" {
                return jobAccepted(rows: 5)
            }
            if request.url.contains("/import-errors") {
                return importError(
                    pointer: "/data/attributes/profiles/data/\(failedRow)/attributes/email", email: email)
            }
            return ScriptedTransport.reply(
                200,
                #"{"data":{"type":"profile-bulk-import-job","id":"J1","attributes":{"status":"\#(status)","#
                    + #""created_at":"2026-12-04T00:00:00+00:00","total_count":5,"completed_count":4,"#
                    + #""failed_count":1}}}"#)
        }
    }

    /// An executor whose upserts always coalesce (threshold 0), with batches open for `window`, calling `transport`.
    static func coalescingExecutor(
        redis: RedisClient, window: Duration, transport: ScriptedTransport
    ) -> CommandExecutor {
        var settings = ProfileCoalescer.Settings()
        settings.threshold = .zero
        settings.window = window
        settings.pollInterval = .milliseconds(50)
        let coalescer = ProfileCoalescer(redis: redis, settings: settings, logger: Logger(label: "test")) { _, _ in
            .zero
        }
        let client = KlaviyoClient(
            baseURL: "https://a.klaviyo.com", transport: transport, userAgent: "test", logger: Logger(label: "test"))
        return CommandExecutor(klaviyo: client, coalescer: coalescer)
    }

    /// Command `<account>-<index>`: a `profile.upsert` of `email` (by Klaviyo profile id when one is given).
    static func upsert(account: String, index: Int, email: String, profileID: String? = nil) throws -> CommandEnvelope {
        var payload: [String: JSONValue] = ["profile": ["email": .string(email)]]
        if let profileID { payload["profile_id"] = .string(profileID) }
        let body = JSONValue.object([
            "id": .string("\(account)-\(index)"), "type": "profile.upsert", "account_id": .string(account),
            "created_at": "2026-11-29T12:00:00Z", "payload": .object(payload),
        ]).jsonBytes()
        guard case .success(let command) = CommandDecoder().decode(body) else { throw CoalescingTestError("decode") }
        return command
    }

    @Test func oneJobCarriesTheBatchAndEachCommandGetsItsOwnOutcome() async throws {
        let redis = try Self.redis()
        defer { Task { await redis.shutdown() } }
        let account = "co-\(UUID().uuidString.lowercased())"
        let transport = Self.klaviyo(failedRow: 3, email: "u3@example.com")
        // A window wide enough that a loaded machine joins all five before it closes (2 s was not, once, under a
        // load average of 5 on two cores).
        let executor = Self.coalescingExecutor(redis: redis, window: .seconds(5), transport: transport)
        let commands = try (0..<5).map { try Self.upsert(account: account, index: $0, email: "u\($0)@example.com") }
        // Joining: every command is parked, nothing reaches Klaviyo.
        for command in commands {
            let execution = try await executor.execute(command, credential: .apiKey("pk_test"))
            #expect(execution.pending?.state["coalesced"] == true)
        }
        #expect(transport.all.isEmpty)
        // Deliveries come back (in any order, repeatedly) until each has its outcome.
        var outcomes: [Int: String] = [:]
        let deadline = ContinuousClock.now + .seconds(30)
        while outcomes.count < commands.count, ContinuousClock.now < deadline {
            for (index, command) in commands.enumerated().reversed() where outcomes[index] == nil {
                do {
                    let execution = try await executor.execute(command, credential: .apiKey("pk_test"))
                    if execution.pending == nil {
                        #expect(execution.klaviyo.ids == ["J1"])
                        outcomes[index] = "\(execution.outcome)"
                    }
                } catch {
                    #expect(error.code == .rejected)
                    #expect(error.description.contains("Invalid email address"))
                    outcomes[index] = "rejected"
                }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(outcomes == [0: "succeeded", 1: "succeeded", 2: "succeeded", 3: "rejected", 4: "succeeded"])
        let posts = transport.all.filter { $0.method == "POST" }
        #expect(posts.count == 1)
        let body = try JSONValue.parse(posts[0].body ?? [])
        let rows = body["data"]?["attributes"]?["profiles"]?["data"]?.arrayValue ?? []
        #expect(rows.compactMap { $0["attributes"]?["email"]?.stringValue } == (0..<5).map { "u\($0)@example.com" })
        // The import errors were read once for the whole batch.
        #expect(transport.all.filter { $0.url.contains("/import-errors") }.count == 1)
    }

    /// The processor sends the coalescing peek with the idempotency lookup (one round trip): the pipelined answer
    /// is the one the visit would get (member, pending identifier, none), also for an upsert that cannot be
    /// coalesced (it waits behind a pending identifier's batch).
    @Test func thePeekSentWithTheLookupAnswersAsTheVisitWould() async throws {
        let redis = try Self.redis()
        defer { Task { await redis.shutdown() } }
        let idempotency = IdempotencyStore(redis: redis, ttl: .seconds(60))
        let transport = Self.klaviyo(failedRow: 9, email: "nobody@example.com")
        // The batch stays open (pending) for the whole test.
        let executor = Self.coalescingExecutor(redis: redis, window: .seconds(30), transport: transport)
        let account = "co-\(UUID().uuidString.lowercased())"
        func command(_ index: Int, email: String, profileID: String? = nil) throws -> CommandEnvelope {
            try Self.upsert(account: account, index: index, email: email, profileID: profileID)
        }
        func pipelinedPeek(_ command: CommandEnvelope) async throws -> [String] {
            let read = try #require(executor.admissionRead(for: command))
            let (lookup, reply) = try await idempotency.lookup(command, alongside: read)
            #expect(lookup == .fresh)
            let value = try #require(try reply?.get())
            return value.array?.map { $0.string ?? $0.int.map(String.init) ?? "" } ?? [value.string ?? ""]
        }
        // Joining (the visit peeks by itself and loads the script): a row of the open batch.
        let member = try command(0, email: "a@example.com")
        #expect(try await executor.execute(member, credential: .apiKey("pk_test")).pending?.state["coalesced"] == true)

        let asMember = try await pipelinedPeek(member)
        #expect(asMember.first == "member")
        #expect(asMember.count == 4)
        #expect(try await pipelinedPeek(command(1, email: "a@example.com")) == ["pending"])
        #expect(try await pipelinedPeek(command(2, email: "b@example.com")) == ["none"])
        // Not coalescable (by Klaviyo profile id), but its identifiers are read too: it waits behind a pending one.
        #expect(try await pipelinedPeek(command(3, email: "a@example.com", profileID: "01P")) == ["pending"])
        #expect(try await pipelinedPeek(command(4, email: "c@example.com", profileID: "01P")) == ["none"])
        // The member, handed its pipelined answer, is still the same row of the same batch.
        let again = try await executor.execute(member, credential: .apiKey("pk_test"), admissionReply: asMember)
        #expect(again.pending?.state["coalesced"] == true)
        #expect(transport.all.isEmpty)
    }

    /// Klaviyo with one bulk import job `jobID` of one row that completes without failures.
    static func klaviyoWithoutFailures(jobID: String) -> ScriptedTransport {
        ScriptedTransport { request in
            let submit = request.method == "POST"
            return ScriptedTransport.reply(
                submit ? 202 : 200,
                #"{"data":{"type":"profile-bulk-import-job","id":"\#(jobID)","attributes":{"#
                    + #""status":"\#(submit ? "queued" : "complete")","created_at":"2026-12-04T00:00:00+00:00","#
                    + #""total_count":1,"completed_count":1,"failed_count":0}}}"#)
        }
    }

    /// Delivers `command` again and again until it ends: its outcome (`rejected` for a row error) and job ids.
    static func drive(
        _ command: CommandEnvelope, _ executor: CommandExecutor
    ) async throws -> (outcome: String, ids: [String]) {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let execution: CommandExecution
            do {
                execution = try await executor.execute(command, credential: .apiKey("pk_test"))
            } catch {
                if error.code == .rejected { return ("rejected", []) }
                throw error
            }
            if execution.pending == nil { return ("\(execution.outcome)", execution.klaviyo.ids) }
            try await Task.sleep(for: .milliseconds(50))
        }
        return ("unfinished", [])
    }

    /// A batch id is never reused (the counter does not expire), and a batch starts from no keys: a batch numbered
    /// like an old one (the counter lost) neither reads the old one's row errors nor inherits its job, whether
    /// or not the old batch's hash outlived the counter (its errors do: they expire a day after it finished).
    @Test(arguments: [false, true])
    func aNewBatchNeverReadsAnOldBatchsKeys(oldBatchSurvives: Bool) async throws {
        let redis = try Self.redis()
        defer { Task { await redis.shutdown() } }
        let account = "co-\(UUID().uuidString.lowercased())"
        let prefix = RedisKeys.coalescing(account)
        let old = Self.coalescingExecutor(
            redis: redis, window: .milliseconds(10), transport: Self.klaviyo(failedRow: 0, email: "u0@example.com"))
        let first = try await Self.drive(try Self.upsert(account: account, index: 0, email: "u0@example.com"), old)
        #expect(first.outcome == "rejected")
        #expect(try await redis.send(["PTTL", prefix + "seq"]).int == -1)
        #expect(try await redis.exists(prefix + "batch:1:errors"))
        // A day later: the counter is gone (as it expired before), batch 1's row errors are still there.
        _ = try await redis.send(["DEL", prefix + "seq"])
        if !oldBatchSurvives { _ = try await redis.send(["DEL", prefix + "batch:1"]) }

        let new = Self.coalescingExecutor(
            redis: redis, window: .milliseconds(10), transport: Self.klaviyoWithoutFailures(jobID: "J2"))
        let second = try await Self.drive(try Self.upsert(account: account, index: 1, email: "u1@example.com"), new)
        #expect(second.outcome == "succeeded")
        #expect(second.ids == ["J2"])
    }

    // MARK: order after members go out singly

    /// A backlog the test sets: deep makes upserts coalesce, shallow sends them singly (threshold 5 s).
    final class Backlog: Sendable {
        let wait = Mutex<Duration>(.seconds(60))
        func set(_ value: Duration) { wait.withLock { $0 = value } }
    }

    /// Whether Klaviyo's `profile-import` is down (answers 503).
    final class Outage: Sendable {
        let down = Mutex(true)
        var isDown: Bool { down.withLock { $0 } }
        func end() { down.withLock { $0 = false } }
    }

    /// An executor with the default threshold (5 s) and `backlog`; batches open for 50 ms, members held
    /// `holdTTL` at most.
    static func executor(
        redis: RedisClient, transport: ScriptedTransport, backlog: Backlog, holdTTL: Duration = .seconds(7200)
    ) -> CommandExecutor {
        var settings = ProfileCoalescer.Settings()
        settings.window = .milliseconds(50)
        settings.pollInterval = .milliseconds(50)
        settings.holdTTL = holdTTL
        let coalescer = ProfileCoalescer(redis: redis, settings: settings, logger: Logger(label: "test")) { _, _ in
            backlog.wait.withLock { $0 }
        }
        let client = KlaviyoClient(
            baseURL: "https://a.klaviyo.com", transport: transport, userAgent: "test", logger: Logger(label: "test"))
        return CommandExecutor(klaviyo: client, coalescer: coalescer)
    }

    /// Command `<account>-<index>`: a `profile.upsert` of `profile`.
    static func upsert(account: String, index: Int, profile: JSONValue) throws -> CommandEnvelope {
        let body = JSONValue.object([
            "id": .string("\(account)-\(index)"), "type": "profile.upsert", "account_id": .string(account),
            "created_at": "2026-11-29T12:00:00Z", "payload": ["profile": profile],
        ]).jsonBytes()
        guard case .success(let command) = CommandDecoder().decode(body) else { throw CoalescingTestError("decode") }
        return command
    }

    /// Klaviyo whose bulk import jobs end so that every row goes out singly (`cancelled`, or `complete` with an
    /// import error that names no row), and whose `profile-import` answers 503 during `outage` (400, refusing the
    /// profile, when `refusing`).
    static func klaviyoSendingRowsSingly(
        cancelled: Bool, outage: Outage, refusing: Bool = false
    ) -> ScriptedTransport {
        ScriptedTransport { request in
            if request.url.hasSuffix("/api/profile-import") {
                if outage.isDown, refusing {
                    return ScriptedTransport.reply(
                        400, #"{"errors":[{"status":400,"code":"invalid","title":"Invalid input","detail":"bad"}]}"#)
                }
                if outage.isDown { return ScriptedTransport.reply(503) }
                return ScriptedTransport.reply(201, #"{"data":{"type":"profile","id":"P1","attributes":{}}}"#)
            }
            if request.method == "POST" {
                return jobAccepted(rows: 1)
            }
            if request.url.contains("/import-errors") {
                return importError(pointer: "/data", email: "nobody@example.com")
            }
            let status = cancelled ? "cancelled" : "complete"
            return ScriptedTransport.reply(
                200,
                #"{"data":{"type":"profile-bulk-import-job","id":"J1","attributes":{"status":"\#(status)","#
                    + #""created_at":"2026-12-04T00:00:00+00:00","total_count":1,"completed_count":0,"#
                    + #""failed_count":1}}}"#)
        }
    }

    /// The `first_name`s the requests carried, in the order Klaviyo received them (bulk rows and single calls).
    static func firstNames(_ transport: ScriptedTransport, singleOnly: Bool = false) -> [String] {
        transport.all.flatMap { request -> [String] in
            guard request.method == "POST", let body = try? JSONValue.parse(request.body ?? []) else { return [] }
            if request.url.hasSuffix("/api/profile-import") {
                return [body["data"]?["attributes"]?["first_name"]?.stringValue ?? ""]
            }
            if singleOnly { return [] }
            let rows = body["data"]?["attributes"]?["profiles"]?["data"]?.arrayValue ?? []
            return rows.map { $0["attributes"]?["first_name"]?.stringValue ?? "" }
        }
    }

    /// Delivers a member of a batch whose rows go out singly until its single call fails (Klaviyo is down).
    static func driveUntilTheSingleCallFails(
        _ command: CommandEnvelope, _ executor: CommandExecutor
    ) async throws -> KlaviyoError? {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            do {
                let execution = try await executor.execute(command, credential: .apiKey("pk_test"))
                if execution.pending == nil { return nil }
            } catch {
                return error
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// A member whose batch sent it singly (the job cancelled, or a row error not tied to its row) holds the
    /// batch's identifiers until it has its outcome: its single call failed and waits for its retry, the backlog
    /// drained meanwhile, and a newer upsert of the same email must not go out singly ahead of that retry (it
    /// waits in a later batch); it goes once the older member's outcome is recorded (its done marker).
    @Test(arguments: [true, false])
    func aNewerUpsertNeverOvertakesAnOlderMembersSingleCall(cancelled: Bool) async throws {
        let redis = try Self.redis()
        defer { Task { await redis.shutdown() } }
        let account = "co-\(UUID().uuidString.lowercased())"
        let outage = Outage()
        let backlog = Backlog()
        let transport = Self.klaviyoSendingRowsSingly(cancelled: cancelled, outage: outage)
        let executor = Self.executor(redis: redis, transport: transport, backlog: backlog)
        let older = try Self.upsert(
            account: account, index: 0, profile: ["email": "ada@example.com", "first_name": "Old"])
        let newer = try Self.upsert(
            account: account, index: 1, profile: ["email": "Ada@example.com", "first_name": "New"])

        // The older upsert joins a batch; its job sends it singly, and that call fails (a retry follows).
        #expect(try await executor.execute(older, credential: .apiKey("pk_test")).pending != nil)
        let failure = try await Self.driveUntilTheSingleCallFails(older, executor)
        #expect(failure?.status == 503)
        #expect(Self.firstNames(transport) == ["Old", "Old"])

        // The backlog drained and Klaviyo is back: the newer upsert waits in a batch of its own.
        backlog.set(.zero)
        outage.end()
        let parked = try await executor.execute(newer, credential: .apiKey("pk_test"))
        #expect(parked.pending?.state["coalesced"] == true)
        #expect(Self.firstNames(transport) == ["Old", "Old"])

        // The older member's retry goes out singly; until its outcome is recorded, the newer one still waits.
        let retried = try await executor.execute(older, credential: .apiKey("pk_test"))
        #expect(retried.outcome == .succeeded)
        #expect(retried.klaviyo.status == 201)
        #expect(try await executor.execute(newer, credential: .apiKey("pk_test")).pending != nil)
        try await IdempotencyStore(redis: redis, ttl: .seconds(60)).record(older, result: Array("{}".utf8))

        let outcome = try await Self.drive(newer, executor)
        #expect(outcome.outcome == "succeeded")
        let names = Self.firstNames(transport)
        #expect(names.firstIndex(of: "New").map { $0 > names.lastIndex(of: "Old") ?? names.count } == true, "\(names)")
        #expect(Self.firstNames(transport, singleOnly: true).last == "New")
    }

    /// A member whose single call Klaviyo refused ends in a dead letter: it has its outcome once that is recorded
    /// (`dead` in its done marker), and the newer upsert of its email waits until then.
    @Test func aDeadLetteredMembersMarkerEndsItsHold() async throws {
        let redis = try Self.redis()
        defer { Task { await redis.shutdown() } }
        let account = "co-\(UUID().uuidString.lowercased())"
        let outage = Outage()
        let backlog = Backlog()
        let transport = Self.klaviyoSendingRowsSingly(cancelled: true, outage: outage, refusing: true)
        let executor = Self.executor(redis: redis, transport: transport, backlog: backlog)
        let older = try Self.upsert(
            account: account, index: 0, profile: ["email": "ada@example.com", "first_name": "Old"])
        let newer = try Self.upsert(
            account: account, index: 1, profile: ["email": "ada@example.com", "first_name": "New"])
        #expect(try await executor.execute(older, credential: .apiKey("pk_test")).pending != nil)
        #expect(try await Self.driveUntilTheSingleCallFails(older, executor)?.code == .rejected)
        backlog.set(.zero)
        outage.end()

        #expect(try await executor.execute(newer, credential: .apiKey("pk_test")).pending != nil)
        #expect(try await executor.execute(newer, credential: .apiKey("pk_test")).pending != nil)
        try await IdempotencyStore(redis: redis, ttl: .seconds(60))
            .recordDeadLettered(older, code: .klaviyoRejected, flow: "")
        let outcome = try await Self.drive(newer, executor)
        #expect(outcome.outcome == "succeeded")
        #expect(Self.firstNames(transport, singleOnly: true) == ["Old", "New"])
    }

    /// The hold is bounded: a member that went out singly and never comes back (its message dead-lettered by the
    /// broker) holds its batch's identifiers for ``ProfileCoalescer/Settings/holdTTL`` after its last visit; the
    /// newer upsert then goes (in its batch), it does not wait forever.
    @Test func aMemberThatNeverComesBackHoldsItsIdentifiersOnlyForTheHoldTTL() async throws {
        let redis = try Self.redis()
        defer { Task { await redis.shutdown() } }
        let account = "co-\(UUID().uuidString.lowercased())"
        let outage = Outage()
        let backlog = Backlog()
        let transport = Self.klaviyoSendingRowsSingly(cancelled: true, outage: outage)
        let executor = Self.executor(redis: redis, transport: transport, backlog: backlog, holdTTL: .seconds(1))
        let older = try Self.upsert(
            account: account, index: 0, profile: ["email": "ada@example.com", "first_name": "Old"])
        let newer = try Self.upsert(
            account: account, index: 1, profile: ["email": "ada@example.com", "first_name": "New"])
        #expect(try await executor.execute(older, credential: .apiKey("pk_test")).pending != nil)
        #expect(try await Self.driveUntilTheSingleCallFails(older, executor)?.status == 503)
        backlog.set(.zero)
        outage.end()

        let started = ContinuousClock.now
        #expect(try await executor.execute(newer, credential: .apiKey("pk_test")).pending != nil)
        let outcome = try await Self.drive(newer, executor)
        #expect(outcome.outcome == "succeeded")
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(Self.firstNames(transport, singleOnly: true) == ["Old", "New"])
    }

    // MARK: a late answer

    /// Klaviyo whose first poll of the job hangs until the test lets it answer 404 (as if Klaviyo forgot the job);
    /// every later poll finds the job complete without failures.
    final class SlowlyForgettingKlaviyo: KlaviyoTransport {
        let scripted = ScriptedTransport { request in
            if request.url.hasSuffix("/api/profile-import") {
                return ScriptedTransport.reply(201, #"{"data":{"type":"profile","id":"P1","attributes":{}}}"#)
            }
            return ScriptedTransport.reply(
                request.method == "POST" ? 202 : 200,
                #"{"data":{"type":"profile-bulk-import-job","id":"J1","attributes":{"#
                    + #""status":"\#(request.method == "POST" ? "queued" : "complete")","#
                    + #""created_at":"2026-12-04T00:00:00+00:00","total_count":2,"completed_count":2,"#
                    + #""failed_count":0}}}"#)
        }
        let polls = Mutex(0)
        let (answer, lateAnswer) = AsyncStream<Void>.makeStream()

        func send(_ request: KlaviyoHTTPRequest) async throws(KlaviyoTransportFailure) -> KlaviyoHTTPResponse {
            if request.method == "GET", request.url.hasSuffix("/api/profile-bulk-import-jobs/J1") {
                if polls.withLock({ polls in
                    polls += 1
                    return polls == 1
                }) {
                    for await _ in answer { break }
                    _ = try await scripted.send(request)
                    return ScriptedTransport.reply(404, #"{"errors":[{"status":404,"code":"not_found"}]}"#)
                }
            }
            return try await scripted.send(request)
        }
    }

    /// A poll whose lock expired while Klaviyo was slow to answer is taken over; the poll that took over finds
    /// the job complete and the members end with it. When the slow poll's 404 arrives after that, the batch stays
    /// `complete`: no member goes out singly (no `profile-import`), none ends with anything but the job's outcome.
    @Test func aLateNotFoundLeavesACompleteBatchAlone() async throws {
        let redis = try Self.redis()
        defer { Task { await redis.shutdown() } }
        let account = "co-\(UUID().uuidString.lowercased())"
        let klaviyo = SlowlyForgettingKlaviyo()
        var settings = ProfileCoalescer.Settings()
        settings.threshold = .zero
        settings.window = .seconds(2)
        settings.pollInterval = .milliseconds(50)
        settings.lockTTL = .milliseconds(300)
        let coalescer = ProfileCoalescer(redis: redis, settings: settings, logger: Logger(label: "test")) { _, _ in
            .zero
        }
        let executor = CommandExecutor(
            klaviyo: KlaviyoClient(
                baseURL: "https://a.klaviyo.com", transport: klaviyo, userAgent: "test", logger: Logger(label: "test")),
            coalescer: coalescer)
        let slow = try Self.upsert(account: account, index: 0, email: "u0@example.com")
        let other = try Self.upsert(account: account, index: 1, email: "u1@example.com")
        let joined = [
            try await executor.execute(slow, credential: .apiKey("pk_test")),
            try await executor.execute(other, credential: .apiKey("pk_test")),
        ]
        #expect(joined.map { $0.pending?.state["batch"] } == [.string("1"), .string("1")])

        // The slow member submits the batch, then its poll waits for Klaviyo's answer.
        async let slowOutcome = Self.drive(slow, executor)
        try await eventually("the slow poll reached Klaviyo", timeout: .seconds(20)) {
            klaviyo.polls.withLock { $0 } == 1
        }
        // Its lock expires; the other member polls, finds the job complete, and ends with it.
        let otherOutcome = try await Self.drive(other, executor)
        #expect(otherOutcome.outcome == "succeeded")
        #expect(otherOutcome.ids == ["J1"])

        klaviyo.lateAnswer.finish()
        let late = try await slowOutcome
        #expect(late.outcome == "succeeded")
        #expect(late.ids == ["J1"])
        #expect(klaviyo.scripted.all.filter { $0.url.hasSuffix("/api/profile-import") }.isEmpty)
        #expect(
            try await redis.send(["HGET", RedisKeys.coalescing(account) + "batch:1", "state"]).string == "complete")
    }

    // MARK: adoption and `profile.bulk_import`

    /// Klaviyo that numbers the bulk import jobs it creates (`J1`, `J2`, …: one row each, created now) and lists
    /// them all.
    static func klaviyoListingItsJobs() -> ScriptedTransport {
        final class Created: Sendable {
            let ids = Mutex<[String]>([])
        }
        let created = Created()
        let now = Timestamp.now()
        let job: @Sendable (String) -> String = { id in
            #"{"type":"profile-bulk-import-job","id":"\#(id)","attributes":{"status":"queued","#
                + #""created_at":"\#(now)","total_count":1}}"#
        }
        return ScriptedTransport { request in
            if request.method == "POST" {
                let id = created.ids.withLock { ids in
                    ids.append("J\(ids.count + 1)")
                    return ids[ids.count - 1]
                }
                return ScriptedTransport.reply(202, #"{"data":\#(job(id))}"#)
            }
            let jobs = created.ids.withLock { $0 }.reversed().map(job).joined(separator: ",")
            return ScriptedTransport.reply(200, #"{"data":[\#(jobs)],"links":{}}"#)
        }
    }

    /// A `profile.bulk_import` command's job is recorded among the account's known jobs: a batch whose submitter
    /// vanished (`submitting`, lock expired, no job id) finds that job in the list, of its row count and created
    /// while its submit could have run, and still does not adopt it; it submits its own.
    @Test func adoptionNeverTakesAProfileBulkImportCommandsJob() async throws {
        let redis = try Self.redis()
        defer { Task { await redis.shutdown() } }
        let account = "co-\(UUID().uuidString.lowercased())"
        let transport = Self.klaviyoListingItsJobs()
        let executor = Self.coalescingExecutor(redis: redis, window: .seconds(30), transport: transport)
        let member = try Self.upsert(account: account, index: 0, email: "u0@example.com")
        #expect(try await executor.execute(member, credential: .apiKey("pk_test")).pending?.state["batch"] == "1")

        let bulkBody = JSONValue.object([
            "id": .string("\(account)-bulk"), "type": "profile.bulk_import", "account_id": .string(account),
            "created_at": "2026-11-29T12:00:00Z", "payload": ["profiles": [["email": "other@example.com"]]],
        ]).jsonBytes()
        guard case .success(let bulk) = CommandDecoder().decode(bulkBody) else { throw CoalescingTestError("decode") }
        let submitted = try await executor.execute(bulk, credential: .apiKey("pk_test"))
        #expect(submitted.pending?.state["job_id"] == "J1")

        // The batch's submitter vanished after recording `submitting` (its lock long expired).
        _ = try await redis.send([
            "HSET", RedisKeys.coalescing(account) + "batch:1", "state", "submitting", "submitting_at",
            String(Timestamp.nowMilliseconds()), "lock", "vanished", "lock_until", "0",
        ])
        let adopted = try await executor.execute(member, credential: .apiKey("pk_test"))
        #expect(adopted.pending?.state["job_id"] == "J2")
        #expect(transport.all.map(\.method) == ["POST", "GET", "POST"])
    }

    @Test func adoptionPicksTheOneJobCreatedWhileTheSubmitCouldRunWithTheBatchsRowCount() {
        let since = Int64(1_764_806_400_000)  // 2025-12-04T00:00:00Z
        func job(_ id: String, _ created: String, _ total: Int) -> JSONValue {
            [
                "type": "profile-bulk-import-job", "id": .string(id),
                "attributes": ["created_at": .string(created), "total_count": .int(Int64(total)), "status": "queued"],
            ]
        }
        func adopted(_ jobs: [JSONValue], excluding known: Set<String> = []) -> String? {
            ProfileCoalescer.adoptable(jobs, rows: 50, since: since, lockTTL: .seconds(60), excluding: known)?["id"]?
                .stringValue
        }
        let ours = job("ours", "2025-12-04T00:00:02+00:00", 50)
        let jobs = [
            job("old", "2025-12-03T23:50:00+00:00", 50), job("other-count", "2025-12-04T00:00:01+00:00", 49),
            job("recorded", "2025-12-04T00:00:01+00:00", 50), ours,
        ]
        #expect(adopted(jobs, excluding: ["recorded"]) == "ours")
        #expect(adopted(jobs, excluding: ["recorded", "ours"]) == nil)
        // Within skew of the window's ends: still ours.
        #expect(adopted([job("early", "2025-12-03T23:59:01+00:00", 50)]) == "early")
        #expect(adopted([job("late", "2025-12-04T00:01:59+00:00", 50)]) == "late")
        // Created long after the submit's lock expired: another submit's job, not this one's.
        #expect(adopted([job("later", "2025-12-04T00:10:00+00:00", 50)]) == nil)
        // Two jobs fit (two crashed batches of one size, or a `profile.bulk_import`): no guess.
        #expect(adopted([ours, job("twin", "2025-12-04T00:00:03+00:00", 50)]) == nil)
        // The same job listed twice is one job.
        #expect(adopted([ours, ours]) == "ours")
    }
}
