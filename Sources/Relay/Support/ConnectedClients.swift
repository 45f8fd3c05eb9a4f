public import AMQP
public import HTTPClient
public import Redis

/// Runs `body` with the AMQP connection up (for one-shot commands and the bench), then shuts the three clients
/// down, whether `body` succeeded or threw.
public func withConnectedClients<T: Sendable>(
    amqp: AMQPClient, redis: RedisClient, http: HTTPClient, _ body: () async throws -> T
) async throws -> T {
    let connection = Task { try await amqp.run() }
    func shutdown() async {
        await amqp.shutdown()
        _ = await connection.result
        await redis.shutdown()
        await http.shutdown()
    }
    do {
        try await amqp.waitUntilConnected(timeout: .seconds(30))
        let value = try await body()
        await shutdown()
        return value
    } catch {
        await shutdown()
        throw error
    }
}
