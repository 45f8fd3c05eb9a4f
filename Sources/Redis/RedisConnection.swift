import Dispatch
import Foundation
import Logging
import Synchronization

/// One Redis connection driven by one dedicated thread that auto-pipelines the commands of many callers.
///
/// Callers append their commands to a queue and suspend. The worker thread sleeps until the queue is non-empty,
/// then takes everything pending (up to ``maxBatchCommands`` commands), formats it into hiredis' output buffer,
/// flushes it with one write and reads the replies in order, resuming each caller as soon as its own replies are
/// in. Under load, batches form by themselves: one write and a few reads serve many commands.
///
/// The hiredis context (``RedisContext``) belongs to the worker thread. It is opened lazily and dropped after any
/// transport failure, which fails the whole batch in flight with retriable errors; the next batch reconnects, so
/// the connection heals itself when the server comes back. Before each batch an idle socket that the server
/// closed is detected and replaced.
final class RedisConnection: Sendable {
    /// Upper bound on the number of commands written in one batch (a single larger pipeline is still one batch).
    static let maxBatchCommands = 256

    private struct Request {
        let id: UInt64
        /// The request's commands in RESP, back to back (formatted by the caller, not by this thread).
        let formatted: [UInt8]
        /// How many commands `formatted` holds (one reply each).
        let count: Int
        let continuation: UnsafeContinuation<[Result<RedisValue, RedisError>], any Error>
    }

    private struct State {
        var pending: [Request] = []
        /// Set by the worker just before it waits on `wakeup`, cleared by the submitter that signals it.
        var isSleeping = false
        var isClosed = false
        var hasExited = false
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private enum Next {
        case batch([Request])
        case exit([CheckedContinuation<Void, Never>])
    }

    let id: Int
    /// Requests routed to this connection and not yet answered; maintained by the pool for least-loaded routing.
    let load = Atomic<Int>(0)
    /// Number of batches written (one flush each), for tests and diagnostics.
    let writeBatches = Atomic<Int>(0)
    /// Number of commands written.
    let commandsWritten = Atomic<Int>(0)

    private let state = Mutex(State())
    private let nextRequestID = Atomic<UInt64>(0)
    /// Signalled exactly once per sleep of the worker (see `State.isSleeping`).
    private let wakeup = DispatchSemaphore(value: 0)
    private let configuration: RedisConfiguration
    private let logger: Logger

    /// Creates the connection and starts its worker thread; the socket is opened by the first batch.
    init(id: Int, configuration: RedisConfiguration, logger: Logger) {
        self.id = id
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "redis.connection"] = "\(id)"
        self.logger = logger
        let thread = Thread { [self] in
            // Named from inside (Linux names only the calling thread) and within 15 bytes, as `top -H` shows it.
            Thread.current.name = "relay-redis-\(id % 1000)"
            self.run()
        }
        thread.start()
    }

    /// Queues the commands for the next batch and returns one result per command.
    ///
    /// Server error replies are per-command failures; a transport failure throws for the whole request. A request
    /// cancelled before it is written throws `CancellationError`; once written, its replies are awaited (the
    /// connection must stay in sync).
    func execute(_ commands: [[[UInt8]]]) async throws -> [Result<RedisValue, RedisError>] {
        var formatted: [UInt8] = []
        for command in commands { formatted.append(contentsOf: RedisContext.formatted(command)) }
        return try await execute(RedisFormattedCommands(bytes: formatted, count: commands.count))
    }

    /// Queues commands already in RESP (``RedisFormattedCommands``) for the next batch, like the byte-array form.
    func execute(_ commands: RedisFormattedCommands) async throws -> [Result<RedisValue, RedisError>] {
        let id = nextRequestID.add(1, ordering: .relaxed).newValue
        // Unsafe (no checking canary, one allocation less per request): a request leaves the queue exactly once,
        // answered, failed or cancelled, and is resumed then.
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                enum Action {
                    case fail(any Error)
                    case wake
                    case none
                }
                let action: Action = state.withLock { state in
                    if state.isClosed { return .fail(RedisError.shutdown) }
                    // Checked under the lock the cancellation handler also takes: no lost cancellation.
                    if Task.isCancelled { return .fail(CancellationError()) }
                    state.pending.append(
                        Request(
                            id: id, formatted: commands.bytes, count: commands.count, continuation: continuation))
                    if state.isSleeping {
                        state.isSleeping = false
                        return .wake
                    }
                    return .none
                }
                switch action {
                case .fail(let error): continuation.resume(throwing: error)
                case .wake: wakeup.signal()
                case .none: break
                }
            }
        } onCancel: {
            let request = state.withLock { state -> Request? in
                guard let index = state.pending.firstIndex(where: { $0.id == id }) else { return nil }
                return state.pending.remove(at: index)
            }
            request?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Fails the queued requests with `.shutdown` and stops the worker thread once its batch in flight (if any)
    /// is answered; returns when the socket is closed.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (pending, wake, exited) = state.withLock { state in
                let pending = beginClose(&state)
                let wake = state.isSleeping
                state.isSleeping = false
                if !state.hasExited { state.closeWaiters.append(continuation) }
                return (pending, wake, state.hasExited)
            }
            for request in pending { request.continuation.resume(throwing: RedisError.shutdown) }
            if wake { wakeup.signal() }
            if exited { continuation.resume() }
        }
    }

    /// Like ``close()`` without waiting: for the pool's `deinit`.
    func closeSoon() {
        let (pending, wake) = state.withLock { state in
            let pending = beginClose(&state)
            let wake = state.isSleeping
            state.isSleeping = false
            return (pending, wake)
        }
        for request in pending { request.continuation.resume(throwing: RedisError.shutdown) }
        if wake { wakeup.signal() }
    }

    private func beginClose(_ state: inout State) -> [Request] {
        state.isClosed = true
        defer { state.pending = [] }
        return state.pending
    }

    // MARK: - Worker thread only

    private func run() {
        var context: RedisContext?
        while true {
            switch nextBatch() {
            case .batch(let batch):
                process(batch, context: &context)
            case .exit(let waiters):
                context = nil
                for waiter in waiters { waiter.resume() }
                return
            }
        }
    }

    /// Sleeps until there is work (or the connection is closed), then takes a batch.
    private func nextBatch() -> Next {
        while true {
            let next: Next? = state.withLock { state in
                if state.isClosed {
                    state.hasExited = true
                    defer { state.closeWaiters = [] }
                    return .exit(state.closeWaiters)
                }
                if state.pending.isEmpty {
                    state.isSleeping = true
                    return nil
                }
                var count = 0
                var taken = 0
                for request in state.pending {
                    if taken > 0 && count + request.count > Self.maxBatchCommands { break }
                    count += request.count
                    taken += 1
                }
                if taken == state.pending.count {
                    defer { state.pending = [] }
                    return .batch(state.pending)
                }
                defer { state.pending.removeFirst(taken) }
                return .batch(Array(state.pending.prefix(taken)))
            }
            if let next { return next }
            wakeup.wait()
        }
    }

    private func process(_ batch: [Request], context: inout RedisContext?) {
        if let open = context, open.peerClosed {
            // The server closed this idle connection (restart, idle timeout, CLIENT KILL): reconnect silently
            // rather than failing the callers' commands on a socket known to be dead.
            logger.debug("Redis connection closed by the server while idle; reconnecting")
            context = nil
        }
        let ctx: RedisContext
        if let open = context {
            ctx = open
        } else {
            switch RedisContext.connect(configuration: configuration, logger: logger) {
            case .success(let opened):
                ctx = opened
                context = opened
            case .failure(let error):
                fail(batch[...], error)
                return
            }
        }

        var commandCount = 0
        for request in batch {
            if !ctx.append(formatted: request.formatted) {
                context = nil
                let error = RedisError(code: .connectionLost, message: "hiredis cannot allocate", isRetriable: true)
                fail(batch[...], error)
                return
            }
            commandCount += request.count
        }
        writeBatches.add(1, ordering: .relaxed)
        commandsWritten.add(commandCount, ordering: .relaxed)

        // The first read flushes the whole output buffer.
        for index in batch.indices {
            let request = batch[index]
            var results: [Result<RedisValue, RedisError>] = []
            results.reserveCapacity(request.count)
            for _ in 0..<request.count {
                switch ctx.readReply(configuration: configuration) {
                case .success(let result):
                    results.append(result)
                case .failure(let error):
                    context = nil
                    logger.warning("Redis connection discarded", metadata: ["redis.error": "\(error)"])
                    fail(batch[index...], error)
                    return
                }
            }
            request.continuation.resume(returning: results)
        }
    }

    private func fail(_ requests: ArraySlice<Request>, _ error: RedisError) {
        for request in requests { request.continuation.resume(throwing: error) }
    }
}

/// Commands already encoded in RESP, back to back, with their count: what a connection writes as they are.
struct RedisFormattedCommands: Sendable {
    var bytes: [UInt8]
    var count: Int

    init(bytes: [UInt8], count: Int) {
        self.bytes = bytes
        self.count = count
    }

    /// Encodes commands given as strings (UTF-8) in one buffer: one allocation for the whole pipeline.
    init(_ commands: [[String]]) {
        var size = 0
        for command in commands { size += RedisContext.formattedSize(command) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)
        for command in commands { RedisContext.format(command, into: &bytes) }
        self.init(bytes: bytes, count: commands.count)
    }
}
