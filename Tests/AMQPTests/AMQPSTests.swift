import AMQP
import Foundation
import Testing

/// `amqps://` against the test broker's TLS listener (scripts/services.sh: port 5671, a private test CA, a server
/// certificate for the DNS name `localhost` only). The certificate and the host name are verified: a connection
/// succeeds only with the right CA and the right name.
@Suite("AMQPS: certificate and host name verification", .timeLimit(.minutes(2)))
struct AMQPSTests {
    static let environment = ProcessInfo.processInfo.environment
    static let port = Int(environment["AMQPS_PORT"] ?? "") ?? 5671
    /// The test CA services.sh made (RELAY_TEST_AMQPS_CA overrides).
    static let caFile =
        environment["RELAY_TEST_AMQPS_CA"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("var/services/tls/ca.pem").path

    func configuration(host: String, caFile: String?) throws -> AMQPConfiguration {
        var configuration = try AMQPConfiguration(url: "amqps://guest:guest@\(host):\(Self.port)/%2f")
        configuration.tlsCACertificatePath = caFile
        configuration.connectionName = TestBroker.uniqueName("tls")
        configuration.connectTimeout = .seconds(5)
        return configuration
    }

    /// Connects and returns nil, or the reason the connection could not be made within a few seconds.
    func connectionFailure(_ configuration: AMQPConfiguration) async throws -> String? {
        let client = AMQPClient(configuration: configuration, logger: TestBroker.logger)
        let running = Task { try await client.run() }
        defer { running.cancel() }
        do {
            try await client.waitUntilConnected(timeout: .seconds(8))
        } catch {
            await client.shutdown()
            return "\(error)"
        }
        // Prove the TLS connection carries AMQP: a round trip through a server-named queue.
        let queue = TestBroker.uniqueName("tls-queue")
        var topology = AMQPTopology()
        topology.queues = [.init(name: queue, durable: false, exclusive: false, autoDelete: false)]
        try await client.declare(topology)
        try await client.publish(AMQPMessage(exchange: "", routingKey: queue, body: Array("over tls".utf8)))
        var received: AMQPDelivery?
        for _ in 0..<50 where received == nil {
            received = try await client.get(queue: queue)
            if received == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(received.map { String(decoding: $0.body, as: UTF8.self) } == "over tls")
        try await client.deleteQueue(queue)
        await client.shutdown()
        return nil
    }

    @Test func connectsWithTheRightCAAndHostName() async throws {
        try #require(FileManager.default.isReadableFile(atPath: Self.caFile), "no test CA at \(Self.caFile)")
        let failure = try await connectionFailure(configuration(host: "localhost", caFile: Self.caFile))
        #expect(failure == nil, "amqps with the test CA failed: \(failure ?? "")")
    }

    @Test func refusesACertificateNoTrustedCASigned() async throws {
        // The system trust store does not know the private test CA.
        let failure = try #require(
            try await connectionFailure(configuration(host: "localhost", caFile: nil)),
            "connected to a broker whose certificate no trusted CA signed")
        #expect(failure.lowercased().contains("ssl") || failure.lowercased().contains("certificate"), "\(failure)")
    }

    @Test func refusesACertificateForAnotherHostName() async throws {
        try #require(FileManager.default.isReadableFile(atPath: Self.caFile), "no test CA at \(Self.caFile)")
        // The certificate names DNS:localhost only; 127.0.0.1 is the same server under another name.
        let failure = try #require(
            try await connectionFailure(configuration(host: "127.0.0.1", caFile: Self.caFile)),
            "connected although the certificate does not name 127.0.0.1")
        #expect(failure.lowercased().contains("ssl") || failure.lowercased().contains("certificate"), "\(failure)")
    }
}
