import ArgumentParser
import Foundation
import Relay

/// `klaviyo-relay setup`: declares the whole topology, idempotently; with `RELAY_TOPOLOGY=policies` it first
/// applies the topology's policies through the management API. `--print-definitions` prints the topology as a
/// RabbitMQ definitions file instead (`deploy/rabbitmq/definitions.json` is its output for prefix `klaviyo`).
struct SetupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup",
        abstract: "Declare exchanges, queues and bindings (idempotent; consumers also do this); with "
            + "RELAY_TOPOLOGY=policies, apply the topology's policies first.")

    @OptionGroup var options: GlobalOptions

    @Flag(
        help: """
            Print the topology of RELAY_QUEUE_PREFIX as a RabbitMQ definitions file (for rabbitmqctl \
            import_definitions) and exit, without connecting.
            """)
    var printDefinitions = false

    @Option(help: "With --print-definitions: arguments or policies (what deploy/rabbitmq/definitions.json holds).")
    var definitionsMode = "policies"

    @Option(help: "With --print-definitions: the vhost the definitions name.")
    var vhost = "/"

    func run() async throws {
        if printDefinitions {
            let configuration: RelayConfiguration
            do {
                // Only the prefix and the delivery limit count: no key or server is needed.
                configuration = try RelayConfiguration(
                    environment: ProcessInfo.processInfo.environment, development: true)
            } catch {
                throw CLIError("configuration: \(error)")
            }
            guard let mode = RelayTopology.Mode(rawValue: definitionsMode) else {
                throw ValidationError("--definitions-mode must be arguments or policies")
            }
            let topology = RelayTopology(
                prefix: configuration.queuePrefix, deliveryLimit: configuration.deliveryLimit, mode: mode)
            print(topology.definitionsJSON(vhost: vhost), terminator: "")
            return
        }
        let runtime = try Runtime.make(options, label: "klaviyo-relay.setup", connectionName: "klaviyo-relay setup")
        let topology = runtime.topology.amqpTopology
        var applied = ""
        if runtime.topology.mode == .policies {
            // Before the declaration, so queues created now have their policies from the start.
            let management = try runtime.management(for: "setup")
            let policies: [RelayTopology.Policy]
            do {
                policies = try await management.adapted(runtime.topology).policies
                try await management.apply(policies)
            } catch {
                await runtime.http.shutdown()
                throw CLIError("\(error)")
            }
            applied = "applied \(policies.count) policies in vhost \(management.vhost), "
        }
        try await runtime.withAMQP {
            try await runtime.amqp.declare(topology)
        }
        print(
            "\(applied)declared \(topology.exchanges.count) exchanges, \(topology.queues.count) queues and \(topology.bindings.count) bindings with prefix \(runtime.topology.prefix)"
        )
    }
}

/// `klaviyo-relay generate-key`: prints a new `RELAY_ENCRYPTION_KEY` entry.
struct GenerateKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-key",
        abstract: "Print a new encryption key entry (kid:base64) for RELAY_ENCRYPTION_KEY; prepend it to rotate.")

    @Option(help: "Key id: 1 to 64 ASCII letters, digits, - and _.")
    var keyID = "k1"

    func validate() throws {
        guard EncryptionKeyRing.isWellFormedKeyID(Substring(keyID)) else {
            throw ValidationError(
                "--key-id must be 1 to 64 ASCII letters, digits, - and _ (stored secrets name their key by it)")
        }
    }

    func run() throws {
        print(try EncryptionKeyRing.generateSpecification(keyID: keyID))
    }
}
