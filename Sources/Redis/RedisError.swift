/// The one error type thrown by the `Redis` module.
///
/// Retry decisions use ``code`` and ``isRetriable``, never the message text.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// An extensible error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's stable name, e.g. `"connectionLost"`.
        public let name: String

        private init(_ name: String) { self.name = name }

        /// The configuration URL could not be parsed.
        public static let invalidURL = Code("invalidURL")
        /// A TCP connection (or its AUTH/SELECT handshake) could not be established.
        public static let connectionFailed = Code("connectionFailed")
        /// An established connection failed (I/O error or EOF); it has been discarded.
        public static let connectionLost = Code("connectionLost")
        /// The server did not answer within `commandTimeout`; the connection has been discarded.
        public static let timeout = Code("timeout")
        /// The server answered with an error reply (see ``RedisError/serverErrorPrefix``).
        public static let server = Code("server")
        /// The server sent something hiredis could not parse, or a reply of an unexpected type.
        public static let protocolError = Code("protocolError")
        /// The client has been shut down.
        public static let shutdown = Code("shutdown")
        /// In cluster mode, a command's keys hash to different slots: refused before being sent (a cluster runs
        /// a multi-key command, or a Lua script, only when all its keys share one slot: use one `{hash tag}`).
        public static let crossSlot = Code("crossSlot")
        /// In cluster mode, a command the cluster client does not route (`MULTI`/`EXEC`, `WATCH`, `SELECT`...).
        public static let unsupportedCommand = Code("unsupportedCommand")
        /// In cluster mode, the cluster did not serve the command within ``RedisConfiguration/clusterRetryTimeout``
        /// (slots unassigned or `CLUSTERDOWN`), or redirected it too many times.
        public static let clusterUnavailable = Code("clusterUnavailable")

        /// The code's name.
        public var description: String { name }
    }

    /// What went wrong.
    public var code: Code
    /// A human readable description (never contains credentials).
    public var message: String
    /// For `.server` errors, the first word of the error reply, e.g. `"NOSCRIPT"`, `"WRONGTYPE"`, `"ERR"`.
    public var serverErrorPrefix: String?
    /// The underlying error, if any.
    public var underlying: (any Error & Sendable)?
    /// Whether the same call may succeed if it is tried again later.
    public var isRetriable: Bool

    /// Creates an error.
    public init(
        code: Code, message: String, serverErrorPrefix: String? = nil, underlying: (any Error & Sendable)? = nil,
        isRetriable: Bool
    ) {
        self.code = code
        self.message = message
        self.serverErrorPrefix = serverErrorPrefix
        self.underlying = underlying
        self.isRetriable = isRetriable
    }

    /// `RedisError(code, retriable: …): message`.
    public var description: String {
        var text = "RedisError(\(code), retriable: \(isRetriable)): \(message)"
        if let underlying { text += " (underlying: \(underlying))" }
        return text
    }
}

extension RedisError {
    /// An error reply from the server. Server errors are answers, not failures of the connection: not retriable.
    static func server(_ message: String) -> RedisError {
        let firstWord = message.split(separator: " ", maxSplits: 1).first.map(String.init)
        let prefix = firstWord.flatMap { word in word.allSatisfy { $0.isUppercase || $0 == "_" } ? word : nil }
        return RedisError(code: .server, message: message, serverErrorPrefix: prefix, isRetriable: false)
    }

    static func unexpectedReply(_ value: RedisValue, expected: String) -> RedisError {
        RedisError(code: .protocolError, message: "expected \(expected), got \(value)", isRetriable: false)
    }

    static let shutdown = RedisError(
        code: .shutdown, message: "the Redis client has been shut down", isRetriable: false)
}
