import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Relay
import Synchronization

/// Runs one benchmark scenario: fresh topology under its own prefix, consumers (child processes, or the
/// in-process broker-only echo for the baseline), N published commands, all results collected.
struct BenchHarness: Sendable {
    let runtime: BenchRuntime
    /// The `klaviyo-relay` binary the consumers run.
    let relayBinary: String
    let simURL: String
    let commands: Int
    let consumers: Int
    let timeout: Duration
    let dev: Bool
    /// Accounts the commands are spread over (round-robin).
    let accounts: Int
    /// Server processes whose CPU each scenario reads (name, pid): the broker's per-command work is part of the
    /// relay's cost (issue #8: under 2x the broker-only reference's).
    var servers: [(name: String, pid: Int32)] = []

    func run(_ scenario: BenchScenario) async throws -> BenchMeasurement {
        // A paced run lasts about 20 s whatever --commands says.
        let commands = scenario.rate.map { min(self.commands, $0 * 20) } ?? self.commands
        let suffix = String(UUID().uuidString.lowercased().prefix(8))
        let topology = RelayTopology(prefix: "bench-\(suffix)")
        let amqp = runtime.amqp
        try await amqp.declare(topology.amqpTopology)
        let collector = "\(topology.prefix).collector"
        var collectorTopology = AMQPTopology()
        collectorTopology.queues = [.init(name: collector, durable: false, exclusive: true, autoDelete: true)]
        collectorTopology.bindings = [
            .init(queue: collector, exchange: topology.resultsExchange, routingKey: "#"),
            .init(queue: collector, exchange: topology.deadExchange, routingKey: "#"),
        ]
        try await amqp.declare(collectorTopology)
        // Commands go round-robin to `accounts` accounts, so Klaviyo's per-account limits (which the relay's
        // limiter enforces in the rate-limited scenario) do not bind: the scenarios measure the relay's cost.
        let accountIDs = (0..<max(1, accounts)).map { "bench-\(suffix)-a\($0)" }
        var children: [Process] = []
        var echo: Task<Void, any Error>?
        defer {
            for child in children where child.isRunning { child.terminate() }
        }
        switch scenario.kind {
        case .relay:
            for (index, accountID) in accountIDs.enumerated() {
                let apiKey = "pk_bench\(suffix)a\(index)"
                try await simAdmin(
                    "POST", "/_sim/accounts",
                    ["account_id": .string(accountID), "api_key": .string(apiKey), "name": "Bench Store"])
                try await runtime.credentialStore.saveAPIKey(
                    accountID: accountID, apiKey: apiKey, klaviyoAccountID: "BENCH\(index)",
                    klaviyoAccountName: "Bench Store")
            }
            try await simAdmin("PUT", "/_sim/faults", ["latency_ms": .int(Int64(scenario.latencyMS))])
            try? await simAdmin("PUT", "/_sim/settings", ["rate_limits": false])
            for _ in 0..<consumers {
                children.append(
                    try spawnConsumer(
                        prefix: topology.prefix, concurrency: scenario.concurrency, rateLimit: scenario.rateLimit))
            }
            let queue = topology.queueName(.profiles)
            let waitStart = ContinuousClock.now
            while try await amqp.messageCount(queue: queue).consumers < consumers {
                guard ContinuousClock.now - waitStart < .seconds(60), children.allSatisfy(\.isRunning) else {
                    throw BenchError("consumers did not start (check RELAY_* settings)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        case .brokerBaseline:
            echo = Task { try await runEcho(topology: topology) }
        }
        let cpuBefore = children.map { ProcessStats.cpuSeconds(pid: $0.processIdentifier) ?? 0 }.reduce(0, +)
        let serversBefore = servers.map { ProcessStats.cpuSeconds(pid: $0.pid) ?? 0 }
        let benchBefore = ProcessStats.cpuSeconds(pid: getpid())

        let sent = Mutex<[String: ContinuousClock.Instant]>([:])
        let results = amqp.consume(queue: collector, prefetch: 1000)
        let started = ContinuousClock.now
        let publisher = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var inFlight = 0
                for index in 0..<commands {
                    let id = "bench-\(suffix)-\(index)"
                    let body = BenchReport.command(
                        id: id, accountID: accountIDs[index % accountIDs.count], index: index)
                    var properties = AMQPProperties()
                    properties.contentType = "application/json"
                    properties.persistent = true
                    properties.messageID = id
                    if let rate = scenario.rate {
                        // Paced: command i leaves at start + i/rate.
                        try await Task.sleep(
                            until: started + .seconds(Double(index) / Double(rate)), clock: .continuous)
                    }
                    if inFlight >= 512 {
                        try await group.next()
                        inFlight -= 1
                    }
                    sent.withLock { $0[id] = ContinuousClock.now }
                    group.addTask {
                        try await amqp.publish(
                            AMQPMessage(
                                exchange: topology.commandsExchange, routingKey: "profile.upsert", body: body,
                                properties: properties))
                    }
                    inFlight += 1
                }
                try await group.waitForAll()
            }
        }
        var latencies: [Double] = []
        latencies.reserveCapacity(commands)
        var succeeded = 0
        var deadLettered = 0
        var last = started
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            await results.cancel()
        }
        for try await delivery in results {
            let now = ContinuousClock.now
            try await amqp.ack(delivery)
            let id: String?
            if delivery.properties.headers[DeadLetter.Header.errorCode] != nil {
                deadLettered += 1
                id = delivery.properties.headers[DeadLetter.Header.commandID]?.stringValue
            } else {
                succeeded += 1
                id = delivery.properties.messageID
            }
            if let id, let sentAt = sent.withLock({ $0[id] }) {
                latencies.append(
                    Double((now - sentAt).components.attoseconds) / 1e15 + Double((now - sentAt).components.seconds)
                        * 1000)
            }
            last = now
            if succeeded + deadLettered >= commands { break }
        }
        watchdog.cancel()
        try await publisher.value
        echo?.cancel()
        _ = await echo?.result
        let elapsed = last - started
        let cpuAfter = children.map { ProcessStats.cpuSeconds(pid: $0.processIdentifier) ?? 0 }.reduce(0, +)
        let serverCPU = zip(servers, serversBefore).map { server, before in
            (name: server.name, seconds: (ProcessStats.cpuSeconds(pid: server.pid) ?? before) - before)
        }
        let benchCPU = benchBefore.flatMap { before in ProcessStats.cpuSeconds(pid: getpid()).map { $0 - before } }
        let rss = children.compactMap { ProcessStats.peakRSSMB(pid: $0.processIdentifier) }.max()
        for child in children {
            child.terminate()
            child.waitUntilExit()
        }
        children.removeAll()
        await cleanUp(topology: topology, accountIDs: accountIDs)
        if scenario.kind == .relay { try? await simAdmin("DELETE", "/_sim/faults", nil) }
        return BenchMeasurement(
            scenario: scenario, consumers: scenario.kind == .relay ? consumers : 0, commands: commands,
            succeeded: succeeded, deadLettered: deadLettered,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            latenciesMS: latencies, cpuSeconds: scenario.kind == .relay ? cpuAfter - cpuBefore : nil, peakRSSMB: rss,
            serverCPUSeconds: serverCPU, benchCPUSeconds: benchCPU)
    }

    /// The broker-only baseline: consume, publish a tiny result with confirm, ack. No Redis, no HTTP.
    func runEcho(topology: RelayTopology) async throws {
        let amqp = runtime.amqp
        let consumer = amqp.consume(queue: topology.queueName(.profiles), prefetch: 256)
        try await withThrowingDiscardingTaskGroup { group in
            for try await delivery in consumer {
                group.addTask {
                    var properties = AMQPProperties()
                    properties.contentType = "application/json"
                    properties.persistent = true
                    properties.messageID = delivery.properties.messageID
                    let body = Array(
                        "{\"command_id\":\"\(delivery.properties.messageID ?? "")\",\"outcome\":\"succeeded\"}".utf8)
                    try await amqp.publish(
                        AMQPMessage(
                            exchange: topology.resultsExchange, routingKey: "profile.upsert.succeeded", body: body,
                            properties: properties))
                    try await amqp.ack(delivery)
                }
            }
        }
    }

    func spawnConsumer(prefix: String, concurrency: Int, rateLimit: Bool) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: relayBinary)
        process.arguments = ["consume"] + (dev ? ["--dev"] : [])
        var environment = ProcessInfo.processInfo.environment
        environment["RELAY_QUEUE_PREFIX"] = prefix
        environment["RELAY_CONCURRENCY"] = String(concurrency)
        environment["RELAY_RATE_LIMIT"] = rateLimit ? "spec" : "off"
        environment["RELAY_METRICS_PORT"] = "0"
        environment["RELAY_KLAVIYO_API_BASE_URL"] = simURL
        environment["RELAY_LOG_LEVEL"] = environment["RELAY_LOG_LEVEL"] ?? "warning"
        // Production's log format, also under --dev (whose default, text, renders a command's metadata again on
        // every change: a cost production does not pay).
        environment["RELAY_LOG_FORMAT"] = environment["RELAY_LOG_FORMAT"] ?? "json"
        // The bench's done markers expire within the hour (production keeps them 7 days): repeated runs would
        // otherwise pile millions of keys into the development Redis, whose own CPU per command then grows.
        environment["RELAY_IDEMPOTENCY_TTL"] = environment["RELAY_IDEMPOTENCY_TTL"] ?? "1h"
        process.environment = environment
        try process.run()
        return process
    }

    func cleanUp(topology: RelayTopology, accountIDs: [String]) async {
        await topology.remove(from: runtime.amqp)
        for accountID in accountIDs { try? await runtime.credentialStore.delete(accountID: accountID) }
    }

    func simAdmin(_ method: String, _ path: String, _ body: [String: JSONValue]?) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        let response = try await runtime.http.execute(
            HTTPRequest(
                method: HTTPMethod(rawValue: method) ?? .GET, url: simURL + path, headers: headers,
                body: body.map { JSONValue.object($0).jsonBytes() }))
        guard (200..<300).contains(response.status) else {
            throw BenchError("klaviyo-sim \(method) \(path) answered \(response.status): \(response.bodyString)")
        }
    }
}
