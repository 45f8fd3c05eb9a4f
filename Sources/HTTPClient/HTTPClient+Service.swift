public import ServiceLifecycle

extension HTTPClient: Service {
    /// Waits for graceful shutdown (or cancellation) of the surrounding `ServiceGroup`, then fails requests still
    /// in flight with `.shutdown` and stops the loop thread. Register the client before the services that use it:
    /// groups stop services in reverse order.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }
}
