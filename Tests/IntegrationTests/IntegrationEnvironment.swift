import AMQP
import Foundation
import HTTPClient
import Klaviyo
import Logging
import Redis
import Relay
import RelayTestSupport
import Synchronization
import Testing

/// Where the real servers and binaries are (``TestServers``; scripts/test.sh starts them). A missing server fails
/// the tests loudly (they never skip).
enum IntegrationEnvironment {
    static let environment = TestServers.environment
    static let amqpURL = TestServers.amqpURL
    static let redisURL = TestServers.redisURL
    static let simURL = TestServers.simURL(default: "http://127.0.0.1:8089")
    static let repositoryRoot = TestServers.repositoryRoot
    static let relayBinary = TestServers.relayBinary
    static let logger = Logger(label: "integration-tests")
}

/// Limits how many test stacks declare or delete their topology (a dozen quorum queues each) at the same time.
/// A single-node broker on two cores that is asked to create or delete hundreds of quorum queues at once (every
/// suite starting together) stopped answering logins altogether; a few at a time keeps it responsive and costs
/// the suite little.
actor BrokerGate {
    static let shared = BrokerGate(limit: 3)
    /// Live test stacks at once (see ``withRelayStack(deliveryLimit:_:)``).
    static let stacks = BrokerGate(limit: 8)

    let limit: Int
    var running = 0
    var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = limit }

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    func acquire() async {
        if running < limit {
            running += 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}

/// One isolated relay environment for a test: its own queue prefix, account, API key and a collector queue
/// that receives every result and dead letter of that prefix.
final class RelayStack: Sendable {
    let prefix: String
    let topology: RelayTopology
    let amqp: AMQPClient
    let redis: RedisClient
    let http: HTTPClient
    let keys = EncryptionKeyRing.development
    let connection: Task<Void, any Error>
    let collected = Inbox()
    let collector: Task<Void, any Error>
    let consumers = Mutex<[ConsumerProcess]>([])
    let recordedSince = Mutex<Int>(0)

    init(deliveryLimit: Int = 10) async throws {
        prefix = uniqueName("it")
        topology = RelayTopology(prefix: prefix, deliveryLimit: deliveryLimit)
        var configuration = try AMQPConfiguration(url: IntegrationEnvironment.amqpURL)
        configuration.connectionName = "integration-test \(prefix)"
        amqp = AMQPClient(configuration: configuration, logger: IntegrationEnvironment.logger)
        redis = RedisClient(
            configuration: try RedisConfiguration(url: IntegrationEnvironment.redisURL),
            logger: IntegrationEnvironment.logger)
        http = HTTPClient(logger: IntegrationEnvironment.logger)
        let client = amqp
        connection = Task { try await client.run() }
        do {
            try await amqp.waitUntilConnected(timeout: .seconds(20))
        } catch {
            Issue.record("RabbitMQ is not reachable at \(IntegrationEnvironment.amqpURL): \(error)")
            throw error
        }
        try await redis.ping()
        let declaring = amqp
        let declared = topology
        try await BrokerGate.shared.run { try await declaring.declare(declared.amqpTopology) }
        let collectorQueue = "\(prefix).collector"
        var declaration = AMQPTopology()
        declaration.queues = [.init(name: collectorQueue, durable: false, exclusive: true, autoDelete: true)]
        declaration.bindings = [
            .init(queue: collectorQueue, exchange: topology.resultsExchange, routingKey: "#"),
            .init(queue: collectorQueue, exchange: topology.deadExchange, routingKey: "#"),
        ]
        try await amqp.declare(declaration)
        let stream = amqp.consume(queue: collectorQueue, prefetch: 500)
        let inbox = collected
        collector = Task {
            for try await delivery in stream {
                try await client.ack(delivery)
                inbox.items.withLock { $0.append(delivery) }
            }
        }
        let page = try await simAdmin(.GET, "/_sim/requests?since=0&limit=1")
        if case .int(let last)? = page["last_seq"] {
            // Earlier requests belong to other tests.
            recordedSince.withLock { $0 = Int(last) }
        }
    }

    /// Creates an account in klaviyo-sim and connects it here with its API key (as `connections add-api-key` does).
    func connectAccount(
        _ accountID: String? = nil, apiKey: String? = nil
    ) async throws -> (accountID: String, apiKey: String) {
        let account = accountID ?? uniqueName("acct", length: 10)
        let key = apiKey ?? "pk_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        try await simAdmin(
            .POST, "/_sim/accounts",
            ["account_id": .string(account), "api_key": .string(key), "name": "Integration Store"])
        let klaviyo = KlaviyoClient(
            baseURL: IntegrationEnvironment.simURL, transport: http, userAgent: "integration-tests",
            logger: IntegrationEnvironment.logger)
        _ = try await APIKeyConnector(klaviyo: klaviyo, store: CredentialStore(redis: redis, keys: keys))
            .connect(accountID: account, apiKey: key)
        return (account, key)
    }

    /// klaviyo-sim's admin API (``SimAdmin``): a non-2xx answer is a recorded issue.
    @discardableResult
    func simAdmin(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        try await SimAdmin(http: http, baseURL: IntegrationEnvironment.simURL).call(method, path, body)
    }

    /// Requests klaviyo-sim recorded for one account since this stack was created.
    func klaviyoRequests(account: String) async throws -> [JSONValue] {
        var since = recordedSince.withLock { $0 }
        var found: [JSONValue] = []
        while true {
            let page = try await simAdmin(.GET, "/_sim/requests?since=\(since)&limit=2000")
            let entries = page["requests"]?.arrayValue ?? []
            found += entries.filter { $0["account_id"]?.stringValue == account }
            guard case .int(let next)? = page["next_seq"], !entries.isEmpty, Int(next) > since else { break }
            since = Int(next)
        }
        return found
    }

    /// Starts a `klaviyo-relay consume` process for this prefix.
    func startConsumer(concurrency: Int = 16, environment: [String: String] = [:]) throws -> ConsumerProcess {
        var variables = [
            "RELAY_QUEUE_PREFIX": prefix, "RELAY_KLAVIYO_API_BASE_URL": IntegrationEnvironment.simURL,
            "RELAY_AMQP_URL": IntegrationEnvironment.amqpURL, "RELAY_REDIS_URL": IntegrationEnvironment.redisURL,
            "RELAY_CONCURRENCY": String(concurrency), "RELAY_METRICS_PORT": "0", "RELAY_LOG_FORMAT": "json",
            "RELAY_LOG_LEVEL": "debug", "RELAY_SHUTDOWN_TIMEOUT": "5s",
        ]
        variables.merge(environment) { _, new in new }
        let process = try ConsumerProcess.start(variables: variables)
        consumers.withLock { $0.append(process) }
        return process
    }

    /// Waits until the work queue has as many consumers as expected.
    func waitForConsumers(_ count: Int, queue: RelayQueue = .profiles) async throws {
        try await eventually("\(count) consumer(s) on \(queue)", timeout: .seconds(30)) {
            try await self.amqp.messageCount(queue: self.topology.queueName(queue)).consumers >= count
        }
    }

    /// Publishes a command body (persistent, JSON) to the commands exchange.
    func publish(
        _ body: [UInt8], routingKey: String, messageID: String? = nil, replyTo: String? = nil, headers: AMQPTable = [:]
    )
        async throws
    {
        var properties = AMQPProperties()
        properties.contentType = "application/json"
        properties.persistent = true
        properties.messageID = messageID
        properties.correlationID = messageID
        properties.replyTo = replyTo
        properties.headers = headers
        try await amqp.publish(
            AMQPMessage(exchange: topology.commandsExchange, routingKey: routingKey, body: body, properties: properties)
        )
    }

    /// A command id unique to this stack (done markers are global, so ids must never repeat across runs).
    func id(_ name: String) -> String { "\(prefix)-\(name)" }

    /// Everything the collector has seen.
    var deliveries: [AMQPDelivery] { collected.items.withLock { $0 } }

    /// Results (not dead letters) by command id.
    /// Every result collected so far by command id, parsed once (a check over many ids that called
    /// ``results(for:)`` per id parsed every delivery per id: 2,000 ids took the test process 80 s of CPU).
    func resultsByCommand() -> [String: [CommandResult]] {
        Dictionary(
            grouping: deliveries.filter { $0.properties.headers[DeadLetter.Header.errorCode] == nil }
                .compactMap { try? JSONValue.parse($0.body) }.compactMap(CommandResult.init(json:)),
            by: \.commandID)
    }

    func results(for commandID: String) -> [CommandResult] {
        deliveries.filter { $0.properties.headers[DeadLetter.Header.errorCode] == nil }
            .compactMap { try? JSONValue.parse($0.body) }.compactMap(CommandResult.init(json:))
            .filter { $0.commandID == commandID }
    }

    /// Dead letters.
    var deadLetters: [AMQPDelivery] {
        deliveries.filter { $0.properties.headers[DeadLetter.Header.errorCode] != nil }
    }

    /// Waits until the collector holds at least `count` messages.
    func waitForCollected(_ count: Int, timeout: Duration = .seconds(60)) async throws {
        try await eventually("\(count) results/dead letters", timeout: timeout) { self.deliveries.count >= count }
    }

    func tearDown() async {
        for process in consumers.withLock({ $0 }) { await process.stop() }
        collector.cancel()
        let removing = amqp
        let removed = topology
        try? await BrokerGate.shared.run { await removed.remove(from: removing) }
        await amqp.shutdown()
        _ = await connection.result
        await redis.shutdown()
        await http.shutdown()
    }
}

/// A command envelope for tests.
func commandBody(id: String, type: String, accountID: String, payload: JSONValue) -> [UInt8] {
    JSONValue.object([
        "id": .string(id), "type": .string(type), "account_id": .string(accountID),
        "created_at": "2026-11-29T12:00:00Z", "payload": payload,
    ]).jsonBytes()
}

/// Runs a test body with a fresh stack and always tears it down (consumers stopped, queues deleted).
///
/// At most ``BrokerGate/stacks`` stacks live at once: every stack brings its own consumer processes, a dozen quorum
/// queues and their traffic, and the whole suite at once (60 stacks) overloaded the two-core broker for tens of
/// seconds (logins and declarations timed out).
func withRelayStack(deliveryLimit: Int = 10, _ body: (RelayStack) async throws -> Void) async throws {
    await BrokerGate.stacks.acquire()
    let stack: RelayStack
    do {
        stack = try await RelayStack(deliveryLimit: deliveryLimit)
    } catch {
        await BrokerGate.stacks.release()
        throw error
    }
    do {
        try await body(stack)
    } catch {
        await stack.tearDown()
        await BrokerGate.stacks.release()
        throw error
    }
    await stack.tearDown()
    await BrokerGate.stacks.release()
}

/// Messages the collector received.
final class Inbox: Sendable {
    let items = Mutex<[AMQPDelivery]>([])
}

extension RelayStack {
    /// Collects every connection event (`klaviyo.connections`, any routing key) published from now on, through an
    /// exclusive queue of its own; cancel the task when done.
    func collectConnectionEvents() async throws -> (events: Inbox, collector: Task<Void, any Error>) {
        let events = Inbox()
        let eventQueue = "\(prefix).connection-events"
        var declaration = AMQPTopology()
        declaration.queues = [.init(name: eventQueue, durable: false, exclusive: true, autoDelete: true)]
        declaration.bindings = [.init(queue: eventQueue, exchange: topology.connectionsExchange, routingKey: "#")]
        try await amqp.declare(declaration)
        let stream = amqp.consume(queue: eventQueue, prefetch: 10)
        let amqp = self.amqp
        let collector = Task {
            for try await delivery in stream {
                try await amqp.ack(delivery)
                events.items.withLock { $0.append(delivery) }
            }
        }
        return (events, collector)
    }
}
