public import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A Redis client over hiredis with a lazy pool of auto-pipelining connections.
///
/// Every call goes to the least-loaded pooled connection. Each connection is driven by one dedicated thread that
/// writes all commands queued meanwhile in one batch and reads their replies in order, so concurrent callers share
/// write and read system calls. Connections that failed are discarded and reopened on next use, so the client
/// recovers by itself once the server is back. Transport failures throw retriable ``RedisError``s; error replies
/// throw `.server` errors.
public final class RedisClient: Sendable {
    /// The configuration the client was created with.
    public let configuration: RedisConfiguration
    private let pool: RedisConnectionPool
    private let logger: Logger

    /// Creates a client. No connection is opened until the first call.
    ///
    /// hiredis writes with `write(2)`: to survive a peer that closed its socket, the process ignores `SIGPIPE`
    /// (set once, on first use of the module).
    public init(configuration: RedisConfiguration, logger: Logger) {
        _ = Self.ignoreSIGPIPE
        self.configuration = configuration
        self.logger = logger
        self.pool = RedisConnectionPool(configuration: configuration, logger: logger)
    }

    private static let ignoreSIGPIPE: Void = {
        _ = signal(SIGPIPE, SIG_IGN)
    }()

    /// Sends one command given as strings (UTF-8) and returns its reply.
    ///
    /// - Throws: ``RedisError`` `.server` for an error reply, a retriable transport error, or `.shutdown`.
    public func send(_ arguments: [String]) async throws -> RedisValue {
        try await send(bytes: arguments.map { Array($0.utf8) })
    }

    /// Sends one binary-safe command and returns its reply.
    ///
    /// - Throws: ``RedisError`` `.server` for an error reply, a retriable transport error, or `.shutdown`.
    public func send(bytes arguments: [[UInt8]]) async throws -> RedisValue {
        try await execute([arguments])[0].get()
    }

    /// Sends all commands in one round trip and returns one result per command, in order.
    ///
    /// A server error reply fails only its own command; a transport failure throws for the whole pipeline
    /// (some of the commands may have been executed).
    public func pipeline(_ commands: [[String]]) async throws -> [Result<RedisValue, RedisError>] {
        if commands.isEmpty { return [] }
        return try await execute(commands.map { $0.map { Array($0.utf8) } })
    }

    /// Runs a Lua script with `EVALSHA`; when the server answers `NOSCRIPT`, loads it with `SCRIPT LOAD` and
    /// runs `EVALSHA` again. A script is thus loaded once per server, not sent on every call.
    public func run(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RedisValue {
        let command = ["EVALSHA", script.sha1, String(keys.count)] + keys + arguments
        do {
            return try await send(command)
        } catch let error as RedisError where error.serverErrorPrefix == "NOSCRIPT" {
            logger.debug("Loading Redis script", metadata: ["redis.script.sha1": "\(script.sha1)"])
            let loaded = try await send(["SCRIPT", "LOAD", script.source])
            if let sha = loaded.string, sha != script.sha1 {
                logger.warning(
                    "Redis computed another SHA-1 for a script",
                    metadata: ["redis.script.sha1": "\(script.sha1)", "redis.script.server_sha1": "\(sha)"])
                return try await send(["EVALSHA", sha, String(keys.count)] + keys + arguments)
            }
            return try await send(command)
        }
    }

    /// Closes all connections. Calls made afterwards, and calls whose commands were not yet written, throw
    /// `.shutdown`; commands already written are answered first.
    public func shutdown() async {
        await pool.shutdown()
        logger.debug("Redis client shut down")
    }

    private func execute(_ commands: [[[UInt8]]]) async throws -> [Result<RedisValue, RedisError>] {
        try await pool.execute(commands)
    }

    /// Number of batches the connections have written so far (one flush each, serving one or more commands).
    @_spi(Testing) public var writeBatchCount: Int { pool.statistics.writeBatches }

    /// Number of commands the connections have written so far.
    @_spi(Testing) public var commandsWrittenCount: Int { pool.statistics.commands }
}
