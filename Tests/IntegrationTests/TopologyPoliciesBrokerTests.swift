import AMQP
import HTTPClient
import Relay
import RelayTestSupport
import Testing

/// `RELAY_TOPOLOGY=policies` against the test broker's management API (RELAY_RABBITMQ_MANAGEMENT_URL, default the
/// local broker's, guest/guest on 15672): the policies applied, redeclaring the argument-free topology, and the check
/// seeing a policy go missing. The relay's behaviour under those policies is checked by
/// scripts/check/check-definitions.sh --relay.
@Suite("Topology policies on the broker")
struct TopologyPoliciesBrokerTests {
    static let managementURL =
        TestServers.environment["RELAY_RABBITMQ_MANAGEMENT_URL"] ?? "http://guest:guest@127.0.0.1:15672"

    @Test func policiesAppliedCheckedAndMissed() async throws {
        let topology = RelayTopology(
            prefix: uniqueName("it-pol"), retryTiers: [.init("1s", .seconds(1))], mode: .policies)
        var configuration = try AMQPConfiguration(url: IntegrationEnvironment.amqpURL)
        configuration.connectionName = "integration-test \(topology.prefix)"
        let amqp = AMQPClient(configuration: configuration, logger: IntegrationEnvironment.logger)
        let http = HTTPClient(logger: IntegrationEnvironment.logger)
        let connection = Task { try await amqp.run() }
        let management = try RabbitMQManagement(
            url: Self.managementURL, vhost: configuration.virtualHost, http: http)
        try await amqp.waitUntilConnected(timeout: .seconds(20))
        do {
            try await amqp.declare(topology.amqpTopology)
            // Declared without policies: every queue and the commands exchange lack every key.
            let before = try await management.problems(topology)
            let wanted = topology.policies.reduce(0) { $0 + $1.covers.count * $1.definition.count }
            #expect(before.count == wanted)
            #expect(before.allSatisfy { $0.inForce == nil })

            try await management.apply(topology.policies)
            try await management.waitUntilInForce(topology, wait: .seconds(20), logger: IntegrationEnvironment.logger)
            // Applying again changes nothing, and the argument-free declaration is accepted again (no 406).
            try await management.apply(topology.policies)
            try await amqp.declare(topology.amqpTopology)
            #expect(try await management.problems(topology).isEmpty)

            // A tier's policy deleted: seen at once (the management API may still name it on the queue for a while).
            let tierPolicy = try #require(topology.policies.first { $0.name == "\(topology.prefix)-retry-1s" })
            try await management.remove([tierPolicy])
            let after = try await management.problems(topology)
            #expect(Set(after.map(\.name)) == [topology.retryQueueName("1s")])
            #expect(after.map(\.key) == ["message-ttl", "dead-letter-exchange", "dead-letter-strategy", "overflow"])
            let refused = await #expect(throws: RelayError.self) {
                try await management.waitUntilInForce(
                    topology, wait: .milliseconds(300), logger: IntegrationEnvironment.logger)
            }
            #expect(refused?.code == .policiesNotInForce)
            #expect(refused?.message.contains("queue \(topology.retryQueueName("1s")) has no policy in force") == true)
            #expect(refused?.message.contains("guest:guest") == false)
        } catch {
            Issue.record("\(error)")
        }
        try? await management.remove(topology.policies)
        await topology.remove(from: amqp)
        await amqp.shutdown()
        _ = await connection.result
        await http.shutdown()
    }
}
