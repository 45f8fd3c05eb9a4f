import Logging
import Synchronization

/// A lazy pool of up to `poolSize` connections with FIFO waiters.
///
/// State changes happen inside the mutex and return what to do; continuations are resumed and sockets closed
/// outside it.
final class RedisConnectionPool: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<RedisConnection, any Error>
    }

    private struct State {
        var idle: [RedisConnection] = []
        var created = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var isShutdown = false
    }

    private let state = Mutex(State())
    private let configuration: RedisConfiguration
    private let logger: Logger

    init(configuration: RedisConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs `body` with a connection, returning the connection to the pool afterwards.
    func withConnection<T>(_ body: (RedisConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let result = try await body(connection)
            await release(connection)
            return result
        } catch {
            await release(connection)
            throw error
        }
    }

    /// Closes idle connections, fails waiters; connections in use are closed when they are released.
    func shutdown() async {
        let (idle, waiters) = state.withLock { state in
            state.isShutdown = true
            defer {
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        for waiter in waiters { waiter.continuation.resume(throwing: RedisError.shutdown) }
        for connection in idle { await connection.close() }
    }

    private enum AcquireAction {
        case use(RedisConnection)
        case fail(any Error)
        case wait
    }

    private func acquire() async throws -> RedisConnection {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RedisConnection, any Error>) in
                let action: AcquireAction = state.withLock { state in
                    if state.isShutdown { return .fail(RedisError.shutdown) }
                    // Checked under the lock the cancellation handler also takes: no lost cancellation.
                    if Task.isCancelled { return .fail(CancellationError()) }
                    if let connection = state.idle.popLast() { return .use(connection) }
                    if state.created < max(1, configuration.poolSize) {
                        state.created += 1
                        return .use(RedisConnection(id: state.created, configuration: configuration, logger: logger))
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return .wait
                }
                switch action {
                case .use(let connection): continuation.resume(returning: connection)
                case .fail(let error): continuation.resume(throwing: error)
                case .wait: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    private enum ReleaseAction {
        case close
        case handOff(Waiter)
        case none
    }

    private func release(_ connection: RedisConnection) async {
        let action: ReleaseAction = state.withLock { state in
            if state.isShutdown { return .close }
            if !state.waiters.isEmpty { return .handOff(state.waiters.removeFirst()) }
            state.idle.append(connection)
            return .none
        }
        switch action {
        case .close: await connection.close()
        case .handOff(let waiter): waiter.continuation.resume(returning: connection)
        case .none: break
        }
    }
}
