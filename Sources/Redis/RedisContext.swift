import CHiredis
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One connected hiredis `redisContext` in blocking mode, freed in `deinit`.
///
/// Not `Sendable`: it is created, used and released by its connection's worker thread only. After a transport
/// failure (I/O, EOF, timeout, protocol error) the context is out of sync and must be dropped.
final class RedisContext {
    private let ctx: UnsafeMutablePointer<redisContext>

    private init(_ ctx: UnsafeMutablePointer<redisContext>) {
        self.ctx = ctx
    }

    deinit {
        redisFree(ctx)
    }

    /// Connects with `connectTimeout`, sets `commandTimeout` on the socket and runs the AUTH/SELECT handshake.
    static func connect(configuration: RedisConfiguration, logger: Logger) -> Result<RedisContext, RedisError> {
        let timeout = makeTimeval(configuration.connectTimeout)
        guard let raw = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeout) else {
            return .failure(
                RedisError(code: .connectionFailed, message: "cannot allocate a hiredis context", isRetriable: true))
        }
        if raw.pointee.err != 0 {
            let message = errorString(raw)
            redisFree(raw)
            logger.debug("Redis connect failed", metadata: ["redis.error": "\(message)"])
            return .failure(
                RedisError(
                    code: .connectionFailed,
                    message: "cannot connect to \(configuration.host):\(configuration.port): \(message)",
                    isRetriable: true))
        }
        _ = redisSetTimeout(raw, makeTimeval(configuration.commandTimeout))
        _ = redisEnableKeepAlive(raw)
        let context = RedisContext(raw)

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
        for command in handshake where !context.append(command) {
            return .failure(context.transportError(configuration: configuration))
        }
        for _ in handshake {
            switch context.readReply(configuration: configuration) {
            case .failure(let error):
                return .failure(error)
            case .success(.failure(let error)):
                return .failure(
                    RedisError(
                        code: .connectionFailed, message: "AUTH/SELECT failed: \(error.message)",
                        serverErrorPrefix: error.serverErrorPrefix, underlying: error, isRetriable: false))
            case .success(.success):
                continue
            }
        }
        logger.debug(
            "Redis connected", metadata: ["redis.host": "\(configuration.host)", "redis.port": "\(configuration.port)"])
        return .success(context)
    }

    /// Whether an idle connection's socket is readable: EOF (peer closed) or unsolicited data, both of which make
    /// the connection unusable for a request/response exchange. One non-blocking `poll`.
    var peerClosed: Bool {
        var descriptor = pollfd(fd: ctx.pointee.fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, 0)
        return ready > 0 || (ready < 0 && errno != EINTR)
    }

    /// Formats one command into hiredis' output buffer (no I/O: the buffer is flushed by the next `readReply`).
    /// `false` only when hiredis cannot allocate.
    func append(_ arguments: [[UInt8]]) -> Bool {
        append(formatted: Self.formatted(arguments))
    }

    /// Copies commands already in RESP (``formatted(_:)``, ``RedisFormattedCommands``) into hiredis' output buffer.
    /// `false` only when hiredis cannot allocate.
    func append(formatted command: [UInt8]) -> Bool {
        // hiredis takes the bytes as they are: no argv arrays, no printf-style formatting per argument. Several
        // commands back to back are just a longer buffer.
        let status = command.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(ctx, $0.baseAddress, $0.count) }
        }
        return status == REDIS_OK
    }

    /// The RESP encoding of one command (an array of bulk strings), binary-safe.
    static func formatted(_ arguments: [[UInt8]]) -> [UInt8] {
        var size = 1 + decimalDigits(arguments.count) + 2
        for argument in arguments { size += 1 + decimalDigits(argument.count) + 2 + argument.count + 2 }
        var command: [UInt8] = []
        command.reserveCapacity(size)
        command.append(UInt8(ascii: "*"))
        appendDecimal(arguments.count, to: &command)
        appendLineEnd(to: &command)
        for argument in arguments {
            command.append(UInt8(ascii: "$"))
            appendDecimal(argument.count, to: &command)
            appendLineEnd(to: &command)
            command.append(contentsOf: argument)
            appendLineEnd(to: &command)
        }
        return command
    }

    /// Appends the RESP encoding of one command given as strings (their UTF-8 bytes, as ``formatted(_:)`` encodes
    /// `Array(argument.utf8)`), without an array per argument.
    static func format(_ arguments: [String], into command: inout [UInt8]) {
        command.append(UInt8(ascii: "*"))
        appendDecimal(arguments.count, to: &command)
        appendLineEnd(to: &command)
        for argument in arguments {
            command.append(UInt8(ascii: "$"))
            appendDecimal(argument.utf8.count, to: &command)
            appendLineEnd(to: &command)
            command.append(contentsOf: argument.utf8)
            appendLineEnd(to: &command)
        }
    }

    /// The bytes ``format(_:into:)`` appends for `arguments`.
    static func formattedSize(_ arguments: [String]) -> Int {
        var size = 1 + decimalDigits(arguments.count) + 2
        for argument in arguments {
            let length = argument.utf8.count
            size += 1 + decimalDigits(length) + 2 + length + 2
        }
        return size
    }

    static func decimalDigits(_ value: Int) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return digits
    }

    /// Appends a non-negative integer in decimal ASCII.
    static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        // Digits written in place from the last one: no slice (reversing `bytes[start...]` copied it).
        var index = bytes.count + decimalDigits(value)
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: index - bytes.count))
        var rest = value
        repeat {
            index -= 1
            bytes[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        } while rest > 0
    }

    /// Appends CR LF.
    static func appendLineEnd(to bytes: inout [UInt8]) {
        bytes.append(0x0D)
        bytes.append(0x0A)
    }

    /// Flushes pending output (if any), then reads the next reply.
    ///
    /// The outer failure is a transport error (the context must be dropped); the inner result is the reply, with
    /// an error reply as a `.server` failure.
    func readReply(configuration: RedisConfiguration) -> Result<Result<RedisValue, RedisError>, RedisError> {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(ctx, &raw) == REDIS_OK, let raw else {
            return .failure(transportError(configuration: configuration))
        }
        // Copy everything out of the reply before freeing it.
        let result = Self.convert(raw.assumingMemoryBound(to: redisReply.self))
        freeReplyObject(raw)
        return .success(result)
    }

    /// The context's error as a retriable `RedisError`; call right after the failed hiredis call (reads `errno`).
    private func transportError(configuration: RedisConfiguration) -> RedisError {
        let savedErrno = errno
        let kind = ctx.pointee.err
        let message = Self.errorString(ctx)
        switch kind {
        case REDIS_ERR_IO where savedErrno == EAGAIN || savedErrno == EWOULDBLOCK:
            return RedisError(
                code: .timeout, message: "no reply within \(configuration.commandTimeout)", isRetriable: true)
        case REDIS_ERR_IO, REDIS_ERR_EOF:
            return RedisError(code: .connectionLost, message: "connection lost: \(message)", isRetriable: true)
        case REDIS_ERR_PROTOCOL:
            return RedisError(code: .protocolError, message: "protocol error: \(message)", isRetriable: true)
        default:
            return RedisError(code: .connectionLost, message: "hiredis error \(kind): \(message)", isRetriable: true)
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
            return .failure(
                RedisError(code: .protocolError, message: "unknown reply type \(r.type)", isRetriable: false))
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
