import AMQP
import Logging
import Relay
import RelayServer
import ServiceLifecycle

extension Runtime {
    /// The management API client of `RELAY_TOPOLOGY=policies`; without `RELAY_RABBITMQ_MANAGEMENT_URL` the
    /// command refuses to start (the relay cannot apply or check the policies without it).
    func management(for command: String) throws -> RabbitMQManagement {
        guard let url = configuration.rabbitMQManagementURL else {
            throw CLIError(
                "RELAY_TOPOLOGY=policies: `klaviyo-relay \(command)` needs RELAY_RABBITMQ_MANAGEMENT_URL (the RabbitMQ "
                    + "management API, e.g. http://user:password@rabbitmq:15672) to \(command == "setup" ? "apply" : "check") "
                    + "the topology's policies; set it, or use RELAY_TOPOLOGY=arguments")
        }
        do {
            let vhost = try configuration.amqpConfiguration(connectionName: "management").virtualHost
            return try RabbitMQManagement(url: url, vhost: vhost, http: http)
        } catch {
            throw CLIError("\(error)")
        }
    }

    /// `consume`'s service, gated in `RELAY_TOPOLOGY=policies` mode: it starts only once the management API reports
    /// every key the topology needs in force (``PolicyGatedService``). Unchanged in `arguments` mode.
    /// `gate` opens once the policies are checked (at once in `arguments` mode), so `/readyz` says 503 meanwhile.
    func policyGated(_ service: some Service, gate: StartupGate) throws -> any Service {
        guard topology.mode == .policies else {
            gate.open()
            return service
        }
        return PolicyGatedService(
            amqp: amqp, management: try management(for: "consume"), topology: topology, logger: logger,
            gate: gate, inner: service)
    }
}

/// Runs `inner` (the consumers) only once the topology's policies are in force. A queue without its policy would
/// keep commands forever (no delivery limit, no dead-lettering) or never return them (a retry tier without TTL),
/// so the process takes no work then: it logs each missing key by queue or exchange and fails, and the process
/// exits non-zero (under Kubernetes: restarts with back-off, checking again each time, until an operator runs
/// `klaviyo-relay setup` or imports the definitions). Staying up but not ready would hide the fault behind a
/// healthy-looking process and never re-check.
struct PolicyGatedService<Inner: Service>: Service {
    let amqp: AMQPClient
    let management: RabbitMQManagement
    let topology: RelayTopology
    let logger: Logger
    /// `/readyz`'s `policies=` condition, opened once the check passes.
    let gate: StartupGate
    let inner: Inner

    func run() async throws {
        // Connected means the (argument-free) topology is declared, so the queues exist and their policies apply.
        while true {
            do {
                try await amqp.waitUntilConnected(timeout: .seconds(60))
                break
            } catch let error as AMQPError where error.code == .timeout {
                logger.warning(
                    "still waiting for the broker before checking the policies", metadata: ["error": "\(error)"])
            }
        }
        do {
            try await management.waitUntilInForce(try await management.adapted(topology), logger: logger)
        } catch {
            logger.error(
                "refusing to consume: the topology's policies are not in force",
                metadata: ["error": "\(error)", "management": "\(management.baseURL)", "vhost": "\(management.vhost)"])
            throw CLIError("\(error)")
        }
        logger.info(
            "policies in force", metadata: ["policies": "\(topology.policies.map(\.name).joined(separator: ","))"])
        gate.open()
        try await inner.run()
    }
}
