import AMQP
import ArgumentParser
import Foundation
import Logging
import Relay
import RelayServer
import ServiceLifecycle

/// `klaviyo-relay serve`: the HTTP surface (docs/operations.md): the JSON API for the dashboard backend (bearer
/// `RELAY_API_TOKEN`), the signed browser entry points (OAuth start and callback, settings page) and `/healthz`
/// on the public port (`RELAY_HTTP_PORT`); Prometheus `/metrics` (with `/healthz` and `/readyz`) only on the
/// internal metrics port (`RELAY_METRICS_PORT` or `--metrics-port`). Stateless: all state lives in Redis.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve the connection API, the OAuth flow and the settings page over HTTP.")

    @OptionGroup var options: GlobalOptions

    @Option(help: "Public port (overrides RELAY_HTTP_PORT).")
    var port: Int?

    @Option(help: "Internal port of /metrics, /healthz and /readyz (overrides RELAY_METRICS_PORT; 0 disables).")
    var metricsPort: Int?

    func run() async throws {
        let runtime = try Runtime.make(options, label: "klaviyo-relay.serve", connectionName: "klaviyo-relay serve")
        let httpPort = port ?? runtime.configuration.httpPort
        let metricsPort = self.metricsPort ?? runtime.configuration.metricsPort
        guard (0...65535).contains(httpPort), (0...65535).contains(metricsPort) else {
            throw ValidationError("--port and --metrics-port must be in 0...65535")
        }
        guard metricsPort == 0 || metricsPort != httpPort else {
            throw CLIError(
                "the metrics port \(metricsPort) is also the public port: set RELAY_METRICS_PORT (or --metrics-port; "
                    + "0 disables metrics) to another port than RELAY_HTTP_PORT")
        }
        try ListeningPort.checkFree(httpPort, setting: port == nil ? "RELAY_HTTP_PORT" : "--port")
        if metricsPort > 0 {
            try ListeningPort.checkFree(
                metricsPort,
                setting: self.metricsPort == nil
                    ? "RELAY_METRICS_PORT (0 disables metrics)" : "--metrics-port (0 disables metrics)")
        }
        let metrics = MetricsBootstrap.bootstrap()
        let app = buildApplication(
            configuration: RelayServerConfiguration(runtime.configuration, port: httpPort),
            dependencies: runtime.serverDependencies())
        if runtime.configuration.apiToken == nil {
            runtime.logger.warning("RELAY_API_TOKEN is not set: the JSON API answers 401 to every call")
        }
        if runtime.configuration.linkSecret == nil {
            runtime.logger.warning("RELAY_LINK_SECRET is not set: every signed browser link is refused")
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: runtime.amqp), .init(service: app),
        ]
        if metricsPort > 0 {
            services.append(
                .init(
                    service: HealthServer.make(
                        port: metricsPort, registry: metrics, amqp: runtime.amqp, redis: runtime.redis,
                        logger: runtime.logger)))
            services.append(.init(service: ConnectionStateMetrics(redis: runtime.redis, logger: runtime.logger)))
        }
        do {
            if let exporter = try TracingBootstrap.bootstrap(logger: runtime.logger) {
                services.insert(.init(service: exporter), at: 0)
            }
        } catch {
            throw CLIError("tracing: \(error)")
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [],
                logger: runtime.logger))
        runtime.logger.info(
            "serving",
            metadata: [
                "port": "\(httpPort)", "metrics_port": "\(metricsPort == 0 ? "off" : String(metricsPort))",
                "config": "\(runtime.configuration)",
            ])
        try await group.run()
        await runtime.redis.shutdown()
        await runtime.http.shutdown()
    }
}

/// `klaviyo-relay sign-link`: prints a signed browser link (what the dashboard backend does).
struct SignLinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-link",
        abstract: "Print a signed link to the settings page or the OAuth start (HMAC-SHA256 with RELAY_LINK_SECRET).")

    @Option(help: "HeroPixel account id.")
    var account: String

    @Option(help: "Where the browser returns afterwards (must match RELAY_RETURN_TO_ALLOWLIST).")
    var returnTo: String

    @Option(help: "Lifetime of the link (e.g. 10m; at most RELAY_LINK_MAX_TTL, default 1h).")
    var ttl = "10m"

    @Option(help: "/settings/klaviyo or /oauth/klaviyo/start (the link opens only this path).")
    var path = "/settings/klaviyo"

    @Option(help: "Base URL of `serve` (default http://127.0.0.1:<RELAY_HTTP_PORT>).")
    var baseURL: String?

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let secret = environment["RELAY_LINK_SECRET"], !secret.isEmpty else {
            throw CLIError("RELAY_LINK_SECRET is not set")
        }
        guard let action = SignedLink.Action(rawValue: path) else {
            throw ValidationError("--path must be /settings/klaviyo or /oauth/klaviyo/start")
        }
        guard let lifetime = RelayConfiguration.parseDuration(ttl), lifetime > .zero else {
            throw ValidationError("--ttl: a positive duration, e.g. 10m")
        }
        var maxLifetime = SignedLink.defaultMaxLifetime
        if let text = environment["RELAY_LINK_MAX_TTL"], !text.isEmpty {
            guard let parsed = RelayConfiguration.parseDuration(text) else {
                throw CLIError("RELAY_LINK_MAX_TTL must be a duration such as 30m or 1h")
            }
            maxLifetime = parsed
        }
        guard lifetime <= maxLifetime else {
            throw ValidationError(
                "--ttl \(ttl) is longer than RELAY_LINK_MAX_TTL (\(maxLifetime.components.seconds)s): `serve` would "
                    + "refuse the link")
        }
        let allowlist = (environment["RELAY_RETURN_TO_ALLOWLIST"] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        if !SignedLink.isAllowed(returnTo: returnTo, allowlist: allowlist) {
            FileHandle.standardError.write(Data("warning: --return-to is not in RELAY_RETURN_TO_ALLOWLIST\n".utf8))
        }
        let base = baseURL ?? "http://127.0.0.1:\(environment["RELAY_HTTP_PORT"] ?? "8080")"
        let link = SignedLink.sign(
            action: action, accountID: account, returnTo: returnTo,
            expires: Timestamp.nowSeconds() + lifetime.components.seconds, secret: secret)
        print(base + link.pathAndQuery)
    }
}
