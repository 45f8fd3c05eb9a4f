public import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A Redis client over hiredis with a lazy pool of auto-pipelining connections, for one server or a Redis Cluster.
///
/// Every call goes to the least-loaded pooled connection. Each connection is driven by one dedicated thread that
/// writes all commands queued meanwhile in one batch and reads their replies in order, so concurrent callers share
/// write and read system calls. Connections that failed are discarded and reopened on next use, so the client
/// recovers by itself once the server is back. Transport failures throw retriable ``RedisError``s; error replies
/// throw `.server` errors.
///
/// **Cluster mode** (``RedisConfiguration/isCluster``, a `redis-cluster://` URL): the same API on a Redis Cluster.
/// Each command goes to the primary serving its first key's hash slot (`EVALSHA`/`EVAL` by `KEYS[1]`; commands
/// without keys to any primary), through a pool per primary; `MOVED` re-points the slot and refreshes the slot
/// map, `ASK` sends `ASKING` and the command to the named node once. Connection failures, `CLUSTERDOWN`,
/// `TRYAGAIN`, `MASTERDOWN` and `LOADING` refresh the slot map and retry with backoff for up to
/// ``RedisConfiguration/clusterRetryTimeout``, so a killed primary whose replica is promoted costs a delay, not
/// an error. Every command is retried that way, reads and writes alike: a write whose connection failed may have
/// run already and runs again (this codebase's writes are idempotent scripts, `SET NX`, `HSET` and `PEXPIRE`).
/// Writes a primary acknowledged but had not replicated when it died are lost (Redis replication is
/// asynchronous). A command whose keys hash to different slots fails with `.crossSlot` before being sent;
/// ``delete(_:)`` splits its keys by slot instead. `SCAN` walks every primary behind one numeric cursor;
/// pipelines are split by node and answered in order. `MULTI`/`EXEC`, `WATCH` and `SELECT` are refused
/// (`.unsupportedCommand`).
public final class RedisClient: Sendable {
    /// The configuration the client was created with.
    public let configuration: RedisConfiguration
    private let backend: Backend
    private let logger: Logger

    private enum Backend: Sendable {
        case single(RedisConnectionPool)
        case cluster(RedisClusterRouter)
    }

    /// Creates a client. No connection is opened until the first call.
    ///
    /// hiredis writes with `write(2)`: to survive a peer that closed its socket, the process ignores `SIGPIPE`
    /// (set once, on first use of the module).
    public init(configuration: RedisConfiguration, logger: Logger) {
        _ = Self.ignoreSIGPIPE
        self.configuration = configuration
        self.logger = logger
        if configuration.isCluster {
            self.backend = .cluster(RedisClusterRouter(configuration: configuration, logger: logger))
        } else {
            self.backend = .single(RedisConnectionPool(configuration: configuration, logger: logger))
        }
    }

    private static let ignoreSIGPIPE: Void = {
        _ = signal(SIGPIPE, SIG_IGN)
    }()

    /// Sends one command given as strings (UTF-8) and returns its reply.
    ///
    /// - Throws: ``RedisError`` `.server` for an error reply, a retriable transport error, or `.shutdown`.
    public func send(_ arguments: [String]) async throws -> RedisValue {
        if case .single(let pool) = backend {
            return try await pool.execute(RedisFormattedCommands([arguments]))[0].get()
        }
        return try await send(bytes: arguments.map { Array($0.utf8) })
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
        // A single server takes the pipeline encoded straight from the strings (one buffer, no array per argument);
        // the cluster router reads each command's keys to route it, so it gets them as byte arrays.
        if case .single(let pool) = backend { return try await pool.execute(RedisFormattedCommands(commands)) }
        return try await execute(commands.map { $0.map { Array($0.utf8) } })
    }

    /// Runs a Lua script with `EVALSHA`; when the server answers `NOSCRIPT`, loads it with `SCRIPT LOAD` and
    /// runs `EVALSHA` again. A script is thus loaded once per server, not sent on every call.
    ///
    /// In cluster mode the script runs on the primary serving `KEYS[1]` (all keys must share its slot, else
    /// `.crossSlot`), and is loaded there: each primary loads it on its first `NOSCRIPT` (a promoted replica
    /// too). Should the slot move between the load and the second `EVALSHA`, the script is sent with `EVAL`.
    public func run(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RedisValue {
        let command = ["EVALSHA", script.sha1, String(keys.count)] + keys + arguments
        do {
            return try await send(command)
        } catch let error as RedisError where error.serverErrorPrefix == "NOSCRIPT" {
            logger.debug("Loading Redis script", metadata: ["redis.script.sha1": "\(script.sha1)"])
            if case .cluster(let router) = backend {
                let slot = keys.first.map(RedisSlot.of)
                let load = [Array("SCRIPT".utf8), Array("LOAD".utf8), Array(script.source.utf8)]
                _ = try await (slot != nil ? router.execute(load, slot: slot!) : router.execute([load])[0]).get()
                do {
                    return try await send(command)
                } catch let error as RedisError where error.serverErrorPrefix == "NOSCRIPT" {
                    return try await send(["EVAL", script.source, String(keys.count)] + keys + arguments)
                }
            }
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
        switch backend {
        case .single(let pool): await pool.shutdown()
        case .cluster(let router): await router.shutdown()
        }
        logger.debug("Redis client shut down")
    }

    private func execute(_ commands: [[[UInt8]]]) async throws -> [Result<RedisValue, RedisError>] {
        switch backend {
        case .single(let pool): try await pool.execute(commands)
        case .cluster(let router): try await router.execute(commands)
        }
    }

    private var statistics: (writeBatches: Int, commands: Int) {
        switch backend {
        case .single(let pool): pool.statistics
        case .cluster(let router): router.statistics
        }
    }

    /// Number of batches the connections have written so far (one flush each, serving one or more commands).
    @_spi(Testing) public var writeBatchCount: Int { statistics.writeBatches }

    /// Number of commands the connections have written so far.
    @_spi(Testing) public var commandsWrittenCount: Int { statistics.commands }

    /// Cluster mode: commands written per node so far (empty for a single server).
    @_spi(Testing) public var clusterCommandsPerNode: [RedisEndpoint: Int] {
        if case .cluster(let router) = backend { return router.commandsPerNode }
        return [:]
    }

    /// Cluster mode: the primaries of the current slot map (empty for a single server or before first use).
    @_spi(Testing) public var clusterPrimaries: [RedisEndpoint] {
        if case .cluster(let router) = backend { return router.primaries }
        return []
    }

    /// Cluster mode: slot map reads, `MOVED` and `ASK` redirections followed so far.
    @_spi(Testing) public var clusterCounters: (refreshes: Int, moved: Int, asked: Int) {
        if case .cluster(let router) = backend { return router.counters }
        return (0, 0, 0)
    }
}
