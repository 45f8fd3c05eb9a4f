public import Hummingbird
import NIOCore

/// `serve`'s public HTTP application (as Hummingbird's template builds one): the JSON API, the signed browser
/// entry points, `/healthz` and `/readyz`, every answer with the browser hardening headers; HTTP/1.1 connections
/// idle for ``RelayServerConfiguration/idleTimeout`` are closed, and so are those whose request has not arrived in
/// full ``RelayServerConfiguration/requestTimeout`` after its head (``RequestDeadlineHandler``). Run it as a `Service`; test it in-process with
/// HummingbirdTesting.
public func buildApplication(
    configuration: RelayServerConfiguration, dependencies: RelayServerDependencies
) -> some ApplicationProtocol {
    let router = RelayHTTP(configuration: configuration, dependencies: dependencies).router()
    var appLogger = dependencies.logger
    appLogger.logLevel = .warning
    return Application(
        router: router,
        server: .http1(
            configuration: .init(
                additionalChannelHandlers: [RequestDeadlineHandler(timeout: TimeAmount(configuration.requestTimeout))],
                idleTimeout: TimeAmount(configuration.idleTimeout))),
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port), serverName: "klaviyo-relay"),
        logger: appLogger)
}
