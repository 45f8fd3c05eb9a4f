public import ServiceLifecycle

extension RedisClient: Service {
    /// Waits for graceful shutdown (or cancellation) of the surrounding `ServiceGroup`, then closes all
    /// connections. Register the client before the services that use it: groups stop services in reverse order.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }
}
