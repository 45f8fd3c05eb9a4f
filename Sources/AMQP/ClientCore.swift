import Logging
import Synchronization

/// A unit of work for the connection thread. Each carries the continuation to resume when done.
enum WorkItem: Sendable {
    enum Settlement: Sendable {
        case ack
        case nack(requeue: Bool)
        case reject(requeue: Bool)
    }

    enum Operation: Sendable {
        case declare(AMQPTopology)
        case get(queue: String)
        case messageCount(queue: String)
        case purge(queue: String)
        case deleteQueue(String)
        case deleteExchange(String)
    }

    enum OperationResult: Sendable {
        case none
        case delivery(AMQPDelivery?)
        case counts(messages: UInt32, consumers: UInt32)
        case count(UInt32)
    }

    case publish(AMQPMessage, UnsafeContinuation<Void, any Error>)
    /// A settlement; its caller waits for it being written unless the continuation is nil (``AMQPClient/ackSoon(_:)``).
    case settle(AMQPDelivery, Settlement, CheckedContinuation<Void, any Error>?)
    case operation(Operation, CheckedContinuation<OperationResult, any Error>)
    /// Subscribe the registered consumer with this tag (no-op if already subscribed or gone).
    case subscribe(tag: String)
    /// Send basic.cancel for this tag (already removed from the registry).
    case unsubscribe(tag: String)

    /// Fails the item because the connection went away before it could run.
    func failForLostConnection() {
        switch self {
        case .settle:
            fail(AMQPError(code: .staleDelivery, message: "the connection this delivery came from is gone"))
        default:
            fail(AMQPError(code: .connectionLost, message: "connection lost before the operation ran"))
        }
    }

    /// Fails the item's continuation, if it has one.
    func fail(_ error: AMQPError) {
        switch self {
        case .publish(_, let continuation): continuation.resume(throwing: error)
        case .settle(_, _, let continuation): continuation?.resume(throwing: error)
        case .operation(_, let continuation): continuation.resume(throwing: error)
        case .subscribe, .unsubscribe: break
        }
    }
}

/// A registered consumer: the worker subscribes it on every (re)connect until it is cancelled.
struct ConsumerRegistration: Sendable {
    let tag: String
    let queue: String
    let prefetch: UInt16
    let continuation: AsyncThrowingStream<AMQPDelivery, any Error>.Continuation
}

/// State shared between async callers and the connection thread, guarded by a `Mutex`.
struct SharedState: ~Copyable {
    enum Lifecycle { case idle, running, stopped }

    var lifecycle = Lifecycle.idle
    var stopRequested = false
    var isConnected: Bool { connectedNode != nil }
    /// The node of the open connection, `nil` while disconnected.
    var connectedNode: AMQPConfiguration.Node?
    /// Connections opened so far (the first and every reconnect).
    var connectionsOpened = 0
    var work: [WorkItem] = []
    var consumers: [String: ConsumerRegistration] = [:]
    var connectWaiters: [UInt64: CheckedContinuation<Void, any Error>] = [:]
    var finishWaiters: [CheckedContinuation<Void, Never>] = []
    var nextWaiterID: UInt64 = 0
    /// Why the most recent connection attempt failed (cleared on connect); reported by `waitUntilConnected`.
    var lastConnectError: AMQPError?
}

/// Everything the public ``AMQPClient``, its consumers and the connection thread share.
final class ClientCore: Sendable {
    let configuration: AMQPConfiguration
    let topology: AMQPTopology
    let logger: Logger
    let state = Mutex(SharedState())
    let wakeup = EventFD()
    /// Writes of framed publishes and acks so far (``AMQPClient/framedWrites``).
    let framedWrites = Atomic<Int>(0)

    init(configuration: AMQPConfiguration, topology: AMQPTopology, logger: Logger) {
        self.configuration = configuration
        self.topology = topology
        var logger = logger
        logger[metadataKey: "amqp.connection"] = "\(configuration.connectionName)"
        self.logger = logger
    }

    /// Queues `item` for the connection thread, or fails it right away when it cannot run.
    func submit(_ item: WorkItem) {
        var needsWakeup = false
        let rejection: AMQPError? = state.withLock { state in
            if state.stopRequested || state.lifecycle == .stopped {
                return AMQPError(code: .shutdown, message: "the AMQP client is shutting down")
            }
            if !state.isConnected {
                switch item {
                case .settle:
                    return AMQPError(
                        code: .staleDelivery, message: "the connection this delivery came from is gone")
                case .publish, .operation:
                    return AMQPError(code: .notConnected, message: "not connected to the AMQP broker")
                case .subscribe, .unsubscribe:
                    break  // queued anyway: harmless while disconnected, and closes a race with connect()
                }
            }
            // Only the empty → non-empty transition needs a wake-up: the thread re-checks the queue before polling.
            needsWakeup = state.work.isEmpty
            state.work.append(item)
            return nil
        }
        if let rejection {
            item.fail(rejection)
        } else if needsWakeup {
            wakeup.signal()
        }
    }

    /// Asks the connection thread to stop; safe to call any number of times.
    func requestStop() {
        state.withLock { $0.stopRequested = true }
        wakeup.signal()
    }

    /// Removes a consumer from the registry, finishes its stream and sends basic.cancel if subscribed.
    func removeConsumer(tag: String, error: (any Error)? = nil) {
        let registration = state.withLock { state -> ConsumerRegistration? in
            guard let registration = state.consumers.removeValue(forKey: tag) else { return nil }
            // Queued even while disconnected: a reconnect may be subscribing it right now.
            if state.lifecycle == .running && !state.stopRequested {
                state.work.append(.unsubscribe(tag: tag))
            }
            return registration
        }
        guard let registration else { return }
        registration.continuation.finish(throwing: error)
        wakeup.signal()
    }

    func consumer(tag: String) -> ConsumerRegistration? {
        state.withLock { $0.consumers[tag] }
    }

    /// Marks the client connected to `node`, or disconnected (`nil`); wakes connect waiters on connect.
    func setConnected(to node: AMQPConfiguration.Node?) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.connectedNode = node
            guard node != nil else { return [] }
            state.connectionsOpened += 1
            state.lastConnectError = nil
            defer { state.connectWaiters = [:] }
            return Array(state.connectWaiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    func resumeConnectWaiter(id: UInt64, with error: any Error) {
        let waiter = state.withLock { $0.connectWaiters.removeValue(forKey: id) }
        waiter?.resume(throwing: error)
    }

    /// Called by the connection thread when it has closed everything: fails what is left and wakes waiters.
    func finish() {
        let (work, consumers, connectWaiters, finishWaiters) = state.withLock { state in
            state.lifecycle = .stopped
            state.connectedNode = nil
            state.stopRequested = true
            defer {
                state.work = []
                state.consumers = [:]
                state.connectWaiters = [:]
                state.finishWaiters = []
            }
            return (
                state.work, Array(state.consumers.values), Array(state.connectWaiters.values), state.finishWaiters
            )
        }
        let error = AMQPError(code: .shutdown, message: "the AMQP client has shut down")
        for item in work { item.fail(error) }
        for consumer in consumers { consumer.continuation.finish() }
        for waiter in connectWaiters { waiter.resume(throwing: error) }
        for waiter in finishWaiters { waiter.resume() }
    }
}
