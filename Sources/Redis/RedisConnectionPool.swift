import Logging
import Synchronization

/// Up to `poolSize` auto-pipelining connections, opened lazily, shared by all callers.
///
/// A connection serves many callers at once, so there is no exclusive checkout: each call goes to the first
/// connection with fewer than ``targetLoad`` requests in flight (fewer, larger batches cost less CPU than many
/// small ones); when all open connections have reached it, a new one is opened, or once `poolSize` are open the
/// least-loaded one is used. Routing never blocks (beyond a short mutex).
final class RedisConnectionPool: Sendable {
    private struct State {
        var connections: [RedisConnection] = []
        var isShutdown = false
    }

    /// Requests in flight on a connection before calls overflow to the next one (opened lazily if needed).
    static let targetLoad = 32

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

    /// Runs commands already in RESP on the least-loaded connection.
    func execute(_ commands: RedisFormattedCommands) async throws -> [Result<RedisValue, RedisError>] {
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
            // Fill connections in order: the first one with fewer than `targetLoad` requests in flight takes the
            // call. Batches stay large and few worker threads wake up; a slow connection overflows to the next.
            var leastLoaded: RedisConnection?
            var leastLoad = Int.max
            for connection in state.connections {
                let load = connection.load.load(ordering: .relaxed)
                if load < Self.targetLoad {
                    connection.load.add(1, ordering: .relaxed)
                    return connection
                }
                if load < leastLoad {
                    leastLoaded = connection
                    leastLoad = load
                }
            }
            if state.connections.count < max(1, configuration.poolSize) {
                let created = RedisConnection(
                    id: state.connections.count + 1, configuration: configuration, logger: logger)
                state.connections.append(created)
                leastLoaded = created
            }
            leastLoaded?.load.add(1, ordering: .relaxed)
            return leastLoaded
        }
        guard let connection else { throw .shutdown }
        return connection
    }
}
