import CCurl
public import Logging

/// An HTTP/1.1 and HTTP/2 client over libcurl's multi interface.
///
/// One dedicated thread drives all transfers, so many requests are in flight at once without blocking the
/// cooperative thread pool; connections are reused through the multi handle's cache. A response with any status
/// is returned as a response; only transport failures throw ``HTTPClientError``.
public final class HTTPClient: Sendable {
    /// The configuration the client was created with.
    public let configuration: HTTPClientConfiguration
    private let loop: CurlEventLoop?
    private let logger: Logger

    /// Creates a client and starts its loop thread.
    ///
    /// If libcurl cannot be initialised (out of memory), every `execute` throws `.transport`.
    public init(configuration: HTTPClientConfiguration = .init(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.loop = CurlEventLoop(configuration: configuration, logger: logger)
        loop?.start()
        if loop == nil { logger.error("libcurl could not be initialised") }
    }

    deinit {
        loop?.requestShutdown()
    }

    /// Sends a request and returns the response, whatever its status.
    ///
    /// - Throws: ``HTTPClientError``; `.cancelled` when the calling task is cancelled (the transfer is aborted).
    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let loop, let easy = loop.checkoutEasy() else {
            throw HTTPClientError(
                code: .transport, message: "libcurl is not available", isRetriable: false,
                requestMayHaveBeenSent: false)
        }
        let transfer = CurlTransfer(easy: easy, maxBodyBytes: configuration.maxResponseBodyBytes)
        do {
            try configure(transfer, for: request)
        } catch {
            loop.recycle(easy)
            throw error
        }
        // Unsafe (no checking canary, one allocation less per call): the loop resumes a transfer exactly once, when
        // it finishes or fails, and a refused submit resumes it here.
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<HTTPResponse, any Error>) in
                transfer.continuation = continuation
                if !loop.submit(transfer) {
                    transfer.continuation = nil
                    loop.recycle(easy)
                    continuation.resume(throwing: HTTPClientError.shutdown(sent: false))
                }
            }
        } onCancel: {
            loop.cancel(transfer)
        }
    }

    /// Fails requests in flight with `.shutdown`, closes all connections and stops the loop thread.
    /// Later calls throw `.shutdown`.
    public func shutdown() async {
        await loop?.shutdown()
    }

    // MARK: - Configuring an easy handle (on the calling task, before the loop owns it)

    private func configure(_ transfer: CurlTransfer, for request: HTTPRequest) throws(HTTPClientError) {
        let handle = transfer.easy.handle
        var firstFailure = CURLE_OK
        func check(_ code: CURLcode) {
            if firstFailure == CURLE_OK { firstFailure = code }
        }
        for (name, value) in request.headers where Self.hasLineBreak(name) || Self.hasLineBreak(value) {
            throw HTTPClientError(
                code: .transport, message: "header \(name) contains a line break", isRetriable: false,
                requestMayHaveBeenSent: false)
        }

        check(ccurl_setopt_string(handle, CURLOPT_URL, request.url))
        check(ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, transfer.easy.errorBuffer))
        check(ccurl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
        check(ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        check(ccurl_setopt_long(handle, CURLOPT_TCP_NODELAY, 1))
        check(ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
        check(ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(configuration.connectTimeout)))
        check(
            ccurl_setopt_long(
                handle, CURLOPT_TIMEOUT_MS, Self.milliseconds(request.timeout ?? configuration.requestTimeout)))
        check(ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, configuration.verifyTLS ? 1 : 0))
        check(ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, configuration.verifyTLS ? 2 : 0))
        if let caBundlePath = configuration.caBundlePath {
            check(ccurl_setopt_string(handle, CURLOPT_CAINFO, caBundlePath))
        }
        if !request.headers.contains(name: "User-Agent") {
            check(ccurl_setopt_string(handle, CURLOPT_USERAGENT, configuration.userAgent))
        }
        check(ccurl_setopt_off_t(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(configuration.maxResponseBodyBytes)))

        // C callbacks only buffer into the transfer, reached through an unretained pointer: the loop keeps the
        // transfer alive while libcurl may call them.
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        check(
            ccurl_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
                let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                return transfer.appendBody(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
            })
        check(ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, context))
        check(
            ccurl_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION) { data, size, count, context in
                let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                transfer.appendHeaderLine(UnsafeRawBufferPointer(start: data, count: length))
                return length
            })
        check(ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, context))

        // Method and body.
        let sendsBody: Bool
        switch request.method {
        case .HEAD:
            check(ccurl_setopt_long(handle, CURLOPT_NOBODY, 1))
            sendsBody = false
        case .GET, .DELETE:
            sendsBody = request.body != nil
        case .POST, .PUT, .PATCH:
            sendsBody = true
        }
        if sendsBody {
            let body = request.body ?? []
            check(ccurl_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
            // libcurl copies the bytes now (it only reads them: no mutable copy of the body is needed); a 1-byte
            // buffer gives an empty body a valid pointer.
            let bytes = body.isEmpty ? [0] : body
            bytes.withUnsafeBytes { buffer in
                let pointer = UnsafeMutableRawPointer(mutating: buffer.baseAddress)
                check(ccurl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, pointer))
            }
        }
        if request.method != .POST && request.method != .HEAD && (sendsBody || request.method != .GET) {
            check(ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method.rawValue))
        }

        var lines: [String] = []
        lines.reserveCapacity(request.headers.count + 2)
        for (name, value) in request.headers {
            // "Name;" is libcurl's syntax for a header with an empty value ("Name:" would remove it).
            lines.append(value.isEmpty ? "\(name);" : "\(name): \(value)")
        }
        if !request.headers.contains(name: "Expect") { lines.append("Expect:") }
        if sendsBody && !request.headers.contains(name: "Content-Type") {
            lines.append("Content-Type:")  // no implicit application/x-www-form-urlencoded
        }
        check(transfer.easy.setHeaders(lines))

        if firstFailure != CURLE_OK {
            throw HTTPClientError(
                code: .transport,
                message: "cannot configure the request: \(String(cString: curl_easy_strerror(firstFailure)))",
                curlCode: Int(firstFailure.rawValue), isRetriable: false, requestMayHaveBeenSent: false)
        }
    }

    private static func hasLineBreak(_ text: String) -> Bool {
        text.utf8.contains { $0 == 0x0D || $0 == 0x0A }
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}
