/// The connection thread's life: connect, serve, back off and reconnect after a loss, shut down.
///
/// With several broker nodes (a cluster), every attempt names the node to try; after each failed attempt or lost
/// connection the next attempt goes to the next node in the list (wrapping around), after the same backoff.
///
/// Each event method moves the state and returns the actions the worker must run, in order. The machine does no
/// I/O, takes no lock and reads no clock, so every transition is unit-tested; the worker runs the actions (outside
/// any lock) and reports back what happened through the next event.
struct ConnectionStateMachine {
    /// Where the connection thread is.
    enum State: Equatable {
        /// ``start(stopRequested:)`` has not been called.
        case idle
        /// Opening a connection; `failures` attempts in a row failed before this one.
        case connecting(failures: Int)
        /// The connection is up and served.
        case connected
        /// Waiting before the next attempt; `failures` attempts in a row failed.
        case backingOff(failures: Int)
        /// Draining and closing the connection after a stop request.
        case shuttingDown
        /// Everything is closed and failed; the thread ends.
        case finished
    }

    /// Why the connection (or the attempt to open it) failed.
    enum Failure {
        /// The broker, the network or the library failed; an expected condition.
        case loss(AMQPError)
        /// Anything else (a bug); logged as an error.
        case unexpected(AMQPError)
    }

    /// A side effect for the worker.
    enum Action {
        /// Open the socket to node number `node` (an index into the configured nodes), log in, open the channels,
        /// enable confirms, declare the topology (blocking); then report
        /// ``ConnectionStateMachine/handshakeCompleted()`` or ``ConnectionStateMachine/failed(_:stopRequested:)``.
        case connect(node: Int)
        /// Subscribe every registered consumer on the fresh consume channel; then report
        /// ``ConnectionStateMachine/resubscribed()`` or a failure.
        case resubscribe
        /// Mark the client connected and serve work and frames until a stop is requested; then report
        /// ``ConnectionStateMachine/serveEnded()`` or a failure.
        case serve
        /// Finish consumers, run queued work, wait (bounded) for confirms and close the connection politely; then
        /// report ``ConnectionStateMachine/closed()`` or a failure.
        case close
        /// Remember and log why this connection attempt failed (`attempt` counts from 1).
        case reportConnectFailure(AMQPError, attempt: Int)
        /// Log that an established connection was lost.
        case reportConnectionLost(AMQPError)
        /// Log an unexpected failure.
        case reportUnexpectedFailure(AMQPError)
        /// Forget the connection: mark the client disconnected and fail everything waiting on it (outstanding
        /// confirms) with this error.
        case failWaiters(AMQPError)
        /// Wait `after` (failing work that needs a connection meanwhile, waking early on a stop request) before
        /// attempt number `attempt`; then report ``ConnectionStateMachine/backoffEnded(stopRequested:)``.
        case scheduleReconnect(after: Duration, attempt: Int)
        /// Fail what is left, wake ``AMQPClient/run()``; the thread ends.
        case finish
    }

    /// The current state.
    private(set) var state = State.idle
    /// The node the current (or next) attempt goes to.
    private(set) var node: Int

    private let nodeCount: Int

    private let initialBackoff: Duration
    private let maximumBackoff: Duration
    /// A factor in 0.5...1 that spreads reconnects of many clients.
    private let jitter: () -> Double

    /// Creates a machine in ``State/idle`` for `nodeCount` nodes, whose first attempt goes to node `firstNode`;
    /// `jitter` returns the factor applied to each backoff delay.
    init(
        initialBackoff: Duration, maximumBackoff: Duration, nodeCount: Int = 1, firstNode: Int = 0,
        jitter: @escaping () -> Double = { Double.random(in: 0.5...1.0) }
    ) {
        precondition(nodeCount > 0 && (0..<nodeCount).contains(firstNode), "bad node \(firstNode) of \(nodeCount)")
        self.nodeCount = nodeCount
        self.node = firstNode
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
        self.jitter = jitter
    }

    /// The thread starts.
    mutating func start(stopRequested: Bool) -> [Action] {
        guard case .idle = state else { preconditionFailure("start() in state \(state)") }
        return attempt(failures: 0, stopRequested: stopRequested)
    }

    /// ``Action/connect`` succeeded: the channels and the topology are ready.
    mutating func handshakeCompleted() -> [Action] {
        guard case .connecting = state else { preconditionFailure("handshakeCompleted() in state \(state)") }
        return [.resubscribe]
    }

    /// ``Action/resubscribe`` succeeded: the connection counts as established from here on.
    mutating func resubscribed() -> [Action] {
        guard case .connecting = state else { preconditionFailure("resubscribed() in state \(state)") }
        state = .connected
        return [.serve]
    }

    /// ``Action/serve`` returned because a stop was requested.
    mutating func serveEnded() -> [Action] {
        guard case .connected = state else { preconditionFailure("serveEnded() in state \(state)") }
        state = .shuttingDown
        return [.close]
    }

    /// ``Action/close`` finished: the connection is closed.
    mutating func closed() -> [Action] {
        guard case .shuttingDown = state else { preconditionFailure("closed() in state \(state)") }
        state = .finished
        return [.failWaiters(AMQPError(code: .shutdown, message: "the AMQP client is shutting down")), .finish]
    }

    /// ``Action/connect``, ``Action/resubscribe``, ``Action/serve`` or ``Action/close`` failed.
    mutating func failed(_ failure: Failure, stopRequested: Bool) -> [Action] {
        let failures: Int
        var actions: [Action] = []
        let reason: AMQPError
        switch failure {
        case .loss(let error): reason = error
        case .unexpected(let error):
            reason = error
            actions.append(.reportUnexpectedFailure(error))
        }
        switch state {
        case .connecting(let previous):
            failures = previous
            if case .loss = failure { actions.append(.reportConnectFailure(reason, attempt: previous + 1)) }
        case .connected, .shuttingDown:
            failures = 0
            if case .loss = failure { actions.append(.reportConnectionLost(reason)) }
        case .idle, .backingOff, .finished:
            preconditionFailure("failed() in state \(state)")
        }
        actions.append(.failWaiters(Self.pendingError(after: reason)))
        if stopRequested || state == .shuttingDown {
            state = .finished
            actions.append(.finish)
        } else {
            state = .backingOff(failures: failures + 1)
            node = (node + 1) % nodeCount
            actions.append(.scheduleReconnect(after: backoff(afterFailures: failures), attempt: failures + 1))
        }
        return actions
    }

    /// The wait of ``Action/scheduleReconnect(after:attempt:)`` is over (or a stop cut it short).
    mutating func backoffEnded(stopRequested: Bool) -> [Action] {
        guard case .backingOff(let failures) = state else { preconditionFailure("backoffEnded() in state \(state)") }
        return attempt(failures: failures, stopRequested: stopRequested)
    }

    private mutating func attempt(failures: Int, stopRequested: Bool) -> [Action] {
        if stopRequested {
            state = .finished
            return [.finish]
        }
        state = .connecting(failures: failures)
        return [.connect(node: node)]
    }

    /// The delay before the next attempt: doubling from the initial backoff, capped, with jitter.
    func backoff(afterFailures failures: Int) -> Duration {
        var delay = initialBackoff
        for _ in 0..<min(failures, 30) {
            delay = delay * 2
            if delay >= maximumBackoff { break }
        }
        delay = min(delay, maximumBackoff)
        return delay * jitter()
    }

    /// What a publish still awaiting its confirm fails with when the connection goes for `reason`.
    static func pendingError(after reason: AMQPError) -> AMQPError {
        guard reason.code != .shutdown else { return reason }
        return AMQPError(
            code: .connectionLost, message: "connection lost before the broker confirmed: \(reason.message)",
            replyCode: reason.replyCode, isRetriable: true)
    }
}
