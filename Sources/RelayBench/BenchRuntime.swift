import AMQP
import Foundation
import HTTPClient
import Logging
import Redis
import Relay

/// The clients the bench works with (RabbitMQ, Redis for the bench accounts' credentials, HTTP for klaviyo-sim's
/// admin API), built from the same `RELAY_*` environment as `klaviyo-relay`.
struct BenchRuntime: Sendable {
    let configuration: RelayConfiguration
    let amqp: AMQPClient
    let redis: RedisClient
    let http: HTTPClient
    let credentialStore: CredentialStore

    /// Reads the configuration, bootstraps logging, and creates (but does not start) the clients.
    static func make(dev: Bool, logLevel: String?) throws -> BenchRuntime {
        var configuration: RelayConfiguration
        do {
            configuration = try RelayConfiguration(environment: ProcessInfo.processInfo.environment, development: dev)
        } catch {
            throw BenchError("configuration: \(error)")
        }
        if let logLevel { configuration.logLevel = logLevel }
        RelayLogging.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
        let logger = Logger(label: "klaviyo-relay.bench")
        let amqpConfiguration: AMQPConfiguration
        let redisConfiguration: RedisConfiguration
        do {
            amqpConfiguration = try configuration.amqpConfiguration(connectionName: "klaviyo-relay bench")
            redisConfiguration = try configuration.redisConfiguration()
        } catch {
            throw BenchError("\(error)")
        }
        let topology = RelayTopology(prefix: configuration.queuePrefix, deliveryLimit: configuration.deliveryLimit)
        let amqp = AMQPClient(configuration: amqpConfiguration, topology: topology.amqpTopology, logger: logger)
        let redis = RedisClient(configuration: redisConfiguration, logger: logger)
        let http = HTTPClient(
            configuration: configuration.httpConfiguration(userAgent: "klaviyo-relay-bench"), logger: logger)
        return BenchRuntime(
            configuration: configuration, amqp: amqp, redis: redis, http: http,
            credentialStore: CredentialStore(redis: redis, keys: configuration.encryptionKeys))
    }

    /// Runs `body` with the AMQP connection up, then closes everything.
    func withAMQP<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await withConnectedClients(amqp: amqp, redis: redis, http: http, body)
    }
}

/// A failure to report in one line (exit code 1).
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
