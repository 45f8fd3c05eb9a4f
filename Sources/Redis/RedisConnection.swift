import CHiredis
import Dispatch
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One hiredis `redisContext`, used in blocking mode on its own serial queue (never on the cooperative pool).
///
/// The context is created lazily and discarded after any I/O, EOF, timeout or protocol error, so the next use
/// reconnects: a pooled connection heals itself when the server comes back.
final class RedisConnection: @unchecked Sendable {
    // @unchecked Sendable is safe: the only mutable state, `context`, is read and written exclusively by blocks
    // running on `queue`, a serial DispatchQueue; everything else is immutable.
    private var context: UnsafeMutablePointer<redisContext>?
    private let queue: DispatchQueue
    private let configuration: RedisConfiguration
    private let logger: Logger
    let id: Int

    init(id: Int, configuration: RedisConfiguration, logger: Logger) {
        self.id = id
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "redis.connection"] = "\(id)"
        self.logger = logger
        self.queue = DispatchQueue(label: "klaviyo-relay.redis.connection.\(id)")
    }

    deinit {
        if let context { redisFree(context) }
    }

    /// Sends all commands in one write, then reads one reply per command.
    ///
    /// Server error replies are per-command failures; a transport failure fails the whole batch.
    func execute(_ commands: [[[UInt8]]]) async -> Result<[Result<RedisValue, RedisError>], RedisError> {
        await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: self.executeBlocking(commands))
            }
        }
    }

    /// Closes the socket (if open). A later `execute` would reconnect.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.disconnect()
                continuation.resume()
            }
        }
    }

    // MARK: - On `queue` only

    private func executeBlocking(_ commands: [[[UInt8]]]) -> Result<[Result<RedisValue, RedisError>], RedisError> {
        let ctx: UnsafeMutablePointer<redisContext>
        switch connectIfNeeded() {
        case .success(let value): ctx = value
        case .failure(let error): return .failure(error)
        }
        for command in commands where Self.append(ctx, command) != REDIS_OK {
            return .failure(fail(ctx))
        }
        var results: [Result<RedisValue, RedisError>] = []
        results.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(ctx, &raw) == REDIS_OK, let raw else {
                return .failure(fail(ctx))
            }
            // Copy everything out of the reply before freeing it.
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            results.append(Self.convert(reply))
            freeReplyObject(raw)
        }
        return .success(results)
    }

    private func connectIfNeeded() -> Result<UnsafeMutablePointer<redisContext>, RedisError> {
        if let context {
            if !Self.peerClosed(context) { return .success(context) }
            // The server closed this idle connection (restart, idle timeout, CLIENT KILL): reconnect silently
            // rather than failing the caller's command on a socket known to be dead.
            logger.debug("Redis connection closed by the server while idle; reconnecting")
            disconnect()
        }
        let timeout = Self.makeTimeval(configuration.connectTimeout)
        guard let ctx = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeout) else {
            return .failure(
                RedisError(code: .connectionFailed, message: "cannot allocate a hiredis context", isRetriable: true))
        }
        if ctx.pointee.err != 0 {
            let message = Self.errorString(ctx)
            redisFree(ctx)
            logger.debug("Redis connect failed", metadata: ["redis.error": "\(message)"])
            return .failure(
                RedisError(
                    code: .connectionFailed,
                    message: "cannot connect to \(configuration.host):\(configuration.port): \(message)",
                    isRetriable: true))
        }
        _ = redisSetTimeout(ctx, Self.makeTimeval(configuration.commandTimeout))
        _ = redisEnableKeepAlive(ctx)
        context = ctx

        var handshake: [[[UInt8]]] = []
        if let password = configuration.password {
            var auth = [Array("AUTH".utf8)]
            if let username = configuration.username { auth.append(Array(username.utf8)) }
            auth.append(Array(password.utf8))
            handshake.append(auth)
        }
        if configuration.database != 0 {
            handshake.append([Array("SELECT".utf8), Array(String(configuration.database).utf8)])
        }
        if !handshake.isEmpty {
            for command in handshake where Self.append(ctx, command) != REDIS_OK {
                return .failure(fail(ctx))
            }
            for _ in handshake {
                var raw: UnsafeMutableRawPointer?
                guard redisGetReply(ctx, &raw) == REDIS_OK, let raw else { return .failure(fail(ctx)) }
                let result = Self.convert(raw.assumingMemoryBound(to: redisReply.self))
                freeReplyObject(raw)
                if case .failure(let error) = result {
                    disconnect()
                    return .failure(
                        RedisError(
                            code: .connectionFailed, message: "AUTH/SELECT failed: \(error.message)",
                            serverErrorPrefix: error.serverErrorPrefix, underlying: error, isRetriable: false))
                }
            }
        }
        logger.debug("Redis connected", metadata: ["redis.host": "\(configuration.host)", "redis.port": "\(configuration.port)"])
        return .success(ctx)
    }

    /// Turns the context's error into a `RedisError` and discards the context.
    private func fail(_ ctx: UnsafeMutablePointer<redisContext>) -> RedisError {
        let savedErrno = errno
        let kind = ctx.pointee.err
        let message = Self.errorString(ctx)
        disconnect()
        let error: RedisError
        switch kind {
        case REDIS_ERR_IO where savedErrno == EAGAIN || savedErrno == EWOULDBLOCK:
            error = RedisError(
                code: .timeout, message: "no reply within \(configuration.commandTimeout)", isRetriable: true)
        case REDIS_ERR_IO, REDIS_ERR_EOF:
            error = RedisError(code: .connectionLost, message: "connection lost: \(message)", isRetriable: true)
        case REDIS_ERR_PROTOCOL:
            error = RedisError(code: .protocolError, message: "protocol error: \(message)", isRetriable: true)
        default:
            error = RedisError(code: .connectionLost, message: "hiredis error \(kind): \(message)", isRetriable: true)
        }
        logger.warning("Redis connection discarded", metadata: ["redis.error": "\(error)"])
        return error
    }

    private func disconnect() {
        if let context {
            redisFree(context)
            self.context = nil
        }
    }

    /// Whether an idle connection's socket is readable: EOF (peer closed) or unsolicited data, both of which make
    /// the connection unusable for a request/response exchange. One non-blocking `poll` per command.
    private static func peerClosed(_ ctx: UnsafeMutablePointer<redisContext>) -> Bool {
        var descriptor = pollfd(fd: ctx.pointee.fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, 0)
        return ready > 0 || (ready < 0 && errno != EINTR)
    }

    private static func append(_ ctx: UnsafeMutablePointer<redisContext>, _ arguments: [[UInt8]]) -> Int32 {
        // One contiguous buffer keeps every argument's pointer valid for the duration of the call;
        // redisAppendCommandArgv copies the formatted command into hiredis' output buffer.
        var flat: [UInt8] = []
        flat.reserveCapacity(arguments.reduce(1) { $0 + $1.count })
        var offsets: [Int] = []
        var lengths: [Int] = []
        offsets.reserveCapacity(arguments.count)
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            offsets.append(flat.count)
            lengths.append(argument.count)
            flat.append(contentsOf: argument)
        }
        flat.append(0)
        return flat.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    redisAppendCommandArgv(ctx, Int32(arguments.count), argvBuffer.baseAddress, lengthBuffer.baseAddress)
                }
            }
        }
    }

    /// Converts a reply (recursively). An error reply, also one nested in an array, becomes a `.server` failure.
    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> Result<RedisValue, RedisError> {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .success(.bulkString(bytes(r.str, r.len)))
        case REDIS_REPLY_STATUS:
            return .success(.simpleString(String(decoding: bytes(r.str, r.len), as: UTF8.self)))
        case REDIS_REPLY_INTEGER:
            return .success(.integer(Int64(r.integer)))
        case REDIS_REPLY_NIL:
            return .success(.null)
        case REDIS_REPLY_ERROR:
            return .failure(.server(String(decoding: bytes(r.str, r.len), as: UTF8.self)))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(r.elements)
            for index in 0..<r.elements {
                guard let element = r.element[index] else {
                    elements.append(.null)
                    continue
                }
                switch convert(element) {
                case .success(let value): elements.append(value)
                case .failure(let error): return .failure(error)
                }
            }
            return .success(.array(elements))
        default:
            return .failure(RedisError(code: .protocolError, message: "unknown reply type \(r.type)", isRetriable: false))
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    private static func errorString(_ ctx: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: ctx.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    private static func makeTimeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        return timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
