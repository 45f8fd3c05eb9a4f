import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Redis
import Relay
import RelayTestSupport
import Synchronization
import Testing

/// One row of the printed table: a probe, what must happen, what did.
struct ProbeRow: Sendable {
    var number: String
    var probe: String
    var expected: String
    var observed: String
    var pass: Bool
    var took: Duration = .zero
}

/// What a probe saw; any failed check fails its row.
struct Observations {
    var parts: [String] = []
    var pass = true

    mutating func check(_ holds: Bool, _ text: String) {
        parts.append(holds ? text : "✗ \(text)")
        if !holds { pass = false }
    }

    mutating func note(_ text: String) { parts.append(text) }
}

/// Healthy commands of other accounts (profile.upsert, event.track, one account.get each), published at a steady
/// pace while the probes run: every one must succeed, within Klaviyo's limits.
final class HealthyStream: Sendable {
    struct Sent: Sendable {
        var id: String
        var type: String
        var at: ContinuousClock.Instant
    }

    let sent = Locked<[Sent]>([])
    let stop = Atomic<Bool>(false)

    func start(_ stack: HostileStack, accounts: [String], every interval: Duration) -> Task<Void, any Error> {
        Task {
            var n = 0
            while !stop.load(ordering: .relaxed) {
                // One account.get per account, 2 s in: get_accounts allows 1 call a second, and connecting the
                // account (the test's own GET /api/accounts, which the relay's limiter cannot know of) was just now.
                if n == 40 {
                    for account in accounts {
                        let id = stack.id("healthy-get-\(account.suffix(2))")
                        sent.withLock { $0.append(Sent(id: id, type: "account.get", at: .now)) }
                        try await stack.publish(
                            stack.command(id, "account.get", account, [:]), routingKey: "account.get", id: id)
                    }
                }
                let account = accounts[n % accounts.count]
                let id = stack.id("healthy-\(n)")
                let type = n % 2 == 0 ? "profile.upsert" : "event.track"
                let email = JSONValue.string("\(stack.run)-\(n / 2)@example.com")
                let payload: JSONValue =
                    type == "profile.upsert"
                    ? ["profile": ["email": email, "first_name": "Healthy"]]
                    : ["metric": "Hostile Healthy", "profile": ["email": email], "unique_id": .string("\(id)-u")]
                sent.withLock { $0.append(Sent(id: id, type: type, at: .now)) }
                try await stack.publish(stack.command(id, type, account, payload), routingKey: type, id: id)
                n += 1
                try await Task.sleep(for: interval)
            }
        }
    }

    /// Publish-to-result latencies of the succeeded profile.upsert / event.track commands sent in a window.
    func latencies(
        from start: ContinuousClock.Instant, to end: ContinuousClock.Instant, in mailbox: Mailbox
    ) -> (latencies: [Duration], sent: Int, succeeded: Int) {
        let window = sent.value.filter { $0.at >= start && $0.at < end && $0.type != "account.get" }
        var byID: [String: ContinuousClock.Instant] = [:]
        for received in mailbox.all where !received.isDeadLetter && received.result?.outcome == .succeeded {
            if byID[received.commandID] == nil { byID[received.commandID] = received.at }
        }
        let latencies = window.compactMap { sent in byID[sent.id].map { $0 - sent.at } }
        return (latencies, window.count, latencies.count)
    }
}

/// The hostile-publisher suite (issue #9): each hole reproduced as a publisher, an operator or a browser would
/// trigger it, against the real broker, Redis, two consume processes and a rate-limited klaviyo-sim, while other
/// accounts' commands keep flowing. Prints a table of probes → outcome; any FAIL row fails the test.
@Suite(
    "Hostile publishers, operators and browsers", .enabled(if: HostileEnvironment.enabled), .serialized,
    .timeLimit(.minutes(5))
)
struct HostileTests {
    @Test func noTenantCanHurtAnother() async throws {
        let started = ContinuousClock.now
        let stack = try await HostileStack()
        let rows = Locked<[ProbeRow]>([])
        do {
            try await Scenario(stack: stack, rows: rows).run()
        } catch {
            rows.withLock {
                $0.append(
                    ProbeRow(
                        number: "~", probe: "harness", expected: "runs to the end", observed: "\(error)", pass: false))
            }
        }
        await stack.tearDown()
        let all = rows.value.sorted { $0.number < $1.number }
        var table = "| # | probe | expected | observed | time | outcome |\n|---|---|---|---|---|---|\n"
        for row in all {
            let observed = row.observed.replacingOccurrences(of: "|", with: "/").replacingOccurrences(
                of: "\n", with: " ")
            table +=
                "| \(row.number) | \(row.probe) | \(row.expected) | \(observed) | \(row.took.ms) "
                + "| \(row.pass ? "PASS" : "FAIL") |\n"
        }
        let passed = all.filter(\.pass).count
        print(
            "\nHOSTILE-PUBLISHER PROBES (prefix \(stack.prefix), \(all.count) rows, \(passed) PASS, "
                + "\(all.count - passed) FAIL, \((ContinuousClock.now - started).ms))\n\(table)")
        for row in all where !row.pass {
            Issue.record("FAIL \(row.number) \(row.probe): expected \(row.expected); observed \(row.observed)")
        }
        #expect(!all.isEmpty)
    }
}

/// The probes, in the order they run (the table keeps that order).
struct Scenario {
    let stack: HostileStack
    let rows: Locked<[ProbeRow]>

    /// Runs one probe into a row; an error thrown by the probe is a FAIL row, not the end of the suite.
    func probe(
        _ number: String, _ name: String, expected: String, _ body: (inout Observations) async throws -> Void
    ) async {
        var observations = Observations()
        let started = ContinuousClock.now
        do {
            try await body(&observations)
        } catch {
            observations.check(false, "error: \(error)")
        }
        let row = ProbeRow(
            number: number, probe: name, expected: expected, observed: observations.parts.joined(separator: "; "),
            pass: observations.pass, took: ContinuousClock.now - started)
        rows.withLock { $0.append(row) }
    }

    /// Waits for a dead letter of `id` (matching `where`) and returns its code, or nil on timeout.
    func deadLetterCode(
        _ id: String, timeout: Duration = .seconds(15), where matches: @Sendable (Received) -> Bool = { _ in true }
    ) async -> String? {
        let mailbox = stack.collected
        var found: Received?
        _ = await waitUntil(timeout: timeout) {
            found = mailbox.deadLetters(id).first(where: matches)
            return found != nil
        }
        return found?.code
    }

    func run() async throws {
        let stack = self.stack
        let healthyAccounts = [
            try await stack.connect("h0"), try await stack.connect("h1"), try await stack.connect("h2"),
            try await stack.connect("h3"),
        ]
        let orgA = try await stack.connect("org-a")
        let orgB = try await stack.connect("org-b")
        let orgR = try await stack.connect("org-r")
        let orgD = try await stack.connect("org-d")
        let retiredKeyID = "retired-\(stack.run)"
        let retired = try EncryptionKeyRing(
            specification: EncryptionKeyRing.generateSpecification(keyID: retiredKeyID))
        let orgC = try await stack.connect("org-c", keys: retired)
        let suiteMark = try await stack.simMark()
        try await stack.startConsumers()

        let stream = HealthyStream()
        let streamTask = stream.start(stack, accounts: healthyAccounts, every: .milliseconds(50))
        // The baseline is a time window of healthy traffic without the broken account.
        let baselineStart = ContinuousClock.now
        try await Task.sleep(for: .seconds(4))
        let baselineEnd = ContinuousClock.now

        await unreadableCredential(
            orgC: orgC, retiredKeyID: retiredKeyID, stream: stream, baseline: (baselineStart, baselineEnd))
        await crossTenantIDReuse(orgA: orgA, orgB: orgB)
        await unroutable()
        await forgedRelayHeaders(account: healthyAccounts[0])
        await replyToAbuse(orgR: orgR, healthy: healthyAccounts[1])
        await dotIDs(orgR: orgR)
        await metricLabels(accounts: healthyAccounts)
        // Last of the consumer probes: a crash here (recorded in row 9) must not blur the others.
        await absurdNumbers(orgD: orgD)
        try await stack.replaceDeadConsumers()
        await browserProbes()

        // The healthy stream: every command succeeded, within Klaviyo's limits, and the consumers are alive.
        stream.stop.store(true, ordering: .relaxed)
        _ = try? await streamTask.value
        try await stack.replaceDeadConsumers()
        await probe(
            "9", "healthy stream of other accounts (4 accounts, ~20/s) during all probes",
            expected: "every command succeeded; sim: 0 calls over its limits; no consumer died"
        ) { o in
            let sent = stream.sent.value
            let mailbox = stack.collected
            let settled = await waitUntil(timeout: .seconds(60), every: .milliseconds(200)) {
                sent.allSatisfy { mailbox.settled($0.id) }
            }
            let succeeded = sent.filter { s in mailbox.results(s.id).contains { $0.result?.outcome == .succeeded } }
            let dead = sent.filter { !mailbox.deadLetters($0.id).isEmpty }
            o.check(
                settled && succeeded.count == sent.count,
                "\(succeeded.count)/\(sent.count) succeeded, \(dead.count) dead-lettered"
                    + (dead.isEmpty ? "" : " (e.g. \(mailbox.deadLetters(dead[0].id).first?.code ?? ""))"))
            let all = stream.latencies(from: baselineStart, to: .now, in: mailbox)
            o.note("p95 latency \(percentile95(all.latencies).ms)")
            let requests = try await stack.simRequests(since: suiteMark)
            let throttled = requests.filter {
                $0["status"] == .int(429) && $0["account_id"]?.stringValue != orgD
            }
            let examples = throttled.prefix(3).map {
                "\($0["account_id"]?.stringValue?.replacingOccurrences(of: stack.prefix + "-", with: "") ?? "?") "
                    + "\($0["method"]?.stringValue ?? "") \($0["path"]?.stringValue ?? "")"
            }
            o.check(
                throttled.isEmpty,
                "\(requests.count) Klaviyo calls, \(throttled.count) answered 429 outside the faulted account"
                    + (examples.isEmpty ? "" : " (\(examples.joined(separator: ", ")))"))
            let crashes = stack.crashes.withLock { $0 }
            o.check(crashes.isEmpty, crashes.isEmpty ? "no consumer died" : "consumers died: \(crashes)")
            let health = await stack.consumersHealthy()
            o.check(health.healthy, health.detail)
        }
    }

    // MARK: 1. Cross-tenant id reuse

    func crossTenantIDReuse(orgA: String, orgB: String) async {
        let stack = self.stack
        await probe(
            "1a", "same id X: account.get for org_a, then any command X for org_b",
            expected: "org_b dead-lettered id_conflict; nothing of org_a's result to org_b; org_a again: same result, "
                + "no 2nd Klaviyo call"
        ) { o in
            let x = stack.id("order-123")
            let replyA = try await stack.replyQueue("a")
            let replyB = try await stack.replyQueue("b")
            let mark = try await stack.simMark()
            let mailbox = stack.collected
            try await stack.publish(
                stack.command(x, "account.get", orgA, [:]), routingKey: "account.get", id: x, replyTo: replyA.name)
            guard await waitUntil(timeout: .seconds(20), { !mailbox.results(x).isEmpty }) else {
                o.check(false, "no result for org_a's account.get in 20 s")
                return
            }
            try await stack.publish(
                stack.command(x, "account.get", orgB, [:]), routingKey: "account.get", id: x, replyTo: replyB.name)
            let code = await deadLetterCode(x) { $0.body?["account_id"]?.stringValue == orgB }
            o.check(code == "id_conflict", "org_b: dead letter \(code ?? "none")")
            // Barrier: org_a's repeat is published after org_b's command was handled.
            try await stack.publish(
                stack.command(x, "account.get", orgA, [:]), routingKey: "account.get", id: x, replyTo: replyA.name)
            let repeated = await waitUntil(timeout: .seconds(15)) { mailbox.results(x).count >= 2 }
            let results = mailbox.results(x).compactMap(\.result)
            o.check(
                results.allSatisfy { $0.accountID == orgA },
                "results exchange: \(results.count) result(s) for X, accounts \(Set(results.map(\.accountID)).sorted().map { $0 == orgA ? "org_a" : $0 })"
            )
            o.check(replyB.mailbox.all.isEmpty, "org_b's reply_to received \(replyB.mailbox.all.count)")
            o.check(
                repeated && results.count == 2 && results[0].klaviyo == results[1].klaviyo
                    && results[0].outcome == results[1].outcome,
                "org_a again: \(results.count == 2 ? "duplicate result, same as first" : "\(results.count) results")"
                    + ", reply_to got \(replyA.mailbox.all.count)")
            let callsA = try await stack.simRequests(since: mark, account: orgA).count
            let callsB = try await stack.simRequests(since: mark, account: orgB).count
            o.check(callsA == 1 && callsB == 0, "Klaviyo calls: org_a \(callsA), org_b \(callsB)")
        }
        await probe(
            "1b", "same id, same account, other body / other type",
            expected: "both dead-lettered id_conflict; no Klaviyo call"
        ) { o in
            let y = stack.id("order-124")
            let mailbox = stack.collected
            try await stack.publish(
                stack.command(
                    y, "profile.upsert", orgA, ["profile": ["email": .string("\(stack.run)-y1@example.com")]]),
                routingKey: "profile.upsert", id: y)
            guard await waitUntil(timeout: .seconds(20), { !mailbox.results(y).isEmpty }) else {
                o.check(false, "no result for the first command in 20 s")
                return
            }
            let mark = try await stack.simMark()
            try await stack.publish(
                stack.command(
                    y, "profile.upsert", orgA, ["profile": ["email": .string("\(stack.run)-y2@example.com")]]),
                routingKey: "profile.upsert", id: y)
            try await stack.publish(
                stack.command(
                    y, "event.track", orgA,
                    ["metric": "Hostile", "profile": ["email": .string("\(stack.run)-y1@example.com")]]),
                routingKey: "event.track", id: y)
            let otherBody = await deadLetterCode(y) { $0.body?["type"]?.stringValue == "profile.upsert" }
            let otherType = await deadLetterCode(y) { $0.body?["type"]?.stringValue == "event.track" }
            o.check(otherBody == "id_conflict", "other body: \(otherBody ?? "no dead letter")")
            o.check(otherType == "id_conflict", "other type: \(otherType ?? "no dead letter")")
            let results = mailbox.results(y).count
            let calls = try await stack.simRequests(since: mark, account: orgA).count
            o.check(
                results == 1 && calls == 0, "results for the id: \(results); Klaviyo calls after the first: \(calls)")
        }
    }

    // MARK: 2. Unreadable credential

    func unreadableCredential(
        orgC: String, retiredKeyID: String, stream: HealthyStream,
        baseline: (start: ContinuousClock.Instant, end: ContinuousClock.Instant)
    ) async {
        let stack = self.stack
        let floodStart = ContinuousClock.now
        await probe(
            "2a", "org_c sealed with a key the consumers lack: 60 commands",
            expected: "all dead-lettered credential_unreadable within seconds"
        ) { o in
            let mailbox = stack.collected
            var published: [String: ContinuousClock.Instant] = [:]
            for i in 0..<60 {
                let id = stack.id("c-\(i)")
                published[id] = .now
                try await stack.publish(
                    stack.command(
                        id, "profile.upsert", orgC, ["profile": ["email": .string("\(stack.run)-c\(i)@example.com")]]),
                    routingKey: "profile.upsert", id: id)
            }
            let ids = Array(published.keys)
            _ = await waitUntil(timeout: .seconds(30)) { ids.allSatisfy { !mailbox.deadLetters($0).isEmpty } }
            var codes: [String: Int] = [:]
            var slowest = Duration.zero
            for id in ids {
                guard let letter = mailbox.deadLetters(id).first else {
                    codes["none", default: 0] += 1
                    continue
                }
                codes[letter.code, default: 0] += 1
                slowest = max(slowest, letter.at - published[id]!)
            }
            let byCode = codes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            o.check(codes == ["credential_unreadable": 60], "dead letters: \(byCode)")
            o.check(slowest <= .seconds(10), "slowest \(slowest.ms)")
        }
        await probe(
            "2b", "healthy stream while org_c's commands fail (vs a baseline without them)",
            expected: "no big drop: p95 ≤ max(3 × baseline, baseline + 1 s), all succeeded"
        ) { o in
            // The flood window: the 6 s from the first of org_c's commands.
            let floodEnd = floodStart + .seconds(6)
            if ContinuousClock.now < floodEnd { try await Task.sleep(until: floodEnd) }
            let mailbox = stack.collected
            let windowIDs = stream.sent.value.filter { $0.at >= floodStart && $0.at < floodEnd }.map(\.id)
            _ = await waitUntil(timeout: .seconds(30)) { windowIDs.allSatisfy { mailbox.settled($0) } }
            let base = stream.latencies(from: baseline.start, to: baseline.end, in: mailbox)
            let flood = stream.latencies(from: floodStart, to: floodEnd, in: mailbox)
            let p95Base = percentile95(base.latencies)
            let p95Flood = percentile95(flood.latencies)
            o.check(
                base.sent > 0 && base.succeeded == base.sent,
                "baseline \(base.succeeded)/\(base.sent), p95 \(p95Base.ms)")
            o.check(
                flood.sent > 0 && flood.succeeded == flood.sent && p95Flood <= max(p95Base * 3, p95Base + .seconds(1)),
                "with org_c \(flood.succeeded)/\(flood.sent), p95 \(p95Flood.ms)")
        }
        await probe(
            "2c", "operator: connections keys",
            expected: "exit 0; lists the retired key id as not configured"
        ) { o in
            let listed = try await stack.cli(["connections", "keys"])
            let line = listed.output.split(separator: "\n").first { $0.contains(retiredKeyID) }.map(String.init)
            o.check(listed.status == 0, "exit \(listed.status)")
            o.check(
                line?.lowercased().contains("not configured") == true,
                "line: \(line ?? "none (\(gist(listed.output)))")")
        }
    }

    // MARK: 3. Unroutable

    func unroutable() async {
        let stack = self.stack
        await probe(
            "3", "routing keys contact.create and profiles.upsert (mandatory=false)",
            expected: "a dead letter unroutable for each"
        ) { o in
            for key in ["contact.create", "profiles.upsert"] {
                let id = stack.id("unroutable-\(key)")
                try await stack.publish(
                    stack.command(id, key, "\(stack.prefix)-nobody", ["profile": ["email": "x@example.com"]]),
                    routingKey: key, id: id)
            }
            for key in ["contact.create", "profiles.upsert"] {
                let code = await deadLetterCode(stack.id("unroutable-\(key)"), timeout: .seconds(10))
                o.check(code == "unroutable", "\(key): \(code ?? "no dead letter in 10 s")")
            }
        }
    }

    // MARK: 4. Absurd numbers

    func absurdNumbers(orgD: String) async {
        let stack = self.stack
        await probe(
            "4a", "Klaviyo answers 429 Retry-After: 100000000000000000 for org_d",
            expected: "no consumer dies (/healthz 200); the commands retried or dead-lettered"
        ) { o in
            try await stack.sim(
                .PUT, "/_sim/faults",
                ["throttle_rate": 1, "retry_after_seconds": .int(100_000_000_000_000_000), "account_id": .string(orgD)])
            let mark = try await stack.simMark()
            let upsert = stack.id("absurd-upsert")
            let get = stack.id("absurd-get")
            try await stack.publish(
                stack.command(
                    upsert, "profile.upsert", orgD, ["profile": ["email": .string("\(stack.run)-d@example.com")]]),
                routingKey: "profile.upsert", id: upsert)
            try await stack.publish(stack.command(get, "account.get", orgD, [:]), routingKey: "account.get", id: get)
            let answered = try await waitUntil(timeout: .seconds(15)) {
                try await stack.simRequests(since: mark, account: orgD).filter { $0["status"] == .int(429) }.count >= 2
            }
            o.check(answered, answered ? "both got the 429" : "the sim did not answer both with 429 in 15 s")
            let retryQueues = stack.topology.retryTiers.map { stack.topology.retryQueueName($0.name) }
            let mailbox = stack.collected
            var placement: [String] = []
            let placed = try await waitUntil(timeout: .seconds(15), every: .milliseconds(200)) {
                let dead = [upsert, get].filter { !mailbox.deadLetters($0).isEmpty }
                var parked = 0
                for queue in retryQueues { parked += Int(try await stack.amqp.messageCount(queue: queue).messages) }
                placement = [
                    "dead-lettered \(dead.count) (\(dead.compactMap { mailbox.deadLetters($0).first?.code }.joined(separator: ",")))",
                    "parked in retry tiers \(parked)",
                ]
                return dead.count + parked >= 2
            }
            o.check(placed, placement.joined(separator: ", "))
            let health = await stack.consumersHealthy()
            o.check(health.healthy, health.detail)
            try await stack.sim(.DELETE, "/_sim/faults")
        }
        await probe(
            "4b", "dead letter with x-death time UInt64.max (and counts Int64.max) put straight into the dead queue",
            expected: "dlq list and dlq show exit 0 and show it"
        ) { o in
            let id = stack.id("xdeath-max")
            let before = try await stack.amqp.messageCount(queue: stack.topology.deadQueue).messages
            let death: AMQPFieldValue = .table([
                "count": .int(Int64.max), "reason": .string("delivery_limit"),
                "queue": .string(stack.topology.queueName(.profiles)), "time": .timestamp(UInt64.max),
                "exchange": .string(stack.topology.commandsExchange),
                "routing-keys": .array([.string("profile.upsert")]),
            ])
            try await stack.publish(
                stack.command(id, "profile.upsert", orgD, ["profile": ["email": "xdeath@example.com"]]),
                routingKey: stack.topology.deadQueue, id: id,
                headers: ["x-death": .array([death]), "x-relay-attempts": .int(Int64.max)], exchange: "")
            _ = try await waitUntil(timeout: .seconds(10)) {
                try await stack.amqp.messageCount(queue: stack.topology.deadQueue).messages > before
            }
            for arguments in [["dlq", "list", "--json"], ["dlq", "show", id]] {
                let run = try await stack.cli(arguments)
                let shows = run.output.contains(id)
                o.check(
                    run.status == 0 && shows,
                    "\(arguments.prefix(2).joined(separator: " ")): exit \(run.status)"
                        + (run.status == 0 && shows ? ", shows it" : ": \(gist(run.output))"))
            }
        }
    }

    // MARK: 5. Forged relay headers

    func forgedRelayHeaders(account: String) async {
        let stack = self.stack
        await probe(
            "5a",
            "fresh command with x-relay-attempts 99, x-relay-first-failed-at 2000-01-01, "
                + "x-original-routing-key campaign.send",
            expected: "executed as fresh: succeeded, attempts 1, type and route profile.upsert"
        ) { o in
            let id = stack.id("forged")
            try await stack.publish(
                stack.command(
                    id, "profile.upsert", account, ["profile": ["email": .string("\(stack.run)-f@example.com")]]),
                routingKey: "profile.upsert", id: id,
                headers: [
                    DeadLetter.Header.attempts: .int(99),
                    DeadLetter.Header.firstFailedAt: .string("2000-01-01T00:00:00Z"),
                    DeadLetter.Header.originalRoutingKey: .string("campaign.send"),
                ])
            let mailbox = stack.collected
            _ = await waitUntil(timeout: .seconds(15)) { mailbox.settled(id) }
            if let received = mailbox.results(id).first, let result = received.result {
                o.check(result.outcome == .succeeded, "outcome \(result.outcome.rawValue)")
                o.check(result.attempts == 1, "attempts \(result.attempts)")
                o.check(
                    result.type == "profile.upsert" && received.delivery.routingKey == "profile.upsert.succeeded",
                    "type \(result.type), routing key \(received.delivery.routingKey)")
            } else {
                o.check(false, "no result; dead letter \(mailbox.deadLetters(id).first?.code ?? "none")")
            }
        }
    }

    /// 300 bogus routing keys (150 routed by a `profile.*` binding, 150 bound nowhere) and 300 forged
    /// `x-original-routing-key` values (150 on valid event.track, 150 on garbage), then the consumers' labels.
    func metricLabels(accounts: [String]) async {
        let stack = self.stack
        await probe(
            "5b", "300 distinct bogus routing keys + 300 distinct forged x-original-routing-key",
            expected: "each settled (bogus dead-lettered, unroutable ones unroutable, valid ones succeeded); "
                + "/metrics type labels ⊆ known types + unknown"
        ) { o in
            var routed: [String] = []
            var nowhere: [String] = []
            var forgedValid: [String] = []
            var forgedBad: [String] = []
            for i in 0..<150 {
                let a = stack.id("bogus-routed-\(i)")
                routed.append(a)
                try await stack.publish(
                    stack.command(a, "profile.bogus\(i)", accounts[i % accounts.count], [:]),
                    routingKey: "profile.bogus\(i)", id: a)
                let b = stack.id("bogus-nowhere-\(i)")
                nowhere.append(b)
                try await stack.publish(
                    stack.command(b, "bogus\(i).nowhere", accounts[i % accounts.count], [:]),
                    routingKey: "bogus\(i).nowhere", id: b)
                let c = stack.id("forged-valid-\(i)")
                forgedValid.append(c)
                try await stack.publish(
                    stack.command(
                        c, "event.track", accounts[i % accounts.count],
                        ["metric": "Hostile Forged", "profile": ["email": .string("\(stack.run)-fv\(i)@example.com")]]),
                    routingKey: "event.track", id: c,
                    headers: [DeadLetter.Header.originalRoutingKey: .string("forged.valid\(i)")])
                let d = stack.id("forged-bad-\(i)")
                forgedBad.append(d)
                try await stack.publish(
                    Array("not json \(i)".utf8), routingKey: "event.track", id: d,
                    headers: [DeadLetter.Header.originalRoutingKey: .string("forged.bad\(i)")])
            }
            let mailbox = stack.collected
            let all = routed + nowhere + forgedValid + forgedBad
            let settled = await waitUntil(timeout: .seconds(40), every: .milliseconds(200)) {
                all.allSatisfy { mailbox.settled($0) }
            }
            let missing = all.filter { !mailbox.settled($0) }.count
            o.check(settled, "settled \(all.count - missing)/\(all.count)")
            o.check(
                routed.allSatisfy { !mailbox.deadLetters($0).isEmpty },
                "routed bogus dead-lettered: \(routed.filter { !mailbox.deadLetters($0).isEmpty }.count)/150")
            let unroutable = nowhere.filter { mailbox.deadLetters($0).first?.code == "unroutable" }.count
            o.check(unroutable == 150, "unroutable: \(unroutable)/150")
            let succeeded = forgedValid.filter { mailbox.results($0).contains { $0.result?.outcome == .succeeded } }
            o.check(succeeded.count == 150, "forged valid succeeded: \(succeeded.count)/150")
            o.check(
                forgedBad.allSatisfy { !mailbox.deadLetters($0).isEmpty },
                "forged garbage dead-lettered: \(forgedBad.filter { !mailbox.deadLetters($0).isEmpty }.count)/150")
            // Counters move after the ack: poll until both consumers counted something unknown or the labels leak.
            let allowed = Set(CommandType.allCases.map(\.rawValue)).union(["unknown"])
            var labels: Set<String> = []
            var scraped = 0
            _ = try await waitUntil(timeout: .seconds(5), every: .milliseconds(250)) {
                (labels, scraped) = try await stack.metricTypeLabels()
                return !labels.subtracting(allowed).isEmpty || labels.contains("unknown")
            }
            let foreign = labels.subtracting(allowed)
            o.check(scraped == HostileStack.consumerCount, "scraped \(scraped) consumers")
            o.check(
                foreign.isEmpty,
                "\(labels.count) type label values, \(foreign.count) outside the known set"
                    + (foreign.isEmpty ? "" : " (e.g. \(foreign.sorted().prefix(3).joined(separator: ", ")))"))
        }
    }

    // MARK: 6. reply_to abuse

    func replyToAbuse(orgR: String, healthy: String) async {
        let stack = self.stack
        await probe(
            "6", "reply_to = the work queue / <prefix>.dead; reply_to = reply.<x>",
            expected: "reply_to_not_allowed before any Klaviyo call, nothing written to those queues; reply.<x> "
                + "gets its result"
        ) { o in
            let mark = try await stack.simMark()
            let targets = [stack.topology.queueName(.profiles), stack.topology.deadQueue]
            for (i, target) in targets.enumerated() {
                let id = stack.id("reply-abuse-\(i)")
                try await stack.publish(
                    stack.command(
                        id, "profile.upsert", orgR, ["profile": ["email": .string("\(stack.run)-r\(i)@example.com")]]),
                    routingKey: "profile.upsert", id: id, replyTo: target)
            }
            let reply = try await stack.replyQueue("ok")
            let ok = stack.id("reply-ok")
            try await stack.publish(
                stack.command(
                    ok, "profile.upsert", healthy, ["profile": ["email": .string("\(stack.run)-rok@example.com")]]),
                routingKey: "profile.upsert", id: ok, replyTo: reply.name)
            for (i, target) in targets.enumerated() {
                let code = await deadLetterCode(stack.id("reply-abuse-\(i)"))
                o.check(
                    code == "reply_to_not_allowed",
                    "reply_to \(target.replacingOccurrences(of: stack.prefix, with: "<prefix>")): \(code ?? "no dead letter")"
                )
            }
            let got = await waitUntil(timeout: .seconds(15)) { reply.mailbox.all.contains { $0.commandID == ok } }
            o.check(got, "reply.<x>: \(got ? "result received" : "nothing in 15 s")")
            let calls = try await stack.simRequests(since: mark, account: orgR).count
            o.check(calls == 0, "Klaviyo calls for the refused commands: \(calls)")
            // A result written into a work queue comes back as a malformed command; one written into the dead
            // queue makes it hold more than the dead-letter exchange delivered.
            let mailbox = stack.collected
            let resultShaped = mailbox.all.filter { $0.isDeadLetter && $0.body?["outcome"] != nil }.count
            o.check(resultShaped == 0, "results written into the work queue: \(resultShaped)")
            var depth: UInt32 = 0
            var viaExchange = 0
            let equal = try await waitUntil(timeout: .seconds(10), every: .milliseconds(200)) {
                depth = try await stack.amqp.messageCount(queue: stack.topology.deadQueue).messages
                viaExchange = mailbox.all.filter(\.isDeadLetter).count
                return Int(depth) == viaExchange
            }
            o.check(equal, "dead queue holds \(depth), dead-letter exchange delivered \(viaExchange)")
        }
    }

    // MARK: 7. Dot ids

    func dotIDs(orgR: String) async {
        let stack = self.stack
        await probe(
            "7", "profile.get with profile_id \".\" and \"..\"",
            expected: "dead-lettered schema_invalid; no Klaviyo call"
        ) { o in
            let mark = try await stack.simMark()
            for (i, value) in [".", ".."].enumerated() {
                let id = stack.id("dot-\(i)")
                try await stack.publish(
                    stack.command(id, "profile.get", orgR, ["profile_id": .string(value)]), routingKey: "profile.get",
                    id: id)
            }
            for (i, value) in [".", ".."].enumerated() {
                let code = await deadLetterCode(stack.id("dot-\(i)"))
                o.check(code == "schema_invalid", "\"\(value)\": \(code ?? "no dead letter")")
            }
            let calls = try await stack.simRequests(since: mark, account: orgR).count
            o.check(calls == 0, "Klaviyo calls: \(calls)")
        }
    }

    // MARK: 8. Browser probes

    func browserProbes() async {
        let stack = self.stack
        let serve: ServeProcess
        do {
            serve = try await ServeProcess.start(stack)
        } catch {
            rows.withLock {
                $0.append(
                    ProbeRow(number: "8", probe: "serve starts", expected: "ready", observed: "\(error)", pass: false))
            }
            return
        }
        await probe(
            "8a", "OAuth callback without the state cookie",
            expected: "refused, nothing connected; the same flow with the cookie connects"
        ) { o in
            let account = "\(stack.prefix)-web-a"
            let flow = try await serve.authorize(account: account)
            let refused = try await serve.get(flow.callback)
            let stored = try await CredentialStore(redis: stack.redis, keys: .development).load(accountID: account)
            o.check(
                refused.status >= 400 && stored == nil, "without cookie: \(refused.status), connected \(stored != nil)")
            let again = try await serve.authorize(account: account)
            let accepted = try await serve.get(again.callback, cookie: again.cookie)
            let connected = try await CredentialStore(redis: stack.redis, keys: .development).load(accountID: account)
            o.check(
                accepted.status < 400 && connected != nil,
                "with cookie: \(accepted.status), connected \(connected != nil)")
        }
        await probe(
            "8b", "callback error=<script>alert(1)</script>",
            expected: "not echoed (escaped or raw); security headers on the page"
        ) { o in
            let account = "\(stack.prefix)-web-b"
            let start = try await serve.get(serve.link(.oauthStart, account: account))
            let location = start.headers["Location"] ?? ""
            let state = URLComponents(string: location)?.queryItems?.first { $0.name == "state" }?.value ?? ""
            let cookie = serve.cookie(from: start)
            let callback =
                serve.base + "/oauth/klaviyo/callback?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
                + "&error_description=%3Cscript%3Ealert(2)%3C%2Fscript%3E&state=\(state)"
            let page = try await serve.get(callback, cookie: cookie)
            let body = page.bodyString
            o.check(
                !body.contains("alert("), "status \(page.status), \(body.contains("alert(") ? "echoed" : "not echoed")")
            o.check(
                page.headers["Content-Security-Policy"] != nil,
                "CSP \(page.headers["Content-Security-Policy"] != nil ? "present" : "missing")")
        }
        await probe(
            "8c", "signed link for /settings/klaviyo used on /oauth/klaviyo/start",
            expected: "refused there; accepted on /settings/klaviyo"
        ) { o in
            let account = "\(stack.prefix)-web-c"
            let settingsLink = serve.link(.settings, account: account)
            let misused = try await serve.get(
                settingsLink.replacingOccurrences(of: "/settings/klaviyo?", with: "/oauth/klaviyo/start?"))
            o.check(misused.status >= 400, "on /oauth/klaviyo/start: \(misused.status)")
            let proper = try await serve.get(settingsLink)
            o.check(proper.status == 200, "on /settings/klaviyo: \(proper.status)")
        }
        await probe(
            "8d", "settings page headers",
            expected: "Content-Security-Policy, Referrer-Policy: no-referrer, X-Content-Type-Options: nosniff"
        ) { o in
            let page = try await serve.get(serve.link(.settings, account: "\(stack.prefix)-web-d"))
            let csp = page.headers["Content-Security-Policy"]
            let referrer = page.headers["Referrer-Policy"]
            let sniff = page.headers["X-Content-Type-Options"]
            o.check(csp != nil, "CSP \(csp.map { String($0.prefix(40)) } ?? "missing")")
            o.check(referrer == "no-referrer", "Referrer-Policy \(referrer ?? "missing")")
            o.check(sniff == "nosniff", "X-Content-Type-Options \(sniff ?? "missing")")
        }
        await probe(
            "8e", "/metrics of serve",
            expected: "404 on the public port; 200 on RELAY_METRICS_PORT"
        ) { o in
            let onPublic = try await serve.get(serve.base + "/metrics")
            o.check(onPublic.status == 404, "public port: \(onPublic.status)")
            let onMetricsPort = try? await serve.get("http://127.0.0.1:\(serve.metricsPort)/metrics")
            o.check(
                onMetricsPort?.status == 200, "metrics port: \(onMetricsPort.map { String($0.status) } ?? "no answer")")
        }
        await probe(
            "4c", "Klaviyo's token answer says expires_in: 1e20 (OAuth connect through serve, then a command)",
            expected: "serve and the consumers stay up; connected; the command succeeds"
        ) { o in
            let account = "\(stack.prefix)-web-e"
            // Its own Klaviyo account: connecting calls GET /api/accounts, 1 call a second per Klaviyo account.
            let klaviyoAccount = "\(stack.prefix)-web-klaviyo-e"
            try await stack.sim(
                .POST, "/_sim/accounts",
                [
                    "account_id": .string(klaviyoAccount), "api_key": .string("pk_\(UUID().uuidString.lowercased())"),
                    "name": "Hostile Web E",
                ])
            try await stack.sim(.PUT, "/_sim/oauth/settings", ["advertised_expires_in": .double(1e20)])
            let flow = try await serve.authorize(account: account, klaviyoAccount: klaviyoAccount)
            let callback = try? await serve.get(flow.callback, cookie: flow.cookie)
            try await stack.sim(.PUT, "/_sim/oauth/settings", ["advertised_expires_in": .null])
            let alive = (try? await serve.get(serve.base + "/healthz"))?.status
            o.check(
                serve.child.isRunning && alive == 200,
                "serve \(serve.child.exitDescription), callback \(callback.map { String($0.status) } ?? "no answer"), "
                    + "/healthz \(alive.map(String.init) ?? "no answer")")
            let record = try? await CredentialStore(redis: stack.redis, keys: .development).load(accountID: account)
            o.check(
                record != nil, "connected \(record != nil), expires_at \(record?.expiresAt.map(String.init) ?? "–")")
            // profile.upsert, not account.get: connecting just called GET /api/accounts (1 call a second).
            let id = stack.id("huge-expiry")
            try await stack.publish(
                stack.command(
                    id, "profile.upsert", account, ["profile": ["email": .string("\(stack.run)-e@example.com")]]),
                routingKey: "profile.upsert", id: id)
            let mailbox = stack.collected
            _ = await waitUntil(timeout: .seconds(15)) { mailbox.settled(id) }
            let outcome =
                mailbox.results(id).first?.result?.outcome.rawValue ?? mailbox.deadLetters(id).first.map {
                    "dead letter \($0.code)"
                } ?? "nothing in 15 s"
            o.check(outcome == "succeeded", "profile.upsert: \(outcome)")
            let health = await stack.consumersHealthy()
            o.check(health.healthy, health.detail)
        }
        await serve.child.stop(reportingSlowExit: false)
    }
}

/// A `klaviyo-relay serve` with an OAuth app registered in klaviyo-sim, on its own HTTP and metrics ports.
struct ServeProcess {
    let stack: HostileStack
    let child: Child
    let port: Int
    let metricsPort: Int
    let linkSecret: String
    let klaviyoAccount: String

    var base: String { "http://127.0.0.1:\(port)" }
    var returnTo: String { base + "/healthz" }

    static func start(_ stack: HostileStack) async throws -> ServeProcess {
        let port = try freePort()
        let metricsPort = try freePort()
        let clientID = "hostile-\(stack.prefix)"
        let secret = "secret-\(UUID().uuidString.lowercased())"
        try await stack.sim(
            .POST, "/_sim/oauth/apps",
            [
                "client_id": .string(clientID), "client_secret": .string(secret),
                "redirect_uris": [.string("http://127.0.0.1:\(port)/oauth/klaviyo/callback")],
                "scopes": .array(OAuthConnector.defaultScopes.split(separator: " ").map { .string(String($0)) }),
            ])
        let klaviyoAccount = "\(stack.prefix)-web-klaviyo"
        try await stack.sim(
            .POST, "/_sim/accounts",
            [
                "account_id": .string(klaviyoAccount), "api_key": .string("pk_\(UUID().uuidString.lowercased())"),
                "name": "Hostile Web",
            ])
        let linkSecret = "link-secret-\(UUID().uuidString.lowercased())"
        let child = try Child.start(
            arguments: ["serve", "--dev"],
            variables: [
                "RELAY_QUEUE_PREFIX": stack.prefix, "RELAY_KLAVIYO_API_BASE_URL": HostileEnvironment.simURL,
                "RELAY_KLAVIYO_AUTHORIZE_URL": HostileEnvironment.simURL + "/oauth/authorize",
                "RELAY_KLAVIYO_CLIENT_ID": clientID, "RELAY_KLAVIYO_CLIENT_SECRET": secret,
                "RELAY_OAUTH_REDIRECT_URL": "http://127.0.0.1:\(port)/oauth/klaviyo/callback",
                "RELAY_AMQP_URL": HostileEnvironment.amqpURL, "RELAY_REDIS_URL": HostileEnvironment.redisURL,
                "RELAY_HTTP_PORT": String(port), "RELAY_METRICS_PORT": String(metricsPort),
                "RELAY_API_TOKEN": "api-token-\(UUID().uuidString.lowercased())", "RELAY_LINK_SECRET": linkSecret,
                "RELAY_RETURN_TO_ALLOWLIST": "http://127.0.0.1:\(port)/healthz", "RELAY_LOG_FORMAT": "json",
                "RELAY_LOG_LEVEL": "info",
            ])
        stack.children.withLock { $0.append(child) }
        let http = stack.http
        let ready = await waitUntil(timeout: .seconds(20)) {
            guard child.isRunning else { return true }
            return (try? await http.execute(HTTPRequest(url: "http://127.0.0.1:\(port)/readyz")))?.status == 200
        }
        guard ready, child.isRunning else {
            throw ProbeFailure("serve did not become ready (\(child.exitDescription)): \(child.output.suffix(400))")
        }
        return ServeProcess(
            stack: stack, child: child, port: port, metricsPort: metricsPort, linkSecret: linkSecret,
            klaviyoAccount: klaviyoAccount)
    }

    /// A signed link for one action, as the dashboard backend makes it.
    func link(_ action: SignedLink.Action, account: String) -> String {
        let signed = SignedLink.sign(
            action: action, accountID: account, returnTo: returnTo, expires: Timestamp.nowSeconds() + 600,
            secret: linkSecret)
        return base + signed.pathAndQuery
    }

    func get(_ url: String, cookie: String? = nil) async throws -> HTTPResponse {
        var headers = HTTPHeaders()
        if let cookie { headers.add(name: "Cookie", value: cookie) }
        return try await stack.http.execute(HTTPRequest(method: .GET, url: url, headers: headers))
    }

    /// `name=value` of every cookie a response sets.
    func cookie(from response: HTTPResponse) -> String? {
        let pairs = response.headers.values(for: "Set-Cookie").compactMap {
            $0.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return pairs.isEmpty ? nil : pairs.joined(separator: "; ")
    }

    /// start → the sim's consent (allow) → the callback URL, with the cookie the start set.
    func authorize(account: String, klaviyoAccount: String? = nil) async throws -> (callback: String, cookie: String?) {
        let start = try await get(link(.oauthStart, account: account))
        guard start.status == 302, let authorize = start.headers["Location"] else {
            throw ProbeFailure("start answered \(start.status)")
        }
        let consent = try await get(
            authorize + "&login_account=\(klaviyoAccount ?? self.klaviyoAccount)&decision=allow")
        guard consent.status == 302, let callback = consent.headers["Location"] else {
            throw ProbeFailure("consent answered \(consent.status)")
        }
        return (callback, cookie(from: start))
    }
}
