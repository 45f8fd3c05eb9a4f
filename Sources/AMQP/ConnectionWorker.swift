import CRabbitMQ
import Foundation
import Glibc
import Logging
import Synchronization

/// The connection thread: owns the rabbitmq-c connection and every piece of per-connection state.
///
/// `@unchecked Sendable`: the instance is handed to its thread once at start; after that only that thread touches
/// its mutable state. Other threads talk to it exclusively through ``ClientCore`` (Mutex + eventfd).
final class ConnectionWorker: @unchecked Sendable {
    static let consumeChannel: UInt16 = 1
    static let publishChannel: UInt16 = 2
    static let rpcChannel: UInt16 = 3

    private let core: ClientCore
    private var logger: Logger { core.logger }
    private var configuration: AMQPConfiguration { core.configuration }
    private var connection: ConnectionHandle?
    /// The index (in the configuration's nodes) of the node of ``connection``, or of the attempt under way.
    private var nodeIndex = 0
    private var node: AMQPConfiguration.Node { configuration.nodes[nodeIndex] }

    /// Publishes on the publish channel awaiting their confirm.
    private var confirms = PublisherConfirms<UnsafeContinuation<Void, any Error>>()
    /// Consumers subscribed on the consume channel.
    private var subscriptions = ConsumerSubscriptions()
    /// Deliveries and returns being assembled from their frames.
    private var content = ContentAssembly()
    /// Deliveries that can still be settled.
    private var deliveries = UnsettledDeliveries()
    /// Acks of consumed deliveries taken from the work queue but not written yet: ``flushAcks()`` sends them
    /// together, as one `basic.ack` with `multiple` where they form the oldest unsettled tags.
    private var pendingAcks = PendingAcks<CheckedContinuation<Void, any Error>?>()
    /// Publishes and acks framed here and written together (plain TCP; see ``FrameWriter``).
    private var output = FrameWriter()
    /// The C arguments of publishes (one block, carved again by every publish; worker thread only).
    private let publishArena = CArena()

    init(core: ClientCore) {
        self.core = core
    }

    private var stopRequested: Bool { core.state.withLock { $0.stopRequested } }

    // MARK: - Thread main loop

    /// Runs the connect / serve / reconnect loop until a stop is requested. Blocks the calling (dedicated) thread.
    func run() {
        let nodes = configuration.nodes
        var machine = ConnectionStateMachine(
            initialBackoff: configuration.reconnectInitialBackoff, maximumBackoff: configuration.reconnectMaxBackoff,
            nodeCount: nodes.count, firstNode: configuration.startsAtRandomNode ? Int.random(in: nodes.indices) : 0)
        var actions = machine.start(stopRequested: stopRequested)
        while !actions.isEmpty {
            let action = actions.removeFirst()
            do {
                actions += try execute(action, machine: &machine)
            } catch let loss as ConnectionLoss {
                actions += machine.failed(.loss(loss.error), stopRequested: stopRequested)
            } catch {
                let failure = AMQPError(code: .connectionLost, message: "\(error)")
                actions += machine.failed(.unexpected(failure), stopRequested: stopRequested)
            }
        }
        logger.info("AMQP client stopped")
    }

    /// Runs one action of the state machine; returns the actions of the event it led to.
    private func execute(
        _ action: ConnectionStateMachine.Action, machine: inout ConnectionStateMachine
    ) throws -> [ConnectionStateMachine.Action] {
        switch action {
        case .connect(let index):
            nodeIndex = index
            try connect()
            return machine.handshakeCompleted()
        case .resubscribe:
            try subscribeAll()
            return machine.resubscribed()
        case .serve:
            core.setConnected(to: node)
            var metadata: Logger.Metadata = ["amqp.endpoint": "\(node)"]
            if configuration.nodes.count > 1 {
                metadata["amqp.node"] = "\(nodeIndex + 1)/\(configuration.nodes.count)"
            }
            logger.info("AMQP connected", metadata: metadata)
            try serve()
            return machine.serveEnded()
        case .close:
            try drainBeforeClose()
            gracefulClose()
            return machine.closed()
        case .reportConnectFailure(let error, let attempt):
            core.state.withLock { $0.lastConnectError = error }
            logger.warning(
                "AMQP connect failed",
                metadata: ["amqp.reason": "\(error)", "amqp.attempt": "\(attempt)", "amqp.endpoint": "\(node)"])
        case .reportConnectionLost(let error):
            logger.warning("AMQP connection lost", metadata: ["amqp.reason": "\(error)", "amqp.endpoint": "\(node)"])
        case .reportUnexpectedFailure(let error):
            logger.error("AMQP connection failed unexpectedly", metadata: ["amqp.reason": "\(error.message)"])
        case .failWaiters(let error):
            dropConnection(failing: error)
        case .scheduleReconnect(let delay, let attempt):
            logger.info("AMQP reconnecting", metadata: ["amqp.delay": "\(delay)", "amqp.attempt": "\(attempt)"])
            waitWhileDisconnected(for: delay)
            return machine.backoffEnded(stopRequested: stopRequested)
        case .finish:
            core.finish()
        }
        return []
    }

    /// Sleeps (interruptibly) between connection attempts, failing work that needs a connection.
    private func waitWhileDisconnected(for delay: Duration) {
        let clock = ContinuousClock()
        let deadline = clock.now + delay
        while !stopRequested {
            failQueuedWork()
            let remaining = clock.now.duration(to: deadline)
            if remaining <= .zero { break }
            var descriptor = pollfd(fd: core.wakeup.descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, Int32(max(1, remaining.milliseconds)))
            core.wakeup.drain()
        }
        failQueuedWork()
    }

    private func failQueuedWork() {
        let items = core.state.withLock { state in
            defer { state.work = [] }
            return state.work
        }
        for item in items {
            switch item {
            case .settle:
                item.fail(AMQPError(code: .staleDelivery, message: "the connection this delivery came from is gone"))
            default: item.fail(AMQPError(code: .notConnected, message: "not connected to the AMQP broker"))
            }
        }
    }

    /// Serves one connection until a stop is requested (returns) or the connection fails (throws).
    private func serve() throws {
        while !stopRequested {
            try serveOnce()
        }
    }

    private func serveOnce() throws {
        guard let connection else {
            throw ConnectionLoss(error: AMQPError(code: .notConnected, message: "no connection"))
        }
        let items = core.state.withLock { state in
            defer { state.work = [] }
            return state.work
        }
        for (index, item) in items.enumerated() {
            do {
                try handle(item)
            } catch {
                for rest in items[(index + 1)...] { rest.failForLostConnection() }
                throw error
            }
            if index % 256 == 255 {
                try flushAcks()
                try pumpFrames()
            }
        }
        try flushAcks()
        try pumpFrames()
        let hasMoreWork = core.state.withLock { !$0.work.isEmpty || $0.stopRequested }
        if hasMoreWork { return }
        var descriptors = [
            pollfd(fd: amqp_get_sockfd(connection.state), events: Int16(POLLIN), revents: 0),
            pollfd(fd: core.wakeup.descriptor, events: Int16(POLLIN), revents: 0),
        ]
        _ = poll(&descriptors, 2, pollTimeoutMilliseconds)
        if descriptors[1].revents != 0 {
            core.wakeup.drain()
            // Woken by new work after running out of it: let the other callers' work of this moment join it, so it
            // goes out in one write and the broker takes it as one batch (AMQPConfiguration.writeBatchingDelay).
            if batchingDelayMicroseconds > 0 { usleep(batchingDelayMicroseconds) }
        }
        try pumpFrames()
    }

    private var batchingDelayMicroseconds: UInt32 {
        let delay = configuration.writeBatchingDelay
        guard delay > .zero else { return 0 }
        return UInt32(clamping: delay.components.seconds * 1_000_000 + delay.components.attoseconds / 1_000_000_000_000)
    }

    private var pollTimeoutMilliseconds: Int32 {
        if configuration.useTLS { return 10 }
        let heartbeatSeconds = connection.map { Int(amqp_get_heartbeat($0.state)) } ?? 0
        guard heartbeatSeconds > 0 else { return 1000 }
        return Int32(min(1000, heartbeatSeconds * 500))
    }

    /// Reads and dispatches every frame available without blocking (also drives heartbeats).
    private func pumpFrames() throws {
        // rabbitmq-c may send a heartbeat while reading: after the buffered frames.
        try flushOutput()
        guard let connection else { return }
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        for _ in 0..<4096 {
            var frame = amqp_frame_t()
            let status = amqp_simple_wait_frame_noblock(connection.state, &frame, &zero)
            if status == AMQP_STATUS_TIMEOUT.rawValue { break }
            guard status == AMQP_STATUS_OK.rawValue else {
                throw ConnectionLoss(error: Self.libraryError(status, context: "reading from the broker"))
            }
            try dispatch(frame)
        }
        amqp_maybe_release_buffers(connection.state)
    }

    /// Stop sequence: finish consumers, run queued work, wait (bounded) for outstanding confirms.
    private func drainBeforeClose() throws {
        let consumers = core.state.withLock { state in
            defer { state.consumers = [:] }
            return Array(state.consumers.values)
        }
        for consumer in consumers {
            consumer.continuation.finish()
            try sendCancel(tag: consumer.tag)
        }
        let items = core.state.withLock { state in
            defer { state.work = [] }
            return state.work
        }
        for item in items { try handle(item) }
        try flushAcks()
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(5)
        while !confirms.isEmpty && clock.now < deadline {
            guard let connection else { return }
            var descriptor = pollfd(fd: amqp_get_sockfd(connection.state), events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 50)
            try pumpFrames()
        }
    }

    // MARK: - Connect / close

    private func connect() throws {
        guard let handle = ConnectionHandle() else {
            throw ConnectionLoss(error: AMQPError(code: .connectionFailed, message: "amqp_new_connection failed"))
        }
        connection = handle
        let state = handle.state
        let socket: OpaquePointer?
        if configuration.useTLS {
            socket = amqp_ssl_socket_new(state)
            if let socket {
                if let caPath = configuration.tlsCACertificatePath {
                    let status = amqp_ssl_socket_set_cacert(socket, caPath)
                    guard status == AMQP_STATUS_OK.rawValue else {
                        throw ConnectionLoss(
                            error: Self.libraryError(
                                status, context: "loading CA file \(caPath)", code: .connectionFailed))
                    }
                }
                amqp_ssl_socket_set_verify_peer(socket, configuration.tlsVerifyPeer ? 1 : 0)
                amqp_ssl_socket_set_verify_hostname(socket, configuration.tlsVerifyHostname ? 1 : 0)
            }
        } else {
            socket = amqp_tcp_socket_new(state)
        }
        guard let socket else {
            throw ConnectionLoss(error: AMQPError(code: .connectionFailed, message: "could not create a socket"))
        }
        var timeout = Self.cTimeval(configuration.connectTimeout)
        let openStatus = amqp_socket_open_noblock(socket, node.host, Int32(node.port), &timeout)
        guard openStatus == AMQP_STATUS_OK.rawValue else {
            throw ConnectionLoss(
                error: Self.libraryError(
                    openStatus, context: "connecting to \(node)",
                    code: .connectionFailed))
        }
        _ = amqp_set_handshake_timeout(state, &timeout)
        var rpcTimeout = Self.cTimeval(max(configuration.connectTimeout, .seconds(30)))
        _ = amqp_set_rpc_timeout(state, &rpcTimeout)

        let heartbeatSeconds =
            configuration.heartbeat > .zero ? max(1, Int32(configuration.heartbeat.components.seconds)) : 0
        let arena = CArena()
        var properties = arena.table([
            "connection_name": .string(configuration.connectionName),
            "product": .string("klaviyo-relay AMQP (rabbitmq-c)"),
        ])
        let reply = crmq_login_plain_with_properties(
            state, arena.cString(configuration.virtualHost), 0, 131_072, heartbeatSeconds, &properties,
            arena.cString(configuration.username), arena.cString(configuration.password))
        withExtendedLifetime(arena) {}
        do {
            try check(reply, channel: 0, context: "login")
        } catch let loss as ConnectionLoss {
            var error = loss.error
            if error.replyCode == 403 || error.replyCode == 530 {
                error.code = .authenticationFailed
                error.isRetriable = false
            } else if error.code == .connectionLost {
                error.code = .connectionFailed
            }
            throw ConnectionLoss(error: error)
        }

        try openChannel(Self.consumeChannel)
        try openChannel(Self.publishChannel)
        try openChannel(Self.rpcChannel)
        deliveries.connected()
        try enableConfirms()
        do {
            try declare(core.topology)
        } catch let failure as ChannelFailure {
            throw ConnectionLoss(error: failure.error)
        }
    }

    private func openChannel(_ channel: UInt16) throws {
        guard let connection else { return }
        _ = amqp_channel_open(connection.state, channel)
        do {
            try check(amqp_get_rpc_reply(connection.state), channel: channel, context: "channel.open(\(channel))")
        } catch let failure as ChannelFailure {
            throw ConnectionLoss(error: failure.error)
        }
    }

    private func enableConfirms() throws {
        guard let connection else { return }
        _ = amqp_confirm_select(connection.state, Self.publishChannel)
        do {
            try check(amqp_get_rpc_reply(connection.state), channel: Self.publishChannel, context: "confirm.select")
        } catch let failure as ChannelFailure {
            throw ConnectionLoss(error: failure.error)
        }
        confirms.restartNumbering()
    }

    /// Closes the connection politely (used on stop). `connection.close` closes every channel with it, and a short
    /// RPC timeout bounds the wait for close-ok, so a slow broker cannot hold up shutdown.
    private func gracefulClose() {
        guard let connection else { return }
        var timeout = Self.cTimeval(min(configuration.connectTimeout, .seconds(3)))
        _ = amqp_set_rpc_timeout(connection.state, &timeout)
        let clock = ContinuousClock()
        let started = clock.now
        let reply = amqp_connection_close(connection.state, AMQP_REPLY_SUCCESS)
        if reply.reply_type == AMQP_RESPONSE_NORMAL {
            logger.debug("AMQP connection closed", metadata: ["amqp.close_duration": "\(clock.now - started)"])
        } else {
            logger.warning(
                "AMQP connection.close was not confirmed; dropping the socket",
                metadata: ["amqp.reason": "\(Self.libraryError(reply.library_error, context: "connection.close"))"])
        }
    }

    /// Forgets the connection: fails pending confirms with `error`, invalidates deliveries, marks the client
    /// disconnected.
    private func dropConnection(failing error: AMQPError) {
        core.setConnected(to: nil)
        connection = nil
        output.discard()
        failPendingAcks()
        deliveries.connectionDropped()
        subscriptions.reset()
        content.reset()
        resume(confirms.failAll { _ in error })
    }

    private func resume(_ resolutions: [PublisherConfirms<UnsafeContinuation<Void, any Error>>.Resolution]) {
        for resolution in resolutions { resolution.waiter.resume(with: resolution.result) }
    }

    // MARK: - Work items

    private func handle(_ item: WorkItem) throws {
        switch item {
        case .publish: break
        default:
            // Whatever rabbitmq-c sends next goes after the frames buffered so far.
            do {
                try flushOutput()
            } catch {
                item.failForLostConnection()
                throw error
            }
        }
        switch item {
        case .publish(let message, let continuation):
            try publish(message, continuation)
        case .settle(let delivery, let settlement, let continuation):
            try settle(delivery, settlement, continuation)
        case .operation(let operation, let continuation):
            do {
                continuation.resume(returning: try perform(operation))
            } catch let failure as ChannelFailure {
                continuation.resume(throwing: failure.error)
                try openChannel(Self.rpcChannel)
                deliveries.channelReopened(.fetched)
            } catch let loss as ConnectionLoss {
                continuation.resume(throwing: loss.error)
                throw loss
            }
        case .subscribe(let tag):
            if let registration = core.consumer(tag: tag) { try subscribe(registration) }
        case .unsubscribe(let tag):
            try sendCancel(tag: tag)
        }
    }

    private func publish(_ message: AMQPMessage, _ continuation: UnsafeContinuation<Void, any Error>) throws {
        guard let connection else {
            continuation.resume(throwing: AMQPError(code: .notConnected, message: "not connected"))
            return
        }
        confirms.register(
            continuation, exchange: message.exchange,
            returnKey: message.mandatory ? .init(routingKey: message.routingKey, body: message.body) : nil)
        // The arena's block is reused from one publish to the next (both paths below copy the arguments before
        // they return).
        let arena = publishArena
        defer { arena.reset() }
        var properties = arena.properties(message.properties)
        if !configuration.useTLS,
            output.appendPublish(
                channel: Self.publishChannel, exchange: message.exchange, routingKey: message.routingKey,
                mandatory: message.mandatory, properties: &properties, body: message.body,
                frameMax: Int(amqp_get_frame_max(connection.state)))
        {
            withExtendedLifetime(arena) {}
            return
        }
        try flushOutput()
        let status = message.body.withUnsafeBytes { body in
            amqp_basic_publish(
                connection.state, Self.publishChannel, arena.bytes(message.exchange), arena.bytes(message.routingKey),
                message.mandatory ? 1 : 0, 0, &properties,
                amqp_bytes_t(
                    len: body.count, bytes: body.count > 0 ? UnsafeMutableRawPointer(mutating: body.baseAddress) : nil))
        }
        withExtendedLifetime(arena) {}
        guard status == AMQP_STATUS_OK.rawValue else {
            throw ConnectionLoss(error: Self.libraryError(status, context: "basic.publish"))
        }
    }

    private func settle(
        _ delivery: AMQPDelivery, _ settlement: WorkItem.Settlement,
        _ continuation: CheckedContinuation<Void, any Error>?
    ) throws {
        let source: UnsettledDeliveries.Source = delivery.channel == Self.consumeChannel ? .consumed : .fetched
        let verdict = deliveries.settle(delivery.deliveryTag, generation: delivery.generation, from: source)
        guard let connection, verdict != .stale else {
            continuation?.resume(
                throwing: AMQPError(
                    code: .staleDelivery,
                    message: "delivery \(delivery.deliveryTag) came from an earlier connection or channel;"
                        + " the broker will redeliver it"))
            return
        }
        guard verdict == .send else {
            continuation?.resume(
                throwing: AMQPError(
                    code: .staleDelivery, message: "delivery \(delivery.deliveryTag) was already settled"))
            return
        }
        if case .ack = settlement, delivery.channel == Self.consumeChannel {
            pendingAcks.append(delivery.deliveryTag, continuation)
            return
        }
        let status: Int32
        switch settlement {
        case .ack: status = amqp_basic_ack(connection.state, delivery.channel, delivery.deliveryTag, 0)
        case .nack(let requeue):
            status = amqp_basic_nack(connection.state, delivery.channel, delivery.deliveryTag, 0, requeue ? 1 : 0)
        case .reject(let requeue):
            status = amqp_basic_reject(connection.state, delivery.channel, delivery.deliveryTag, requeue ? 1 : 0)
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            let error = Self.libraryError(status, context: "settling a delivery")
            continuation?.resume(throwing: error)
            throw ConnectionLoss(error: error)
        }
        continuation?.resume()
    }

    /// Writes the pending acks of consumed deliveries: one `basic.ack` with `multiple` for those below every
    /// still-unsettled tag (the broker acks exactly them: delivery tags grow, and every lower tag is settled),
    /// one plain `basic.ack` each for the rest. Resumes their callers once written.
    private func flushAcks() throws {
        guard !pendingAcks.isEmpty else { return }
        guard let connection else {
            failPendingAcks()
            return
        }
        let plan = pendingAcks.plan(lowestUnsettled: deliveries.lowestUnsettled(.consumed))
        var failure: AMQPError?
        if configuration.useTLS {
            var status = AMQP_STATUS_OK.rawValue
            if let multiple = plan.multiple {
                status = amqp_basic_ack(
                    connection.state, Self.consumeChannel, multiple.tag, multiple.count > 1 ? 1 : 0)
            }
            for tag in plan.single where status == AMQP_STATUS_OK.rawValue {
                status = amqp_basic_ack(connection.state, Self.consumeChannel, tag, 0)
            }
            if status != AMQP_STATUS_OK.rawValue { failure = Self.libraryError(status, context: "settling a delivery") }
        } else {
            if let multiple = plan.multiple {
                output.appendAck(channel: Self.consumeChannel, deliveryTag: multiple.tag, multiple: multiple.count > 1)
            }
            for tag in plan.single { output.appendAck(channel: Self.consumeChannel, deliveryTag: tag, multiple: false) }
            // Written (with the publishes buffered before them) before the waiters hear that they were.
            do { try flushOutput() } catch let loss as ConnectionLoss { failure = loss.error }
        }
        let waiters = pendingAcks.take()
        if let failure {
            for waiter in waiters { waiter?.resume(throwing: failure) }
            throw ConnectionLoss(error: failure)
        }
        for waiter in waiters { waiter?.resume() }
    }

    /// Writes the frames ``output`` holds (publishes, acks) in one go.
    private func flushOutput() throws {
        guard !output.isEmpty else { return }
        guard let connection else {
            output.discard()
            return
        }
        core.framedWrites.add(1, ordering: .relaxed)
        if let failure = output.flush(to: amqp_get_sockfd(connection.state)) {
            let text = String(cString: strerror(failure))
            throw ConnectionLoss(
                error: AMQPError(code: .connectionLost, message: "writing to the broker: \(text)", isRetriable: true))
        }
    }

    /// Fails the pending acks: their channel or connection is gone, so the broker redelivers the messages.
    private func failPendingAcks() {
        for waiter in pendingAcks.take() {
            waiter?.resume(
                throwing: AMQPError(
                    code: .staleDelivery, message: "the channel this delivery came from closed before its ack was sent")
            )
        }
    }

    // MARK: - Blocking RPCs on the RPC channel

    private func perform(_ operation: WorkItem.Operation) throws -> WorkItem.OperationResult {
        guard let connection else {
            throw ConnectionLoss(error: AMQPError(code: .notConnected, message: "not connected"))
        }
        let state = connection.state
        let channel = Self.rpcChannel
        let arena = CArena()
        defer { withExtendedLifetime(arena) {} }
        switch operation {
        case .declare(let topology):
            try declare(topology)
            return .none
        case .messageCount(let queue):
            let ok = amqp_queue_declare(state, channel, arena.bytes(queue), 1, 0, 0, 0, amqp_empty_table)
            try check(amqp_get_rpc_reply(state), channel: channel, context: "passive queue.declare '\(queue)'")
            guard let ok else {
                throw ConnectionLoss(error: AMQPError(code: .protocolError, message: "empty declare-ok"))
            }
            return .counts(messages: ok.pointee.message_count, consumers: ok.pointee.consumer_count)
        case .purge(let queue):
            let ok = amqp_queue_purge(state, channel, arena.bytes(queue))
            try check(amqp_get_rpc_reply(state), channel: channel, context: "queue.purge '\(queue)'")
            return .count(ok?.pointee.message_count ?? 0)
        case .deleteQueue(let queue):
            _ = amqp_queue_delete(state, channel, arena.bytes(queue), 0, 0)
            try check(amqp_get_rpc_reply(state), channel: channel, context: "queue.delete '\(queue)'")
            return .none
        case .deleteExchange(let exchange):
            _ = amqp_exchange_delete(state, channel, arena.bytes(exchange), 0)
            try check(amqp_get_rpc_reply(state), channel: channel, context: "exchange.delete '\(exchange)'")
            return .none
        case .get(let queue):
            let reply = amqp_basic_get(state, channel, arena.bytes(queue), 0)
            try check(reply, channel: channel, context: "basic.get '\(queue)'")
            guard reply.reply.id == AMQP_BASIC_GET_OK_METHOD, let decoded = reply.reply.decoded else {
                return .delivery(nil)
            }
            let ok = decoded.assumingMemoryBound(to: amqp_basic_get_ok_t.self).pointee
            let deliveryTag = ok.delivery_tag
            let redelivered = ok.redelivered != 0
            let exchange = CDecoding.string(ok.exchange)
            let routingKey = CDecoding.string(ok.routing_key)
            var message = amqp_message_t()
            let read = amqp_read_message(state, channel, &message, 0)
            try check(read, channel: channel, context: "reading the basic.get message")
            let properties = CDecoding.properties(message.properties)
            let body = CDecoding.bytes(message.body)
            amqp_destroy_message(&message)
            deliveries.record(deliveryTag, from: .fetched)
            return .delivery(
                AMQPDelivery(
                    body: body, properties: properties, exchange: exchange, routingKey: routingKey,
                    redelivered: redelivered, deliveryTag: deliveryTag, consumerTag: "", queue: queue,
                    generation: deliveries.rpcGeneration, channel: channel))
        }
    }

    /// Declares exchanges, queues and bindings in order on the RPC channel (blocking).
    private func declare(_ topology: AMQPTopology) throws {
        guard let connection else { return }
        let state = connection.state
        let channel = Self.rpcChannel
        for exchange in topology.exchanges {
            let arena = CArena()
            _ = amqp_exchange_declare(
                state, channel, arena.bytes(exchange.name), arena.bytes(exchange.type.rawValue), 0,
                exchange.durable ? 1 : 0, exchange.autoDelete ? 1 : 0, exchange.internal ? 1 : 0,
                arena.table(exchange.arguments))
            try check(amqp_get_rpc_reply(state), channel: channel, context: "exchange.declare '\(exchange.name)'")
        }
        for queue in topology.queues {
            let arena = CArena()
            _ = amqp_queue_declare(
                state, channel, arena.bytes(queue.name), 0, queue.durable ? 1 : 0, queue.exclusive ? 1 : 0,
                queue.autoDelete ? 1 : 0, arena.table(queue.arguments))
            try check(amqp_get_rpc_reply(state), channel: channel, context: "queue.declare '\(queue.name)'")
        }
        for binding in topology.bindings {
            let arena = CArena()
            _ = amqp_queue_bind(
                state, channel, arena.bytes(binding.queue), arena.bytes(binding.exchange),
                arena.bytes(binding.routingKey),
                arena.table(binding.arguments))
            try check(
                amqp_get_rpc_reply(state), channel: channel,
                context: "queue.bind '\(binding.queue)' to '\(binding.exchange)' (\(binding.routingKey))")
        }
    }

    // MARK: - Consumers (asynchronous on the consume channel)

    private func subscribeAll() throws {
        guard connection != nil else { return }
        subscriptions.resubscribe(core.state.withLock { Array($0.consumers.values) })
        try sendNextSubscription()
    }

    private func subscribe(_ registration: ConsumerRegistration) throws {
        guard connection != nil, subscriptions.enqueue(registration) else { return }
        try sendNextSubscription()
    }

    /// Sends `basic.qos` + `basic.consume` for the next waiting consumer, unless one awaits its consume-ok.
    private func sendNextSubscription() throws {
        guard let connection, let registration = subscriptions.nextToSend() else { return }
        var qos = amqp_basic_qos_t(prefetch_size: 0, prefetch_count: registration.prefetch, global: 0)
        var status = amqp_send_method(connection.state, Self.consumeChannel, AMQP_BASIC_QOS_METHOD, &qos)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw ConnectionLoss(error: Self.libraryError(status, context: "basic.qos"))
        }
        let arena = CArena()
        var consume = amqp_basic_consume_t(
            ticket: 0, queue: arena.bytes(registration.queue), consumer_tag: arena.bytes(registration.tag), no_local: 0,
            no_ack: 0, exclusive: 0, nowait: 0, arguments: amqp_empty_table)
        status = amqp_send_method(connection.state, Self.consumeChannel, AMQP_BASIC_CONSUME_METHOD, &consume)
        withExtendedLifetime(arena) {}
        guard status == AMQP_STATUS_OK.rawValue else {
            throw ConnectionLoss(error: Self.libraryError(status, context: "basic.consume"))
        }
        logger.debug(
            "AMQP consumer subscribing",
            metadata: ["amqp.queue": "\(registration.queue)", "amqp.consumer_tag": "\(registration.tag)"])
    }

    /// Sends `basic.cancel` for `tag` if it was subscribed (a consumer still waiting for its turn is just dropped).
    private func sendCancel(tag: String) throws {
        guard let connection, subscriptions.cancel(tag) else { return }
        let arena = CArena()
        var cancel = amqp_basic_cancel_t(consumer_tag: arena.bytes(tag), nowait: 0)
        let status = amqp_send_method(connection.state, Self.consumeChannel, AMQP_BASIC_CANCEL_METHOD, &cancel)
        withExtendedLifetime(arena) {}
        guard status == AMQP_STATUS_OK.rawValue else {
            throw ConnectionLoss(error: Self.libraryError(status, context: "basic.cancel"))
        }
    }

    // MARK: - Frame dispatch

    private func dispatch(_ frame: amqp_frame_t) throws {
        let assembled: ContentAssembly.Content?
        do {
            switch Int32(frame.frame_type) {
            case AMQP_FRAME_METHOD:
                try dispatchMethod(frame.payload.method, channel: frame.channel)
                return
            case AMQP_FRAME_HEADER:
                let properties = frame.payload.properties.decoded.map {
                    CDecoding.properties($0.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee)
                }
                assembled = try content.header(
                    channel: frame.channel, properties: properties, bodySize: Int(frame.payload.properties.body_size))
            case AMQP_FRAME_BODY:
                let fragment = frame.payload.body_fragment
                let bytes = fragment.bytes.map { UnsafeRawBufferPointer(start: $0, count: fragment.len) }
                assembled = try content.body(
                    channel: frame.channel, fragment: bytes ?? UnsafeRawBufferPointer(start: nil, count: 0))
            default:
                return
            }
        } catch let error as AMQPError {
            throw ConnectionLoss(error: error)
        }
        if let assembled { try complete(assembled, channel: frame.channel) }
    }

    private func complete(_ assembled: ContentAssembly.Content, channel: UInt16) throws {
        switch assembled.method {
        case .deliver(let consumerTag, let deliveryTag, let redelivered, let exchange, let routingKey):
            guard let registration = core.consumer(tag: consumerTag) else {
                // Cancelled meanwhile: hand it back to the broker right away (and make sure it is cancelled).
                if let connection { _ = amqp_basic_reject(connection.state, channel, deliveryTag, 1) }
                try sendCancel(tag: consumerTag)
                return
            }
            let result = registration.continuation.yield(
                AMQPDelivery(
                    body: assembled.body, properties: assembled.properties, exchange: exchange,
                    routingKey: routingKey, redelivered: redelivered, deliveryTag: deliveryTag,
                    consumerTag: consumerTag, queue: registration.queue,
                    generation: deliveries.consumeGeneration, channel: channel))
            if case .terminated = result {
                // The stream ended between the lookup and the yield: nobody will ack it, so give it back.
                if let connection { _ = amqp_basic_reject(connection.state, channel, deliveryTag, 1) }
            } else {
                deliveries.record(deliveryTag, from: .consumed)
            }
        case .returned(let replyCode, let replyText, let exchange, let routingKey):
            let matched = confirms.markReturned(
                exchange: exchange, routingKey: routingKey, body: assembled.body, replyCode: replyCode,
                replyText: replyText)
            if !matched {
                logger.warning(
                    "AMQP basic.return for an unknown publish",
                    metadata: ["amqp.exchange": "\(exchange)", "amqp.routing_key": "\(routingKey)"])
            }
        }
    }

    private func dispatchMethod(_ method: amqp_method_t, channel: UInt16) throws {
        guard let connection else { return }
        let decoded = method.decoded
        switch method.id {
        case AMQP_BASIC_DELIVER_METHOD:
            guard let deliver = decoded?.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee else { return }
            content.begin(
                .deliver(
                    consumerTag: CDecoding.string(deliver.consumer_tag), deliveryTag: deliver.delivery_tag,
                    redelivered: deliver.redelivered != 0, exchange: CDecoding.string(deliver.exchange),
                    routingKey: CDecoding.string(deliver.routing_key)),
                channel: channel)
        case AMQP_BASIC_ACK_METHOD:
            guard let ack = decoded?.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee else { return }
            resume(confirms.confirm(upTo: ack.delivery_tag, multiple: ack.multiple != 0, nacked: false))
        case AMQP_BASIC_NACK_METHOD:
            guard let nack = decoded?.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee else { return }
            resume(confirms.confirm(upTo: nack.delivery_tag, multiple: nack.multiple != 0, nacked: true))
        case AMQP_BASIC_RETURN_METHOD:
            guard let returned = decoded?.assumingMemoryBound(to: amqp_basic_return_t.self).pointee else { return }
            content.begin(
                .returned(
                    replyCode: returned.reply_code, replyText: CDecoding.string(returned.reply_text),
                    exchange: CDecoding.string(returned.exchange), routingKey: CDecoding.string(returned.routing_key)),
                channel: channel)
        case AMQP_BASIC_CONSUME_OK_METHOD:
            subscriptions.consumeOK()
            try sendNextSubscription()
        case AMQP_BASIC_CANCEL_METHOD:
            // Broker-initiated cancel (queue deleted, ...): answer and finish that consumer's stream.
            guard let cancel = decoded?.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee else { return }
            let tag = CDecoding.string(cancel.consumer_tag)
            subscriptions.cancelledByBroker(tag)
            let arena = CArena()
            var cancelOK = amqp_basic_cancel_ok_t(consumer_tag: arena.bytes(tag))
            _ = amqp_send_method(connection.state, channel, AMQP_BASIC_CANCEL_OK_METHOD, &cancelOK)
            withExtendedLifetime(arena) {}
            logger.warning("AMQP consumer cancelled by the broker", metadata: ["amqp.consumer_tag": "\(tag)"])
            core.removeConsumer(
                tag: tag,
                error: AMQPError(code: .channelClosed, message: "the broker cancelled consumer \(tag) (queue deleted?)")
            )
        case AMQP_CHANNEL_CLOSE_METHOD:
            guard let close = decoded?.assumingMemoryBound(to: amqp_channel_close_t.self).pointee else { return }
            let failure = try acknowledgeChannelClose(close, channel: channel, context: "channel \(channel)")
            try recoverChannel(channel, failure: failure)
        case AMQP_CONNECTION_CLOSE_METHOD:
            guard let close = decoded?.assumingMemoryBound(to: amqp_connection_close_t.self).pointee else { return }
            throw acknowledgeConnectionClose(close)
        case AMQP_CONNECTION_BLOCKED_METHOD:
            let reason =
                decoded.map {
                    CDecoding.string($0.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee.reason)
                } ?? ""
            logger.warning("AMQP connection blocked by the broker", metadata: ["amqp.reason": "\(reason)"])
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            logger.info("AMQP connection unblocked")
        default:
            break  // qos-ok, cancel-ok, channel.open-ok, ...: nothing to do
        }
    }

    /// Reopens a channel the broker closed and restores what lived on it.
    private func recoverChannel(_ channel: UInt16, failure: ChannelFailure) throws {
        logger.warning(
            "AMQP channel closed by the broker",
            metadata: ["amqp.channel": "\(channel)", "amqp.reason": "\(failure.error)"])
        content.discard(channel: channel)
        switch channel {
        case Self.consumeChannel:
            failPendingAcks()
            if let culprit = subscriptions.channelClosed(classID: failure.classID, methodID: failure.methodID) {
                core.removeConsumer(tag: culprit, error: failure.error)
            }
            try openChannel(channel)
            deliveries.channelReopened(.consumed)
            try subscribeAll()
        case Self.publishChannel:
            resume(
                confirms.failAll { exchange in
                    var error = failure.error
                    error.message = "publish channel closed by the broker: \(failure.error.message)"
                    // The publish that caused a 404 names its exchange; every other one can simply be retried.
                    error.isRetriable = !failure.error.message.contains("'\(exchange)'")
                    return error
                })
            try openChannel(channel)
            try enableConfirms()
        default:
            try openChannel(channel)
            deliveries.channelReopened(.fetched)
        }
    }

    // MARK: - Replies and errors

    /// Turns a blocking RPC reply into success, a ``ChannelFailure`` or a ``ConnectionLoss``; answers close methods.
    private func check(_ reply: amqp_rpc_reply_t, channel: UInt16, context: String) throws {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw ConnectionLoss(error: Self.libraryError(reply.library_error, context: context))
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            switch reply.reply.id {
            case AMQP_CHANNEL_CLOSE_METHOD:
                guard let close = reply.reply.decoded?.assumingMemoryBound(to: amqp_channel_close_t.self).pointee else {
                    break
                }
                throw try acknowledgeChannelClose(close, channel: channel, context: context)
            case AMQP_CONNECTION_CLOSE_METHOD:
                guard let close = reply.reply.decoded?.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                else { break }
                throw acknowledgeConnectionClose(close)
            default:
                break
            }
            throw ConnectionLoss(
                error: AMQPError(code: .protocolError, message: "\(context): unexpected server reply \(reply.reply.id)")
            )
        default:
            throw ConnectionLoss(error: AMQPError(code: .protocolError, message: "\(context): no RPC reply"))
        }
    }

    private func acknowledgeChannelClose(
        _ close: amqp_channel_close_t, channel: UInt16, context: String
    ) throws
        -> ChannelFailure
    {
        let text = CDecoding.string(close.reply_text)
        let failure = ChannelFailure(
            error: AMQPError(
                code: .channelClosed, message: "\(context): \(text)", replyCode: Int(close.reply_code),
                isRetriable: false),
            classID: close.class_id, methodID: close.method_id)
        guard let connection else { return failure }
        var ok = amqp_channel_close_ok_t()
        let status = amqp_send_method(connection.state, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw ConnectionLoss(error: Self.libraryError(status, context: "channel.close-ok"))
        }
        return failure
    }

    private func acknowledgeConnectionClose(_ close: amqp_connection_close_t) -> ConnectionLoss {
        let text = CDecoding.string(close.reply_text)
        if let connection {
            var ok = amqp_connection_close_ok_t()
            _ = amqp_send_method(connection.state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok)
        }
        return ConnectionLoss(
            error: AMQPError(
                code: .connectionClosed, message: "the broker closed the connection: \(text)",
                replyCode: Int(close.reply_code), isRetriable: true))
    }

    static func libraryError(_ status: Int32, context: String, code: AMQPError.Code = .connectionLost) -> AMQPError {
        let text = amqp_error_string2(status).map { String(cString: $0) } ?? "status \(status)"
        return AMQPError(code: code, message: "\(context): \(text)", isRetriable: true)
    }

    static func cTimeval(_ duration: Duration) -> Glibc.timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
