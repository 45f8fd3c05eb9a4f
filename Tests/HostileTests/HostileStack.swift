import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Redis
import Relay
import RelayTestSupport
import Synchronization
import Testing

/// The environment the hostile probes run in: its own queue prefix, two `klaviyo-relay consume` processes (each
/// with its own metrics port), a collector on the results and dead-letter exchanges, and the rate-limited
/// klaviyo-sim of scripts/test/hostile.sh.
final class HostileStack: Sendable {
    let run: String
    let prefix: String
    let topology: RelayTopology
    let amqp: AMQPClient
    let redis: RedisClient
    let http: HTTPClient
    let connection: Task<Void, any Error>
    let collected = Mailbox()
    let tasks = Mutex<[Task<Void, any Error>]>([])
    let children = Mutex<[Child]>([])
    let consumers = Mutex<[(child: Child, metricsPort: Int)]>([])

    static let consumerCount = 2

    init() async throws {
        run = String(UUID().uuidString.lowercased().prefix(8))
        prefix = "it-hostile-\(run)"
        topology = RelayTopology(prefix: prefix, deliveryLimit: 10)
        var configuration = try AMQPConfiguration(url: HostileEnvironment.amqpURL)
        configuration.connectionName = "hostile-test \(prefix)"
        amqp = AMQPClient(configuration: configuration, logger: HostileEnvironment.logger)
        redis = RedisClient(
            configuration: try RedisConfiguration(url: HostileEnvironment.redisURL), logger: HostileEnvironment.logger)
        http = HTTPClient(logger: HostileEnvironment.logger)
        let client = amqp
        connection = Task { try await client.run() }
        do {
            try await amqp.waitUntilConnected(timeout: .seconds(20))
        } catch {
            Issue.record("RabbitMQ is not reachable at \(HostileEnvironment.amqpURL): \(error)")
            throw error
        }
        do { try await redis.ping() } catch {
            Issue.record("Redis is not reachable at \(HostileEnvironment.redisURL): \(error)")
            throw error
        }
        try await amqp.declare(topology.amqpTopology)
        let collectorQueue = "\(prefix).collector"
        var declaration = AMQPTopology()
        declaration.queues = [.init(name: collectorQueue, durable: false, exclusive: true, autoDelete: true)]
        declaration.bindings = [
            .init(queue: collectorQueue, exchange: topology.resultsExchange, routingKey: "#"),
            .init(queue: collectorQueue, exchange: topology.deadExchange, routingKey: "#"),
        ]
        try await amqp.declare(declaration)
        try startCollecting(queue: collectorQueue, into: collected)
    }

    /// Consumes a queue into a mailbox (acked on receipt) until tear-down.
    func startCollecting(queue: String, into mailbox: Mailbox) throws {
        let stream = amqp.consume(queue: queue, prefetch: 500)
        let client = amqp
        let task = Task {
            for try await delivery in stream {
                mailbox.items.withLock { $0.append(Received(delivery: delivery, at: .now)) }
                try await client.ack(delivery)
            }
        }
        tasks.withLock { $0.append(task) }
    }

    /// Declares an exclusive `reply.<…>` queue (the shape `RELAY_REPLY_TO_PATTERN` admits) and collects it.
    func replyQueue(_ name: String) async throws -> (name: String, mailbox: Mailbox) {
        let queue = "reply.\(prefix).\(name)"
        var declaration = AMQPTopology()
        declaration.queues = [.init(name: queue, durable: false, exclusive: true, autoDelete: true)]
        try await amqp.declare(declaration)
        let mailbox = Mailbox()
        try startCollecting(queue: queue, into: mailbox)
        return (queue, mailbox)
    }

    /// The consumers' environment.
    var consumerEnvironment: [String: String] {
        [
            "RELAY_QUEUE_PREFIX": prefix, "RELAY_KLAVIYO_API_BASE_URL": HostileEnvironment.simURL,
            "RELAY_AMQP_URL": HostileEnvironment.amqpURL, "RELAY_REDIS_URL": HostileEnvironment.redisURL,
            "RELAY_CONCURRENCY": "16", "RELAY_LOG_FORMAT": "json", "RELAY_LOG_LEVEL": "info",
            "RELAY_SHUTDOWN_TIMEOUT": "5s", "RELAY_HTTP_TIMEOUT": "5s", "RELAY_MAX_ATTEMPTS": "4",
            "RELAY_RETRY_BASE_DELAY": "200ms", "RELAY_RETRY_MAX_DELAY": "1s", "RELAY_DELIVERY_LIMIT": "10",
            "RELAY_RATE_LIMIT": "spec",
        ]
    }

    /// Consumers that died during the run (`pid …: killed by signal 4`), replaced by ``replaceDeadConsumers()``.
    let crashes = Mutex<[String]>([])

    /// Starts the consumers and waits until every work queue has all of them.
    func startConsumers() async throws {
        for _ in 0..<Self.consumerCount { try startConsumer() }
        try await waitForConsumers()
    }

    private func startConsumer() throws {
        let port = try freePort()
        var variables = consumerEnvironment
        variables["RELAY_METRICS_PORT"] = String(port)
        let child = try Child.start(arguments: ["consume", "--dev"], variables: variables)
        consumers.withLock { $0.append((child, port)) }
        children.withLock { $0.append(child) }
    }

    /// Replaces consumers that died (a crash is recorded, not hidden: the final row reports it), so one probe's
    /// crash does not blur the probes after it.
    func replaceDeadConsumers() async throws {
        let dead = consumers.withLock { list in
            let dead = list.filter { !$0.child.isRunning }
            list.removeAll { !$0.child.isRunning }
            return dead.map { "pid \($0.child.pid) \($0.child.exitDescription)" }
        }
        guard !dead.isEmpty else { return }
        crashes.withLock { $0 += dead }
        for _ in dead { try startConsumer() }
        try await waitForConsumers()
    }

    private func waitForConsumers() async throws {
        let ready = try await waitUntil(timeout: .seconds(30)) {
            for queue in RelayQueue.allCases {
                let count = try await amqp.messageCount(queue: topology.queueName(queue))
                if count.consumers < Self.consumerCount { return false }
            }
            return true
        }
        guard ready else {
            let logs = consumers.withLock { $0.map { String($0.child.output.suffix(2000)) } }
            Issue.record("consumers did not subscribe within 30 s: \(logs)")
            throw ProbeFailure("consumers did not start")
        }
    }

    /// Runs a `klaviyo-relay` command to its end.
    func cli(_ arguments: [String], variables: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        var environment = [
            "RELAY_QUEUE_PREFIX": prefix, "RELAY_AMQP_URL": HostileEnvironment.amqpURL,
            "RELAY_REDIS_URL": HostileEnvironment.redisURL, "RELAY_DELIVERY_LIMIT": "10",
        ]
        environment.merge(variables) { _, new in new }
        let child = try Child.start(arguments: arguments + ["--dev", "--log-level", "warning"], variables: environment)
        let status = await child.exitStatus(within: .seconds(60))
        let ended = child.process.terminationReason == .uncaughtSignal ? "signal \(status)" : "exit \(status)"
        return (child.process.terminationReason == .uncaughtSignal ? 128 + status : status, ended + "\n" + child.output)
    }

    // MARK: klaviyo-sim

    /// klaviyo-sim's admin API (``SimAdmin``); a failed call throws for the probe's row, without a recorded issue.
    @discardableResult
    func sim(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        try await SimAdmin(http: http, baseURL: HostileEnvironment.simURL, recordsIssues: false).call(
            method, path, body)
    }

    /// The sim's last request sequence number (a mark to count requests from).
    func simMark() async throws -> Int {
        let page = try await sim(.GET, "/_sim/requests?since=0&limit=1")
        if case .int(let last)? = page["last_seq"] { return Int(last) }
        return 0
    }

    /// Requests the sim recorded after `mark`, optionally of one account.
    func simRequests(since mark: Int, account: String? = nil) async throws -> [JSONValue] {
        var since = mark
        var found: [JSONValue] = []
        while true {
            let page = try await sim(.GET, "/_sim/requests?since=\(since)&limit=5000")
            let entries = page["requests"]?.arrayValue ?? []
            found += entries.filter { account == nil || $0["account_id"]?.stringValue == account }
            guard case .int(let next)? = page["next_seq"], !entries.isEmpty, Int(next) > since else { break }
            since = Int(next)
        }
        return found
    }

    /// Creates an account in klaviyo-sim and connects it with its API key (as `connections add-api-key` does).
    /// `keys` seals the stored key: another ring than the consumers' makes an unreadable credential.
    func connect(_ name: String, keys: EncryptionKeyRing = .development) async throws -> String {
        let account = "\(prefix)-\(name)"
        let key = "pk_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        try await sim(
            .POST, "/_sim/accounts",
            ["account_id": .string(account), "api_key": .string(key), "name": .string("Hostile \(name)")])
        let klaviyo = KlaviyoClient(
            baseURL: HostileEnvironment.simURL, transport: http, userAgent: "hostile-test",
            logger: HostileEnvironment.logger)
        _ = try await APIKeyConnector(klaviyo: klaviyo, store: CredentialStore(redis: redis, keys: keys))
            .connect(accountID: account, apiKey: key)
        return account
    }

    // MARK: publishing

    /// Publishes to the commands exchange (or `exchange`), persistent JSON, `message_id` = `id`.
    func publish(
        _ body: [UInt8], routingKey: String, id: String?, replyTo: String? = nil, headers: AMQPTable = [:],
        exchange: String? = nil
    ) async throws {
        var properties = AMQPProperties()
        properties.contentType = "application/json"
        properties.persistent = true
        properties.messageID = id
        properties.correlationID = id
        properties.replyTo = replyTo
        properties.headers = headers
        try await amqp.publish(
            AMQPMessage(
                exchange: exchange ?? topology.commandsExchange, routingKey: routingKey, body: body,
                properties: properties))
    }

    /// A command envelope.
    func command(_ id: String, _ type: String, _ account: String, _ payload: JSONValue) -> [UInt8] {
        JSONValue.object([
            "id": .string(id), "type": .string(type), "account_id": .string(account),
            "created_at": "2026-12-04T12:00:00Z", "payload": payload,
        ]).jsonBytes()
    }

    /// A command id unique to this run.
    func id(_ name: String) -> String { "\(prefix)-\(name)" }

    /// Every `type="…"` label value on the consumers' `/metrics`.
    func metricTypeLabels() async throws -> (labels: Set<String>, scraped: Int) {
        var labels: Set<String> = []
        var scraped = 0
        for (_, port) in consumers.withLock({ $0 }) {
            let response = try await http.execute(HTTPRequest(url: "http://127.0.0.1:\(port)/metrics"))
            guard response.status == 200 else { continue }
            scraped += 1
            var rest = Substring(response.bodyString)
            while let start = rest.range(of: "type=\"") {
                rest = rest[start.upperBound...]
                guard let end = rest.firstIndex(of: "\"") else { break }
                labels.insert(String(rest[..<end]))
                rest = rest[rest.index(after: end)...]
            }
        }
        return (labels, scraped)
    }

    /// Whether every consumer runs and answers `/healthz` with 200.
    func consumersHealthy() async -> (healthy: Bool, detail: String) {
        var parts: [String] = []
        var healthy = true
        for (child, port) in consumers.withLock({ $0 }) {
            let status = (try? await http.execute(HTTPRequest(url: "http://127.0.0.1:\(port)/healthz")))?.status
            if !child.isRunning || status != 200 { healthy = false }
            parts.append(
                "pid \(child.pid) \(child.exitDescription), /healthz \(status.map(String.init) ?? "no answer")")
        }
        return (healthy, parts.joined(separator: "; "))
    }

    func tearDown() async {
        for child in children.withLock({ $0 }) { await child.stop(reportingSlowExit: false) }
        for task in tasks.withLock({ $0 }) { task.cancel() }
        _ = try? await sim(.DELETE, "/_sim/faults")
        await topology.remove(from: amqp)
        await amqp.shutdown()
        _ = await connection.result
        await redis.shutdown()
        await http.shutdown()
    }
}
