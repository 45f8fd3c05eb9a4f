import ArgumentParser
import Relay

/// `klaviyo-relay setup`: declares the whole topology, idempotently.
struct SetupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup", abstract: "Declare exchanges, queues and bindings (idempotent; consumers also do this).")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let runtime = try Runtime.make(options, label: "klaviyo-relay.setup", connectionName: "klaviyo-relay setup")
        let topology = runtime.topology.amqpTopology
        try await runtime.withAMQP {
            try await runtime.amqp.declare(topology)
        }
        print(
            "declared \(topology.exchanges.count) exchanges, \(topology.queues.count) queues and \(topology.bindings.count) bindings with prefix \(runtime.topology.prefix)"
        )
    }
}

/// `klaviyo-relay generate-key`: prints a new `RELAY_ENCRYPTION_KEY` entry.
struct GenerateKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-key",
        abstract: "Print a new encryption key entry (kid:base64) for RELAY_ENCRYPTION_KEY; prepend it to rotate.")

    @Option(help: "Key id.")
    var keyID = "k1"

    func run() throws {
        print(EncryptionKeyRing.generateSpecification(keyID: keyID))
    }
}
