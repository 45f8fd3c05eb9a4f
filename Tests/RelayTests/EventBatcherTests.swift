import Klaviyo
import Logging
import Relay
import Synchronization
import Testing

/// `event.track` batching (docs/operations.md, "Batching"): the calls the executor makes through an ``EventBatcher``
/// against a scripted transport, and what each command gets back.
@Suite("Event batching")
struct EventBatcherTests {
    let decoder = CommandDecoder()
    let logger = Logger(label: "test")

    func command(_ id: String, account: String = "org_42", email: String? = nil) throws -> CommandEnvelope {
        let body = JSONValue.object([
            "id": .string(id), "type": "event.track", "account_id": .string(account),
            "created_at": "2026-11-29T12:00:00Z",
            "payload": [
                "metric": "Placed Order", "profile": ["email": .string(email ?? "\(id)@example.com")],
                "properties": ["command": .string(id)],
            ],
        ]).jsonBytes()
        switch decoder.decode(body) {
        case .success(let command): return command
        case .failure(let rejection): throw rejection
        }
    }

    func client(_ transport: ScriptedTransport) -> KlaviyoClient {
        KlaviyoClient(baseURL: "https://a.klaviyo.com", transport: transport, userAgent: "test", logger: logger)
    }

    /// Runs the commands concurrently; each one's execution or error, in command order.
    func run(
        _ commands: [CommandEnvelope], executor: CommandExecutor, credential: KlaviyoCredential = .apiKey("pk_test"),
        whileRunning: @Sendable () async throws -> Void = {}
    ) async throws -> [Result<CommandExecution, KlaviyoError>] {
        try await withThrowingTaskGroup(of: (Int, Result<CommandExecution, KlaviyoError>).self) { group in
            for (index, command) in commands.enumerated() {
                group.addTask {
                    do throws(KlaviyoError) {
                        return (index, .success(try await executor.execute(command, credential: credential)))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            try await whileRunning()
            var results = [Result<CommandExecution, KlaviyoError>?](repeating: nil, count: commands.count)
            for try await (index, result) in group { results[index] = result }
            return results.map { $0! }
        }
    }

    /// Waits (bounded) until `condition` holds.
    func eventually(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting for \(what)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// The unique ids of the events in a bulk request body, in order.
    static func bulkUniqueIDs(_ request: KlaviyoHTTPRequest) throws -> [String] {
        let body = try JSONValue.parse(try #require(request.body))
        let groups = try #require(body["data"]?["attributes"]?["events-bulk-create"]?["data"]?.arrayValue)
        return groups.flatMap { group in
            (group["attributes"]?["events"]?["data"]?.arrayValue ?? []).compactMap {
                $0["attributes"]?["unique_id"]?.stringValue
            }
        }
    }

    static func isBulk(_ request: KlaviyoHTTPRequest) -> Bool {
        request.url.hasSuffix("/api/event-bulk-create-jobs")
    }

    static func isSingle(_ request: KlaviyoHTTPRequest) -> Bool {
        request.url.hasSuffix("/api/events")
    }

    @Test func concurrentSubmittersShareOneBulkCallAndEachGetsItsResult() async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let batcher = EventBatcher(window: .seconds(60), logger: logger)
        let executor = CommandExecutor(klaviyo: client(transport), batcher: batcher)
        let commands = try (0..<40).map { try command("cmd-\($0)") }
        let results = try await run(commands, executor: executor) {
            try await eventually("40 pending events") { batcher.pendingEvents == 40 }
            #expect(transport.all.isEmpty)
            batcher.flushAll()
        }
        #expect(transport.all.count == 1)
        let request = try #require(transport.all.first)
        #expect(Self.isBulk(request))
        #expect(Set(try Self.bulkUniqueIDs(request)) == Set((0..<40).map { "relay-cmd-\($0)" }))
        #expect(try Self.bulkUniqueIDs(request).count == 40)
        for (index, result) in results.enumerated() {
            let execution = try result.get()
            #expect(execution.outcome == .succeeded)
            #expect(execution.klaviyo.status == 202)
            #expect(execution.klaviyo.data?["batched"] == 40)
            #expect(execution.klaviyo.data?["unique_id"] == .string("relay-cmd-\(index)"))
        }
        #expect(batcher.pendingEvents == 0)
    }

    @Test func theWindowSendsABatchByItself() async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let batcher = EventBatcher(window: .milliseconds(300), logger: logger)
        let executor = CommandExecutor(klaviyo: client(transport), batcher: batcher)
        let results = try await run([try command("cmd-a"), try command("cmd-b")], executor: executor)
        #expect(transport.all.count == 1)
        #expect(Set(try Self.bulkUniqueIDs(try #require(transport.all.first))) == ["relay-cmd-a", "relay-cmd-b"])
        for result in results { #expect(try result.get().klaviyo.data?["batched"] == 2) }
    }

    @Test func aLoneEventIsSentWithCreateEventExactlyAsWithoutBatching() async throws {
        let batchedTransport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let plainTransport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let batcher = EventBatcher(window: .milliseconds(20), logger: logger)
        let command = try command("cmd-alone")
        let batched = try await CommandExecutor(klaviyo: client(batchedTransport), batcher: batcher)
            .execute(command, credential: .apiKey("pk_test"))
        let plain = try await CommandExecutor(klaviyo: client(plainTransport)).execute(
            command, credential: .apiKey("pk_test"))
        #expect(batchedTransport.all.count == 1)
        let request = try #require(batchedTransport.all.first)
        let reference = try #require(plainTransport.all.first)
        #expect(Self.isSingle(request))
        #expect(request.method == reference.method && request.url == reference.url)
        #expect(request.body == reference.body)
        #expect(batched == plain)
        #expect(batched.klaviyo.data?["batched"] == nil)
    }

    /// A batch that is not full waits until the key's last call is `pace` old, gathering what arrives meanwhile:
    /// B's window ends 10 ms after it, but A's call went out just before, so B waits and C (100 ms later)
    /// shares its call. Without pace B and C would each go alone, 10 ms after they arrived. The pace is long
    /// (5 s) so that a loaded machine (the whole suite runs in parallel) cannot stretch A-to-C past it: at 2 s a
    /// slow full run once took longer, and B and C went alone.
    @Test func batchesThatAreNotFullAreSpacedByThePace() async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let pace = Duration.seconds(5)
        let batcher = EventBatcher(window: .milliseconds(10), pace: pace, logger: logger)
        let executor = CommandExecutor(klaviyo: client(transport), batcher: batcher)
        // A's call goes out (the pace counts from then) after this instant, however slowly it returns.
        let beforeA = ContinuousClock.now
        _ = try await executor.execute(try command("cmd-a"), credential: .apiKey("pk_test"))
        #expect(transport.all.count == 1 && transport.all.first.map(Self.isSingle) == true)
        let results = try await withThrowingTaskGroup(of: CommandExecution.self) { group in
            group.addTask { try await executor.execute(try command("cmd-b"), credential: .apiKey("pk_test")) }
            try await eventually("B pending") { batcher.pendingEvents == 1 }
            try await Task.sleep(for: .milliseconds(100))  // C arrives later than B's window, within the pace
            group.addTask { try await executor.execute(try command("cmd-c"), credential: .apiKey("pk_test")) }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(ContinuousClock.now - beforeA >= pace)
        let requests = transport.all
        #expect(requests.count == 2)
        let bulk = try #require(requests.first(where: Self.isBulk))
        #expect(Set(try Self.bulkUniqueIDs(bulk)) == ["relay-cmd-b", "relay-cmd-c"])
        #expect(results.allSatisfy { $0.klaviyo.data?["batched"] == 2 })
    }

    /// The default pace is `bulk_create_events`' steady interval (150/min: 400 ms), longer for a smaller share.
    @Test func defaultPaceFollowsTheSteadyLimit() {
        #expect(EventBatcher.defaultPace(share: 1) == .milliseconds(400))
        #expect(EventBatcher.defaultPace(share: 0.5) == .milliseconds(800))
        #expect(EventBatcher(window: .milliseconds(25), pace: .zero, logger: logger).pace == nil)
    }

    @Test func moreThanAThousandEventsGoInCallsOfAtMostAThousand() async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let batcher = EventBatcher(window: .seconds(60), logger: logger)
        let executor = CommandExecutor(klaviyo: client(transport), batcher: batcher)
        let commands = try (0..<2100).map { try command("cmd-\($0)", email: "p\($0 % 50)@example.com") }
        let results = try await run(commands, executor: executor) {
            // Two full batches go at once; the last 100 wait for their window (here: the explicit flush).
            try await eventually("two full bulk calls and 100 pending") {
                transport.all.count == 2 && batcher.pendingEvents == 100
            }
            batcher.flushAll()
        }
        let requests = transport.all
        #expect(requests.count == 3)
        #expect(requests.allSatisfy(Self.isBulk))
        let sizes = try requests.map { try Self.bulkUniqueIDs($0).count }
        #expect(sizes.sorted() == [100, 1000, 1000])
        let all = try requests.flatMap(Self.bulkUniqueIDs)
        #expect(all.count == 2100 && Set(all).count == 2100)
        #expect(results.allSatisfy { (try? $0.get().outcome) == .succeeded })
    }

    @Test func aRetryableBulkFailureReachesEverySubmitter() async throws {
        let transport = ScriptedTransport { _ in
            ScriptedTransport.reply(503, #"{"errors":[{"status":503,"code":"unavailable","detail":"down"}]}"#)
        }
        let batcher = EventBatcher(window: .seconds(60), maxEvents: 5, logger: logger)
        let executor = CommandExecutor(klaviyo: client(transport), batcher: batcher)
        let results = try await run(try (0..<5).map { try command("cmd-\($0)") }, executor: executor)
        #expect(transport.all.count == 1)
        #expect(transport.all.allSatisfy(Self.isBulk))
        for result in results {
            guard case .failure(let error) = result else {
                Issue.record("expected a failure, got \(result)")
                continue
            }
            #expect(error.status == 503)
            #expect(error.isRetriable)
        }
    }

    @Test func aRejectedBulkCallFallsBackToOneCallPerEventAndOnlyTheBadOneFails() async throws {
        let transport = ScriptedTransport { request in
            if request.url.hasSuffix("/api/event-bulk-create-jobs") {
                return ScriptedTransport.reply(
                    400, #"{"errors":[{"status":400,"code":"invalid","detail":"bad event"}]}"#)
            }
            let body = (try? JSONValue.parse(request.body ?? [])) ?? .null
            if body["data"]?["attributes"]?["unique_id"] == "relay-cmd-bad" {
                return ScriptedTransport.reply(
                    400, #"{"errors":[{"status":400,"code":"invalid","detail":"bad event"}]}"#)
            }
            return ScriptedTransport.reply(202)
        }
        let batcher = EventBatcher(window: .seconds(60), maxEvents: 5, logger: logger)
        let executor = CommandExecutor(klaviyo: client(transport), batcher: batcher)
        let ids = ["cmd-0", "cmd-1", "cmd-bad", "cmd-3", "cmd-4"]
        let results = try await run(try ids.map { try command($0) }, executor: executor)
        let requests = transport.all
        #expect(requests.filter(Self.isBulk).count == 1)
        let singles = requests.filter(Self.isSingle)
        #expect(singles.count == 5)
        let singleIDs = try singles.map {
            try JSONValue.parse(try #require($0.body))["data"]?["attributes"]?["unique_id"]?.stringValue ?? ""
        }
        #expect(Set(singleIDs) == Set(ids.map { "relay-\($0)" }))
        for (id, result) in zip(ids, results) {
            switch result {
            case .success(let execution):
                #expect(id != "cmd-bad")
                #expect(execution.klaviyo.status == 202)
                #expect(execution.klaviyo.data?["batched"] == nil)
            case .failure(let error):
                #expect(id == "cmd-bad")
                #expect(error.code == .rejected)
                #expect(!error.isRetriable)
            }
        }
    }

    /// The limiter holds back the bulk call beyond the batch's admission wait: nothing is sent, and every
    /// submitter gets the hold-back (each command is parked and comes back to a later batch) rather than
    /// turning a backlog into a flood of single calls.
    @Test func aHeldBackBulkCallHoldsEveryEventBack() async throws {
        struct BulkRefusingGate: KlaviyoCallGate {
            func admit(operationID: String, credential: KlaviyoCredential) async throws(KlaviyoError) {
                if operationID == "bulk_create_events" {
                    throw KlaviyoError(
                        code: .heldBack, operationID: operationID, message: "held back", retryAfter: .seconds(5),
                        requestMayHaveBeenSent: false)
                }
            }
        }
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let batcher = EventBatcher(window: .seconds(60), maxEvents: 3, logger: logger)
        let executor = CommandExecutor(klaviyo: client(transport).gated(by: BulkRefusingGate()), batcher: batcher)
        let results = try await run(try (0..<3).map { try command("cmd-\($0)") }, executor: executor)
        #expect(transport.all.isEmpty)
        #expect(results.count == 3)
        for result in results {
            guard case .failure(let error) = result else {
                Issue.record("a held-back batch's event succeeded: \(result)")
                continue
            }
            #expect(error.code == .heldBack)
            #expect(error.retryAfter == .seconds(5))
        }
    }

    @Test func withoutABatcherEveryEventIsSentAlone() async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let executor = CommandExecutor(klaviyo: client(transport))
        let results = try await run(try (0..<10).map { try command("cmd-\($0)") }, executor: executor)
        #expect(transport.all.count == 10)
        #expect(transport.all.allSatisfy(Self.isSingle))
        for result in results { #expect(try result.get().klaviyo.data?["batched"] == nil) }
    }

    @Test func accountsAndCredentialsNeverShareABatch() async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let batcher = EventBatcher(window: .seconds(60), logger: logger)
        let executor = CommandExecutor(klaviyo: client(transport), batcher: batcher)
        let a = try (0..<3).map { try command("a-\($0)", account: "org_a") }
        let b = try (0..<3).map { try command("b-\($0)", account: "org_b") }
        let c = try (0..<2).map { try command("c-\($0)", account: "org_a") }
        async let first = run(a + b, executor: executor)
        async let second = run(c, executor: executor, credential: .apiKey("pk_other"))
        try await eventually("8 pending events") { batcher.pendingEvents == 8 }
        batcher.flushAll()
        _ = try await (first, second)
        let batches = try transport.all.map { Set(try Self.bulkUniqueIDs($0)) }
        #expect(batches.count == 3)
        #expect(
            Set(batches) == [
                ["relay-a-0", "relay-a-1", "relay-a-2"], ["relay-b-0", "relay-b-1", "relay-b-2"],
                ["relay-c-0", "relay-c-1"],
            ])
        // The two events of c are submitted concurrently: either may come first in their batch.
        let keyOfC = transport.all.first { (try? Self.bulkUniqueIDs($0))?.contains("relay-c-0") == true }?.headers
            .first { $0.name == "Authorization" }?.value
        #expect(keyOfC == "Klaviyo-API-Key pk_other")
    }

    @Test func cancellingOneSubmitterDoesNotCancelTheSharedCall() async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.reply(202) }
        let batcher = EventBatcher(window: .seconds(60), logger: logger)
        let executor = CommandExecutor(klaviyo: client(transport), batcher: batcher)
        let cancelled = try command("cmd-cancelled")
        let other = try command("cmd-other")
        let first = Task { try await executor.execute(cancelled, credential: .apiKey("pk_test")) }
        let second = Task { try await executor.execute(other, credential: .apiKey("pk_test")) }
        try await eventually("2 pending events") { batcher.pendingEvents == 2 }
        first.cancel()
        batcher.flushAll()
        #expect(try await second.value.klaviyo.data?["batched"] == 2)
        // The cancelled submitter still learns what happened to its event (it was sent).
        #expect(try await first.value.klaviyo.data?["batched"] == 2)
        #expect(transport.all.count == 1)
    }

    @Test func batchWindowConfiguration() throws {
        #expect(try RelayConfiguration(environment: [:], development: true).batchWindow == .milliseconds(25))
        #expect(
            try RelayConfiguration(environment: ["RELAY_BATCH_WINDOW": "0"], development: true).batchWindow == .zero)
        #expect(
            try RelayConfiguration(environment: ["RELAY_BATCH_WINDOW": "1s"], development: true).batchWindow
                == .seconds(1))
        for bad in ["2s", "soon", "-5ms"] {
            let refused = #expect(throws: RelayError.self) {
                _ = try RelayConfiguration(environment: ["RELAY_BATCH_WINDOW": bad], development: true)
            }
            #expect(refused?.code == .invalidConfiguration)
        }
    }
}
