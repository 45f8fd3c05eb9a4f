/// An error raised by the AMQP layer.
///
/// Retry decisions should use ``code`` and ``isRetriable``, never the human readable ``message``.
public struct AMQPError: Error, Sendable, CustomStringConvertible {
    /// An extensible error code.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The AMQP URL could not be parsed.
        public static let invalidURL = Code("invalidURL")
        /// The TCP/TLS connection or the AMQP handshake failed.
        public static let connectionFailed = Code("connectionFailed")
        /// The broker refused the credentials (ACCESS_REFUSED during login).
        public static let authenticationFailed = Code("authenticationFailed")
        /// The connection was lost (socket error, heartbeat timeout, forced close) while the operation was pending.
        public static let connectionLost = Code("connectionLost")
        /// The broker closed the channel the operation ran on (e.g. 404 NOT_FOUND, 406 PRECONDITION_FAILED).
        public static let channelClosed = Code("channelClosed")
        /// The broker closed the connection with `connection.close`.
        public static let connectionClosed = Code("connectionClosed")
        /// The broker answered a publish with `basic.nack`.
        public static let publishNacked = Code("publishNacked")
        /// A mandatory message could not be routed to any queue (`basic.return`).
        public static let unroutable = Code("unroutable")
        /// The operation did not complete in time.
        public static let timeout = Code("timeout")
        /// The client is not connected (yet, or currently reconnecting).
        public static let notConnected = Code("notConnected")
        /// The delivery came from an earlier connection or channel and cannot be acknowledged any more.
        public static let staleDelivery = Code("staleDelivery")
        /// The client is shutting down or has shut down.
        public static let shutdown = Code("shutdown")
        /// The broker or the library reported something this client does not understand.
        public static let protocolError = Code("protocolError")

        /// The code's name.
        public var description: String { name }
    }

    /// What went wrong, machine readable.
    public var code: Code
    /// What went wrong, for humans (never contains credentials).
    public var message: String
    /// The broker's close code (`channel.close`/`connection.close`), e.g. 404 or 406, if any.
    public var replyCode: Int?
    /// Whether retrying the same operation later may succeed.
    public var isRetriable: Bool

    /// Creates an error.
    public init(code: Code, message: String, replyCode: Int? = nil, isRetriable: Bool? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
        self.isRetriable = isRetriable ?? Self.defaultRetriable(code)
    }

    private static func defaultRetriable(_ code: Code) -> Bool {
        switch code {
        case .connectionFailed, .connectionLost, .connectionClosed, .timeout, .notConnected: true
        default: false
        }
    }

    /// A one-line rendering: code, reply code and message.
    public var description: String {
        var text = "AMQPError.\(code)"
        if let replyCode { text += " (\(replyCode))" }
        return text + ": \(message)"
    }
}
