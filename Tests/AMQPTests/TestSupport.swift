import AMQP
import Foundation
import Logging
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

enum TestBroker {
    static var url: String {
        ProcessInfo.processInfo.environment["RELAY_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2f"
    }

    static var managementURL: String {
        ProcessInfo.processInfo.environment["RELAY_AMQP_MANAGEMENT_URL"] ?? "http://127.0.0.1:15672"
    }

    static func uniqueName(_ prefix: String) -> String {
        "amqp-tests.\(prefix).\(UUID().uuidString.lowercased())"
    }

    static func configuration() throws -> AMQPConfiguration {
        var configuration = try AMQPConfiguration(url: url)
        configuration.connectionName = uniqueName("conn")
        return configuration
    }

    static var logger: Logger {
        var logger = Logger(label: "amqp-tests")
        logger.logLevel =
            ProcessInfo.processInfo.environment["AMQP_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) }
            ?? .warning
        return logger
    }
}

struct TestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Runs a client for the duration of `body`, failing loudly if the broker is unreachable, and shuts it down.
func withClient<T: Sendable>(
    topology: AMQPTopology = .init(),
    cleanup: AMQPTopology? = nil,
    configure: (inout AMQPConfiguration) -> Void = { _ in },
    _ body: (AMQPClient, AMQPConfiguration) async throws -> T
) async throws -> T {
    var configuration = try TestBroker.configuration()
    configure(&configuration)
    let client = AMQPClient(configuration: configuration, topology: topology, logger: TestBroker.logger)
    let runTask = Task { try await client.run() }
    do {
        try await client.waitUntilConnected(timeout: .seconds(15))
    } catch {
        Issue.record("AMQP broker unreachable at \(TestBroker.url): \(error)")
        await client.shutdown()
        throw error
    }
    let result: Result<T, any Error>
    do {
        result = .success(try await body(client, configuration))
    } catch {
        result = .failure(error)
    }
    let toDelete = cleanup ?? topology
    let connected = (try? await client.waitUntilConnected(timeout: .seconds(5))) != nil
    if connected {
        for queue in toDelete.queues { try? await client.deleteQueue(queue.name) }
        for exchange in toDelete.exchanges { try? await client.deleteExchange(exchange.name) }
    }
    await client.shutdown()
    try await runTask.value
    return try result.get()
}

/// Awaits `condition` becoming true, checking every few milliseconds, up to `timeout`.
func eventually(
    _ what: String, timeout: Duration = .seconds(15), every interval: Duration = .milliseconds(5),
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    throw TestTimeout(what: what)
}

/// Collects a consumer's deliveries in the background; tests await counts with a deadline.
actor DeliveryCollector {
    private(set) var deliveries: [AMQPDelivery] = []
    private(set) var failure: (any Error)?
    private(set) var isFinished = false
    private var waiters: [UUID: (count: Int, continuation: CheckedContinuation<Void, any Error>)] = [:]
    private var task: Task<Void, Never>?

    init() {}

    static func start(_ consumer: AMQPConsumer) async -> DeliveryCollector {
        let collector = DeliveryCollector()
        await collector.run(consumer)
        return collector
    }

    private func run(_ consumer: AMQPConsumer) {
        task = Task {
            do {
                for try await delivery in consumer { self.append(delivery) }
                self.finish(nil)
            } catch {
                self.finish(error)
            }
        }
    }

    private func append(_ delivery: AMQPDelivery) {
        deliveries.append(delivery)
        for (id, waiter) in waiters where deliveries.count >= waiter.count {
            waiters.removeValue(forKey: id)
            waiter.continuation.resume()
        }
    }

    private func finish(_ error: (any Error)?) {
        failure = error
        isFinished = true
        for (_, waiter) in waiters {
            waiter.continuation.resume(throwing: error ?? TestTimeout(what: "deliveries (consumer finished)"))
        }
        waiters = [:]
    }

    private func expire(_ id: UUID, count: Int) {
        waiters.removeValue(forKey: id)?.continuation.resume(
            throwing: TestTimeout(what: "\(count) deliveries (got \(deliveries.count))"))
    }

    /// Returns all deliveries once at least `count` arrived; throws `TestTimeout` after `timeout`.
    @discardableResult
    func waitFor(count: Int, timeout: Duration = .seconds(20)) async throws -> [AMQPDelivery] {
        if deliveries.count >= count { return deliveries }
        if isFinished { throw failure ?? TestTimeout(what: "deliveries (consumer finished)") }
        let id = UUID()
        let timer = Task {
            try await Task.sleep(for: timeout)
            self.expire(id, count: count)
        }
        defer { timer.cancel() }
        try await withCheckedThrowingContinuation { continuation in
            waiters[id] = (count, continuation)
        }
        return deliveries
    }
}

/// The RabbitMQ management HTTP API, used to force-close connections.
enum Management {
    private static func request(_ path: String, method: String = "GET") async throws -> (Data, Int) {
        var request = URLRequest(url: URL(string: TestBroker.managementURL + path)!)
        request.httpMethod = method
        request.setValue("Basic " + Data("guest:guest".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        return (data, (response as? HTTPURLResponse)?.statusCode ?? 0)
    }

    /// The broker-side names of connections whose client-provided name is `connectionName`.
    static func connections(named connectionName: String) async throws -> [String] {
        let (data, status) = try await request("/api/connections")
        guard status == 200, let list = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw TestTimeout(what: "management API /api/connections (status \(status))")
        }
        return list.compactMap { entry in
            let properties = entry["client_properties"] as? [String: Any]
            guard properties?["connection_name"] as? String == connectionName else { return nil }
            return entry["name"] as? String
        }
    }

    static func closeConnection(_ name: String) async throws {
        let encoded = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? name
        let (_, status) = try await request("/api/connections/\(encoded)", method: "DELETE")
        guard (200..<300).contains(status) else { throw TestTimeout(what: "DELETE connection (status \(status))") }
    }
}
