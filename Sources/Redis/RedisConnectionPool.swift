import Logging
import Synchronization

/// Up to `poolSize` auto-pipelining connections, opened lazily, shared by all callers.
///
/// A connection serves many callers at once, so there is no exclusive checkout: each call goes to the connection
/// with the fewest requests in flight, and a new connection is opened only while every open one is busy.
/// Routing never blocks (beyond a short mutex).
final class RedisConnectionPool: Sendable {
    private struct State {
        var connections: [RedisConnection] = []
        var isShutdown = false
    }

    private let state = Mutex(State())
    private let configuration: RedisConfiguration
    private let logger: Logger

    init(configuration: RedisConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    deinit {
        // Each worker thread keeps its connection alive: stop them when the client goes away without `shutdown()`.
        for connection in state.withLock({ $0.connections }) { connection.closeSoon() }
    }

    /// Runs the commands on the least-loaded connection and returns one result per command.
    func execute(_ commands: [[[UInt8]]]) async throws -> [Result<RedisValue, RedisError>] {
        let connection = try route()
        defer { connection.load.subtract(1, ordering: .relaxed) }
        return try await connection.execute(commands)
    }

    /// Closes all connections: queued commands fail with `.shutdown`, commands already written are answered first.
    func shutdown() async {
        let connections = state.withLock { state in
            state.isShutdown = true
            defer { state.connections = [] }
            return state.connections
        }
        for connection in connections { await connection.close() }
    }

    /// Number of batches written and commands written, summed over the open connections.
    var statistics: (writeBatches: Int, commands: Int) {
        state.withLock { state in
            state.connections.reduce(into: (0, 0)) { total, connection in
                total.0 += connection.writeBatches.load(ordering: .relaxed)
                total.1 += connection.commandsWritten.load(ordering: .relaxed)
            }
        }
    }

    private func route() throws(RedisError) -> RedisConnection {
        let connection: RedisConnection? = state.withLock { state in
            if state.isShutdown { return nil }
            var best: RedisConnection?
            var bestLoad = Int.max
            for connection in state.connections {
                let load = connection.load.load(ordering: .relaxed)
                if load < bestLoad {
                    best = connection
                    bestLoad = load
                    if load == 0 { break }
                }
            }
            if bestLoad > 0 && state.connections.count < max(1, configuration.poolSize) {
                let created = RedisConnection(
                    id: state.connections.count + 1, configuration: configuration, logger: logger)
                state.connections.append(created)
                best = created
            }
            best?.load.add(1, ordering: .relaxed)
            return best
        }
        guard let connection else { throw .shutdown }
        return connection
    }
}
