import Testing

@testable import AMQP

@Suite("ConnectionStateMachine: connect, serve, back off, shut down")
struct ConnectionStateMachineTests {
    private func machine(jitter: Double = 1) -> ConnectionStateMachine {
        ConnectionStateMachine(initialBackoff: .milliseconds(100), maximumBackoff: .seconds(1), jitter: { jitter })
    }

    /// A readable rendering of actions, so expectations compare whole sequences.
    private func names(_ actions: [ConnectionStateMachine.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .connect: "connect"
            case .resubscribe: "resubscribe"
            case .serve: "serve"
            case .close: "close"
            case .reportConnectFailure(let error, let attempt): "reportConnectFailure(\(error.code), \(attempt))"
            case .reportConnectionLost(let error): "reportConnectionLost(\(error.code))"
            case .reportUnexpectedFailure(let error): "reportUnexpectedFailure(\(error.code))"
            case .failWaiters(let error): "failWaiters(\(error.code))"
            case .scheduleReconnect(let delay, let attempt): "scheduleReconnect(\(delay), \(attempt))"
            case .finish: "finish"
            }
        }
    }

    private func failWaitersError(_ actions: [ConnectionStateMachine.Action]) -> AMQPError? {
        for action in actions { if case .failWaiters(let error) = action { return error } }
        return nil
    }

    private let refused = AMQPError(code: .connectionFailed, message: "connection refused")

    /// Drives a fresh machine up to a served connection.
    private func connected(_ machine: inout ConnectionStateMachine) {
        let connect = machine.start(stopRequested: false)
        #expect(names(connect) == ["connect"])
        let resubscribe = machine.handshakeCompleted()
        #expect(names(resubscribe) == ["resubscribe"])
        let serve = machine.resubscribed()
        #expect(names(serve) == ["serve"])
        #expect(machine.state == .connected)
    }

    @Test func connectsResubscribesServesAndClosesOnStop() {
        var machine = machine()
        connected(&machine)
        let closing = machine.serveEnded()
        #expect(names(closing) == ["close"])
        #expect(machine.state == .shuttingDown)
        let actions = machine.closed()
        #expect(names(actions) == ["failWaiters(shutdown)", "finish"])
        #expect(failWaitersError(actions)?.message == "the AMQP client is shutting down")
        #expect(machine.state == .finished)
    }

    @Test func stopBeforeTheFirstAttemptFinishesWithoutConnecting() {
        var machine = machine()
        let actions = machine.start(stopRequested: true)
        #expect(names(actions) == ["finish"])
        #expect(machine.state == .finished)
    }

    @Test func failedAttemptsBackOffExponentiallyUpToTheMaximum() {
        var machine = machine()
        _ = machine.start(stopRequested: false)
        var delays: [String] = []
        for attempt in 1...6 {
            let actions = machine.failed(.loss(refused), stopRequested: false)
            #expect(
                names(actions).prefix(2)
                    == ["reportConnectFailure(connectionFailed, \(attempt))", "failWaiters(connectionLost)"])
            #expect(machine.state == .backingOff(failures: attempt))
            guard case .scheduleReconnect(let delay, let next)? = actions.last else {
                Issue.record("no reconnect scheduled after attempt \(attempt)")
                return
            }
            #expect(next == attempt)
            delays.append("\(delay)")
            let retry = machine.backoffEnded(stopRequested: false)
            #expect(names(retry) == ["connect"])
            #expect(machine.state == .connecting(failures: attempt))
        }
        #expect(delays == ["0.1 seconds", "0.2 seconds", "0.4 seconds", "0.8 seconds", "1.0 seconds", "1.0 seconds"])
    }

    @Test func jitterScalesTheDelay() {
        #expect(machine(jitter: 0.5).backoff(afterFailures: 0) == .milliseconds(50))
        #expect(machine(jitter: 0.5).backoff(afterFailures: 100) == .milliseconds(500))
    }

    @Test func aFailedResubscribeStillCountsAsAFailedConnectAttempt() {
        var machine = machine()
        _ = machine.start(stopRequested: false)
        _ = machine.handshakeCompleted()
        let actions = machine.failed(.loss(refused), stopRequested: false)
        #expect(names(actions).first == "reportConnectFailure(connectionFailed, 1)")
    }

    @Test func lossOfAnEstablishedConnectionReconnectsFromTheFirstDelay() {
        var machine = machine()
        _ = machine.start(stopRequested: false)
        _ = machine.failed(.loss(refused), stopRequested: false)
        _ = machine.backoffEnded(stopRequested: false)
        _ = machine.failed(.loss(refused), stopRequested: false)
        _ = machine.backoffEnded(stopRequested: false)
        _ = machine.handshakeCompleted()
        _ = machine.resubscribed()
        let lost = AMQPError(code: .connectionClosed, message: "CONNECTION_FORCED", replyCode: 320)
        let actions = machine.failed(.loss(lost), stopRequested: false)
        #expect(
            names(actions) == [
                "reportConnectionLost(connectionClosed)", "failWaiters(connectionLost)",
                "scheduleReconnect(0.1 seconds, 1)",
            ])
        #expect(machine.state == .backingOff(failures: 1))
    }

    @Test func lossWithOutstandingConfirmsFailsThemRetriablyWithTheReason() throws {
        var machine = machine()
        connected(&machine)
        var confirms = PublisherConfirms<String>()
        for name in ["a", "b"] { confirms.register(name, exchange: "x", returnKey: nil) }
        let lost = AMQPError(code: .connectionClosed, message: "CONNECTION_FORCED", replyCode: 320)
        let error = try #require(failWaitersError(machine.failed(.loss(lost), stopRequested: false)))
        let failed = confirms.failAll { _ in error }
        #expect(failed.map(\.waiter) == ["a", "b"])
        for resolution in failed {
            guard case .failure(let error) = resolution.result else {
                Issue.record("\(resolution.waiter) succeeded after a connection loss")
                continue
            }
            #expect(error.code == .connectionLost)
            #expect(error.isRetriable)
            #expect(error.replyCode == 320)
            #expect(error.message == "connection lost before the broker confirmed: CONNECTION_FORCED")
        }
        #expect(confirms.isEmpty)
    }

    @Test func shutdownDuringBackoffFinishesWithoutAnotherAttempt() {
        var machine = machine()
        _ = machine.start(stopRequested: false)
        _ = machine.failed(.loss(refused), stopRequested: false)
        #expect(machine.state == .backingOff(failures: 1))
        let actions = machine.backoffEnded(stopRequested: true)
        #expect(names(actions) == ["finish"])
        #expect(machine.state == .finished)
    }

    @Test func lossWhileAStopIsRequestedFinishesInsteadOfReconnecting() {
        var machine = machine()
        connected(&machine)
        let actions = machine.failed(.loss(refused), stopRequested: true)
        #expect(names(actions) == ["reportConnectionLost(connectionFailed)", "failWaiters(connectionLost)", "finish"])
        #expect(machine.state == .finished)
    }

    @Test func lossDuringTheCloseFinishes() {
        var machine = machine()
        connected(&machine)
        _ = machine.serveEnded()
        let actions = machine.failed(.loss(refused), stopRequested: false)
        #expect(names(actions) == ["reportConnectionLost(connectionFailed)", "failWaiters(connectionLost)", "finish"])
        #expect(machine.state == .finished)
    }

    @Test func unexpectedFailuresAreReportedAsSuchAndReconnect() {
        var machine = machine()
        _ = machine.start(stopRequested: false)
        let bug = AMQPError(code: .connectionLost, message: "something odd")
        let actions = machine.failed(.unexpected(bug), stopRequested: false)
        #expect(
            names(actions) == [
                "reportUnexpectedFailure(connectionLost)", "failWaiters(connectionLost)",
                "scheduleReconnect(0.1 seconds, 1)",
            ])
        #expect(failWaitersError(actions)?.message == "connection lost before the broker confirmed: something odd")
    }

    /// The node of the `connect` action in `actions`, if there is one.
    private func connectNode(_ actions: [ConnectionStateMachine.Action]) -> Int? {
        for action in actions { if case .connect(let node) = action { return node } }
        return nil
    }

    @Test func aSingleNodeIsAlwaysTheOneTried() {
        var machine = machine()
        #expect(connectNode(machine.start(stopRequested: false)) == 0)
        for _ in 1...3 {
            _ = machine.failed(.loss(refused), stopRequested: false)
            #expect(connectNode(machine.backoffEnded(stopRequested: false)) == 0)
        }
    }

    @Test func eachFailedAttemptMovesToTheNextNodeWrappingAround() {
        var machine = ConnectionStateMachine(
            initialBackoff: .milliseconds(100), maximumBackoff: .seconds(1), nodeCount: 3, firstNode: 1,
            jitter: { 1 })
        var tried = [connectNode(machine.start(stopRequested: false))]
        for _ in 1...4 {
            _ = machine.failed(.loss(refused), stopRequested: false)
            tried.append(connectNode(machine.backoffEnded(stopRequested: false)))
        }
        #expect(tried == [1, 2, 0, 1, 2])
    }

    @Test func aLostConnectionReconnectsToTheNextNodeAfterTheFirstDelay() {
        var machine = ConnectionStateMachine(
            initialBackoff: .milliseconds(100), maximumBackoff: .seconds(1), nodeCount: 3, firstNode: 2,
            jitter: { 1 })
        #expect(connectNode(machine.start(stopRequested: false)) == 2)
        _ = machine.handshakeCompleted()
        _ = machine.resubscribed()
        let lost = AMQPError(code: .connectionClosed, message: "CONNECTION_FORCED", replyCode: 320)
        let actions = machine.failed(.loss(lost), stopRequested: false)
        #expect(names(actions).last == "scheduleReconnect(0.1 seconds, 1)")
        #expect(machine.node == 0)
        #expect(connectNode(machine.backoffEnded(stopRequested: false)) == 0)
    }

    @Test func aShutdownReasonIsPassedToWaitersUnchanged() {
        let shutdown = AMQPError(code: .shutdown, message: "bye")
        let error = ConnectionStateMachine.pendingError(after: shutdown)
        #expect(error.code == .shutdown)
        #expect(error.message == "bye")
    }
}
