import CRabbitMQ

/// Owns one `amqp_connection_state_t`; destroying it closes the socket.
///
/// Not Sendable: rabbitmq-c connections are not thread-safe. It is created, used and released only on the
/// client's connection thread (see ``ConnectionWorker``).
final class ConnectionHandle {
    let state: amqp_connection_state_t

    init?() {
        guard let state = amqp_new_connection() else { return nil }
        self.state = state
    }

    deinit { amqp_destroy_connection(state) }
}
