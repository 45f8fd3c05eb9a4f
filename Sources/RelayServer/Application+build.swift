public import Hummingbird

/// `serve`'s public HTTP application (as Hummingbird's template builds one): the JSON API, the signed browser
/// entry points, `/healthz` and `/readyz`, every answer with the browser hardening headers. Run it as a
/// `Service`; test it in-process with HummingbirdTesting.
public func buildApplication(
    configuration: RelayServerConfiguration, dependencies: RelayServerDependencies
) -> some ApplicationProtocol {
    let router = RelayHTTP(configuration: configuration, dependencies: dependencies).router()
    var appLogger = dependencies.logger
    appLogger.logLevel = .warning
    return Application(
        router: router,
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: "klaviyo-relay"),
        logger: appLogger)
}
