import Foundation
public import Logging
public import ServiceLifecycle

/// An AMQP 0-9-1 client for RabbitMQ over rabbitmq-c, run as a swift-service-lifecycle `Service`.
///
/// One dedicated thread owns the connection (rabbitmq-c is not thread-safe); async methods hand work to it and
/// suspend until it is done. Channel 1 carries consumers and acks, channel 2 publishes in confirm mode, channel 3
/// runs declarations and other RPCs. ``run()`` connects, declares the topology, (re-)subscribes consumers and
/// reconnects with exponential backoff and jitter after any loss. Given a cluster's nodes, it connects to one (a
/// random one first, see ``AMQPConfiguration/startsAtRandomNode``) and moves to the next one after each failed
/// attempt or lost connection; publishes awaiting a confirm when a connection goes fail with
/// ``AMQPError/Code/connectionLost`` (the caller republishes), deliveries of the lost connection are redelivered by
/// the broker.
///
/// Operations issued while disconnected fail fast with ``AMQPError/Code/notConnected`` (retriable); use
/// ``waitUntilConnected(timeout:)`` to wait for a connection first.
public final class AMQPClient: Sendable, Service {
    private let core: ClientCore

    /// Creates a client. Nothing happens until ``run()`` is called.
    /// - Parameters:
    ///   - configuration: where and how to connect.
    ///   - topology: declared on every (re)connect before consumers are subscribed.
    ///   - logger: receives connection events with metadata `amqp.connection`; passwords are never logged.
    public init(configuration: AMQPConfiguration, topology: AMQPTopology = .init(), logger: Logger) {
        core = ClientCore(configuration: configuration, topology: topology, logger: logger)
    }

    /// Owns the connection until a graceful shutdown, ``shutdown()`` or task cancellation, then closes the
    /// channels and the connection cleanly and returns.
    ///
    /// - Throws: ``AMQPError/Code/shutdown`` if called a second time while running.
    public func run() async throws {
        let start = core.state.withLock { state -> Bool? in
            switch state.lifecycle {
            case .idle:
                state.lifecycle = .running
                return true
            case .running: return false
            case .stopped: return nil
            }
        }
        guard let start else { return }
        guard start else { throw AMQPError(code: .shutdown, message: "AMQPClient.run() is already running") }
        let core = self.core
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    core.state.withLock { $0.finishWaiters.append(continuation) }
                    let worker = ConnectionWorker(core: core)
                    let thread = Thread {
                        // Named from inside (Linux names only the calling thread) and within 15 bytes.
                        Thread.current.name = "relay-amqp"
                        worker.run()
                    }
                    thread.start()
                }
            } onCancel: {
                core.requestStop()
            }
        } onGracefulShutdown: {
            core.requestStop()
        }
    }

    /// Whether the client currently has an open, usable connection.
    public var isConnected: Bool {
        core.state.withLock { $0.isConnected }
    }

    /// Connections opened so far: 1 after the first connect, one more after each reconnect. A reconnect can be
    /// seen here even when the gap in ``isConnected`` was too short to observe.
    public var connectionsOpened: Int {
        core.state.withLock { $0.connectionsOpened }
    }

    /// Writes (`send` batches) of framed publishes and acks so far: with
    /// ``AMQPConfiguration/writeBatchingDelay``, calls made together share one.
    public var framedWrites: Int {
        core.framedWrites.load(ordering: .relaxed)
    }

    /// The broker node of the open connection (one of the configuration's ``AMQPConfiguration/nodes``), `nil`
    /// while disconnected.
    public var connectedNode: AMQPConfiguration.Node? {
        core.state.withLock { $0.connectedNode }
    }

    /// Suspends until the client is connected.
    /// - Throws: ``AMQPError/Code/timeout`` after `timeout` (its message includes why the last connection attempt
    ///   failed, e.g. ACCESS_REFUSED), ``AMQPError/Code/shutdown`` if the client stops, `CancellationError` if the
    ///   task is cancelled.
    public func waitUntilConnected(timeout: Duration) async throws {
        let core = self.core
        let id = core.state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timer = Task {
            try await Task.sleep(for: timeout)
            let lastError = core.state.withLock { $0.lastConnectError }
            let reason = lastError.map { " (last attempt: \($0))" } ?? ""
            core.resumeConnectWaiter(
                id: id,
                with: AMQPError(code: .timeout, message: "not connected to the AMQP broker after \(timeout)\(reason)"))
        }
        defer { timer.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let immediate = core.state.withLock { state -> Result<Void, AMQPError>? in
                    if state.isConnected { return .success(()) }
                    if state.lifecycle == .stopped || state.stopRequested {
                        return .failure(AMQPError(code: .shutdown, message: "the AMQP client has shut down"))
                    }
                    state.connectWaiters[id] = continuation
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            core.resumeConnectWaiter(id: id, with: CancellationError())
        }
    }

    /// Starts consuming `queue` with manual acknowledgements and a per-consumer prefetch (`basic.qos`).
    ///
    /// Can be called before ``run()`` or while disconnected: the consumer is subscribed as soon as a connection
    /// is up, and again after every reconnect.
    public func consume(queue: String, prefetch: UInt16) -> AMQPConsumer {
        let tag = "\(core.configuration.connectionName).\(UUID().uuidString.lowercased())"
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: AMQPDelivery.self, throwing: (any Error).self)
        let core = self.core
        continuation.onTermination = { _ in core.removeConsumer(tag: tag) }
        let registration = ConsumerRegistration(tag: tag, queue: queue, prefetch: prefetch, continuation: continuation)
        let accepted = core.state.withLock { state -> Bool in
            guard !state.stopRequested, state.lifecycle != .stopped else { return false }
            state.consumers[tag] = registration
            return true
        }
        if accepted {
            core.submit(.subscribe(tag: tag))
        } else {
            continuation.finish()
        }
        return AMQPConsumer(queue: queue, consumerTag: tag, stream: stream, core: core)
    }

    /// Acknowledges a delivery.
    /// - Throws: ``AMQPError/Code/staleDelivery`` (without sending anything) if it came from an earlier
    ///   connection/channel or was already settled; the broker redelivers such messages.
    public func ack(_ delivery: AMQPDelivery) async throws {
        try await settle(delivery, .ack)
    }

    /// Queues the ack of a delivery and returns at once: the connection thread writes it with the next batch of
    /// acks (``ack(_:)`` waits for that write). Nothing is reported back: an ack that cannot be written (the
    /// delivery is stale, the connection went away) leaves the message unacked, and the broker redelivers it, as
    /// it would after a failed ``ack(_:)``. For callers whose next step does not depend on the ack being written.
    /// - Throws: only for a delivery settled locally (``AMQPDelivery/localSettlement``) that was settled before.
    public func ackSoon(_ delivery: AMQPDelivery) throws {
        if let local = delivery.localSettlement {
            try local.settle(.ack)
            return
        }
        core.submit(.settle(delivery, .ack, nil))
    }

    /// Negatively acknowledges a delivery (`basic.nack`), optionally requeueing it.
    /// - Throws: ``AMQPError/Code/staleDelivery`` as for ``ack(_:)``.
    public func nack(_ delivery: AMQPDelivery, requeue: Bool) async throws {
        try await settle(delivery, .nack(requeue: requeue))
    }

    /// Rejects a delivery (`basic.reject`), optionally requeueing it.
    /// - Throws: ``AMQPError/Code/staleDelivery`` as for ``ack(_:)``.
    public func reject(_ delivery: AMQPDelivery, requeue: Bool) async throws {
        try await settle(delivery, .reject(requeue: requeue))
    }

    private func settle(_ delivery: AMQPDelivery, _ settlement: WorkItem.Settlement) async throws {
        if let local = delivery.localSettlement {
            switch settlement {
            case .ack: try local.settle(.ack)
            case .nack(let requeue): try local.settle(.nack(requeue: requeue))
            case .reject(let requeue): try local.settle(.reject(requeue: requeue))
            }
            return
        }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            core.submit(.settle(delivery, settlement, continuation))
        }
    }

    /// Publishes a message and returns once the broker has confirmed it (publisher confirms, pipelined: any
    /// number of concurrent calls share the connection).
    /// - Throws: ``AMQPError/Code/publishNacked`` on `basic.nack`; ``AMQPError/Code/unroutable`` for a returned
    ///   mandatory message; ``AMQPError/Code/channelClosed`` (e.g. 404 for a missing exchange);
    ///   ``AMQPError/Code/connectionLost`` (retriable) if the connection dropped before the confirm;
    ///   ``AMQPError/Code/notConnected`` while disconnected.
    public func publish(_ message: AMQPMessage) async throws {
        // Unsafe (no checking canary, one allocation less per publish): the connection thread resolves each publish
        // once, by its confirm, a return, or the failure of the channel or connection.
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            core.submit(.publish(message, continuation))
        }
    }

    /// Declares a topology once, now (it is not re-declared on reconnect).
    public func declare(_ topology: AMQPTopology) async throws {
        _ = try await perform(.declare(topology))
    }

    /// Fetches one message with `basic.get` (manual ack), or `nil` if the queue is empty.
    public func get(queue: String) async throws -> AMQPDelivery? {
        guard case .delivery(let delivery) = try await perform(.get(queue: queue)) else { return nil }
        return delivery
    }

    /// The number of ready messages and consumers of a queue (passive `queue.declare`).
    /// - Throws: ``AMQPError/Code/channelClosed`` with `replyCode` 404 if the queue does not exist.
    public func messageCount(queue: String) async throws -> (messages: UInt32, consumers: UInt32) {
        guard case .counts(let messages, let consumers) = try await perform(.messageCount(queue: queue)) else {
            throw AMQPError(code: .protocolError, message: "unexpected reply to a passive declare")
        }
        return (messages, consumers)
    }

    /// Removes all ready messages from a queue; returns how many were purged.
    public func purge(queue: String) async throws -> UInt32 {
        guard case .count(let count) = try await perform(.purge(queue: queue)) else { return 0 }
        return count
    }

    /// Deletes a queue (unconditionally).
    public func deleteQueue(_ name: String) async throws {
        _ = try await perform(.deleteQueue(name))
    }

    /// Deletes an exchange (unconditionally).
    public func deleteExchange(_ name: String) async throws {
        _ = try await perform(.deleteExchange(name))
    }

    private func perform(_ operation: WorkItem.Operation) async throws -> WorkItem.OperationResult {
        try await withCheckedThrowingContinuation { continuation in
            core.submit(.operation(operation, continuation))
        }
    }

    /// Shuts down like a graceful shutdown: finishes consumers, waits briefly for outstanding confirms, closes
    /// the channels and the connection, and returns once ``run()`` has finished (immediately if it never ran).
    public func shutdown() async {
        let core = self.core
        let idle = core.state.withLock { state -> Bool in
            state.stopRequested = true
            return state.lifecycle == .idle
        }
        if idle {
            core.finish()
            return
        }
        core.wakeup.signal()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = core.state.withLock { state -> Bool in
                if state.lifecycle == .stopped { return true }
                state.finishWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}
