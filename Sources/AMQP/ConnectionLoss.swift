/// A connection-level failure: everything pending fails and the worker reconnects.
struct ConnectionLoss: Error {
    var error: AMQPError
}
