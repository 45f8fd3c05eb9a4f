public import Hummingbird
public import Logging
public import NIOCore
import Synchronization

/// The Klaviyo API simulator: in-memory accounts and profiles, spec-driven routing and validation, fault
/// injection, request recording and counters. Build it once, then serve it with ``makeApplication(onServerRunning:)``
/// or test it through ``makeResponder()``.
public final class KlaviyoSimulator: Sendable {
    /// Settings that the admin API may change at run time.
    struct RuntimeSettings: Sendable {
        var latency: Duration
        var rateLimitsEnabled: Bool
        var accessTokenTTL: Duration
    }

    /// The configuration it was built with.
    public let configuration: SimConfiguration
    let logger: Logger
    let registry = SimRegistry()
    let recorder: RequestRecorder
    let stats = SimStats()
    let rateLimiter = RateLimiter()
    let oauth = Mutex(OAuthState())
    let faults = Mutex<FaultConfig?>(nil)
    let settings: Mutex<RuntimeSettings>
    let router: OperationRouter
    let validators: [String: SchemaValidator]
    let implemented: Set<String>

    /// Operations with handlers (see `KlaviyoSimulator+Handlers.swift`).
    static let implementedOperations: Set<String> = [
        "get_accounts", "get_account", "create_or_update_profile", "create_profile", "get_profile", "get_profiles",
        "update_profile", "create_list", "get_lists", "get_list", "add_profiles_to_list", "remove_profiles_from_list",
        "create_event", "bulk_create_events", "bulk_import_profiles", "get_bulk_import_profiles_job",
        "get_errors_for_bulk_import_profiles_job", "bulk_subscribe_profiles", "bulk_unsubscribe_profiles",
        "get_bulk_import_profiles_jobs",
        "get_campaigns", "create_campaign", "get_campaign", "update_campaign", "send_campaign",
        "get_campaign_send_job", "cancel_campaign_send", "get_flows", "get_flow", "update_flow",
        "query_campaign_values", "query_flow_values",
    ]

    /// Creates a simulator and seeds `configuration.seedAccounts`.
    public init(configuration: SimConfiguration = .init(), logger: Logger = Logger(label: "klaviyo-sim")) {
        self.configuration = configuration
        self.logger = logger
        self.recorder = RequestRecorder(capacity: configuration.recordCapacity)
        self.settings = Mutex(
            RuntimeSettings(
                latency: configuration.latency, rateLimitsEnabled: configuration.rateLimitsEnabled,
                accessTokenTTL: configuration.accessTokenTTL))
        self.router = OperationRouter(operations: KlaviyoOperation.all)
        var validators: [String: SchemaValidator] = [:]
        for op in KlaviyoOperation.all where Self.implementedOperations.contains(op.operationId) {
            if let schema = op.requestSchema {
                do {
                    validators[op.operationId] = try SchemaValidator(schemaJSON: schema)
                } catch {
                    logger.error("Bad embedded schema", metadata: ["sim.operation": "\(op.operationId)"])
                }
            }
        }
        self.validators = validators
        self.implemented = Self.implementedOperations
        for account in configuration.seedAccounts { registry.upsert(account) }
    }

    /// The HTTP responder (for `HummingbirdTesting` or a custom server).
    public func makeResponder() -> SimResponder { SimResponder(simulator: self) }

    /// A Hummingbird application serving the simulator on the configured host and port.
    public func makeApplication(
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> Application<SimResponder> {
        Application(
            responder: makeResponder(),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: onServerRunning,
            logger: logger)
    }

    /// Adds or updates an account (same as `POST /_sim/accounts`).
    @discardableResult
    public func upsertAccount(_ account: SimAccount) -> SimAccount { registry.upsert(account) }
}
