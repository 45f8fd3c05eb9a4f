import CCurl
import Foundation
import Logging
import Synchronization

/// Drives one `CURLM` on one dedicated thread: many transfers in flight, connections reused from the multi
/// handle's cache.
///
/// Other threads only touch the mutex-protected submission state and call `curl_multi_wakeup`; the loop thread
/// owns the multi handle, the active transfers and their callbacks, and resumes continuations without blocking.
final class CurlEventLoop: Sendable {
    private struct State {
        var submitted: [CurlTransfer] = []
        var cancelled: [CurlTransfer] = []
        var isShutdown = false
        /// A wakeup was sent since the loop last took the submissions: later submitters need not send another
        /// (each one is a write to curl's socket pair and a context switch).
        var wakeupSent = false
        var hasExited = false
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private static let freeListLimit = 32

    private let multi: CurlMulti
    private let state = Mutex(State())
    private let freeList = Mutex<[CurlEasy]>([])
    private let logger: Logger

    init?(configuration: HTTPClientConfiguration, logger: Logger) {
        guard CurlGlobal.initialized,
            let multi = CurlMulti(
                maxConnectionsPerHost: configuration.maxConnectionsPerHost,
                maxTotalConnections: configuration.maxTotalConnections)
        else { return nil }
        self.multi = multi
        self.logger = logger
    }

    /// Starts the loop thread. The thread keeps `self` alive until it exits.
    func start() {
        let thread = Thread {
            // Named from inside (Linux names only the calling thread) and within 15 bytes, as `top -H` shows it.
            Thread.current.name = "relay-http"
            self.run()
        }
        thread.start()
    }

    // MARK: - Any thread

    /// An easy handle from the free list, or a new one.
    func checkoutEasy() -> CurlEasy? {
        if let easy = freeList.withLock({ $0.popLast() }) { return easy }
        return CurlEasy()
    }

    /// Returns a reset easy handle to the free list (or frees it).
    func recycle(_ easy: CurlEasy) {
        easy.reset()
        let spare: CurlEasy? = freeList.withLock { list in
            guard list.count < Self.freeListLimit else { return easy }
            list.append(easy)
            return nil
        }
        _ = spare  // freed here, outside the lock, when it goes out of scope
    }

    /// Hands a configured transfer (whose continuation is set) to the loop; `false` after shutdown.
    func submit(_ transfer: CurlTransfer) -> Bool {
        let (accepted, wake) = state.withLock { state -> (Bool, Bool) in
            if state.isShutdown { return (false, false) }
            state.submitted.append(transfer)
            defer { state.wakeupSent = true }
            return (true, !state.wakeupSent)
        }
        if wake { multi.wakeup() }
        return accepted
    }

    /// Asks the loop to abort a transfer (if it is still in flight) and fail it with `.cancelled`.
    func cancel(_ transfer: CurlTransfer) {
        transfer.cancelled.store(true, ordering: .sequentiallyConsistent)
        state.withLock { $0.cancelled.append(transfer) }
        multi.wakeup()
    }

    /// Asks the loop to fail every transfer with `.shutdown` and exit, without waiting.
    func requestShutdown() {
        state.withLock { $0.isShutdown = true }
        multi.wakeup()
    }

    /// Shuts down and waits until the loop thread has exited.
    func shutdown() async {
        requestShutdown()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = state.withLock { state in
                if !state.hasExited { state.exitWaiters.append(continuation) }
                return state.hasExited
            }
            if exited { continuation.resume() }
        }
    }

    // MARK: - Loop thread

    private func run() {
        var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
        var running: Int32 = 0
        while true {
            let (submitted, cancelled, isShutdown) = state.withLock { state in
                defer {
                    state.submitted = []
                    state.cancelled = []
                    state.wakeupSent = false
                }
                return (state.submitted, state.cancelled, state.isShutdown)
            }
            if isShutdown {
                for transfer in active.values {
                    _ = curl_multi_remove_handle(multi.handle, transfer.easy.handle)
                    finish(transfer, .failure(.shutdown(sent: transfer.startedSending)))
                }
                for transfer in submitted { finish(transfer, .failure(.shutdown(sent: false))) }
                break
            }
            for transfer in submitted {
                if transfer.cancelled.load(ordering: .sequentiallyConsistent) {
                    finish(transfer, .failure(.cancelled(sent: false)))
                    continue
                }
                let code = curl_multi_add_handle(multi.handle, transfer.easy.handle)
                if code == CURLM_OK {
                    active[transfer.key] = transfer
                } else {
                    let message = String(cString: curl_multi_strerror(code))
                    finish(
                        transfer,
                        .failure(
                            HTTPClientError(
                                code: .transport, message: "curl_multi_add_handle failed: \(message)",
                                isRetriable: false, requestMayHaveBeenSent: false)))
                }
            }
            for transfer in cancelled {
                // The key is the easy handle, which may already serve another transfer: compare identities.
                guard let current = active[transfer.key], current === transfer else { continue }
                active[transfer.key] = nil
                _ = curl_multi_remove_handle(multi.handle, transfer.easy.handle)
                finish(transfer, .failure(.cancelled(sent: transfer.startedSending)))
            }

            _ = curl_multi_perform(multi.handle, &running)

            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi.handle, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
                let code = message.pointee.data.result  // copied before the message is invalidated
                guard let transfer = active.removeValue(forKey: easy) else { continue }
                _ = curl_multi_remove_handle(multi.handle, easy)
                finish(transfer, Self.outcome(of: transfer, code: code))
            }

            _ = curl_multi_poll(multi.handle, nil, 0, 1000, nil)
        }
        let waiters = state.withLock { state in
            state.hasExited = true
            defer { state.exitWaiters = [] }
            return state.exitWaiters
        }
        for waiter in waiters { waiter.resume() }
        logger.debug("HTTP client loop exited")
    }

    private func finish(_ transfer: CurlTransfer, _ result: Result<HTTPResponse, HTTPClientError>) {
        let continuation = transfer.continuation
        transfer.continuation = nil
        recycle(transfer.easy)
        if case .failure(let error) = result, error.code != .cancelled, error.code != .shutdown {
            logger.debug("HTTP transfer failed", metadata: ["http.error": "\(error)"])
        }
        switch result {
        case .success(let response): continuation?.resume(returning: response)
        case .failure(let error): continuation?.resume(throwing: error)
        }
    }

    /// The response, or the error a CURLcode stands for. Runs before the easy handle is reset.
    static func outcome(of transfer: CurlTransfer, code: CURLcode) -> Result<HTTPResponse, HTTPClientError> {
        let easy = transfer.easy
        if code == CURLE_OK {
            return .success(transfer.takeResponse(status: easy.long(CURLINFO_RESPONSE_CODE)))
        }
        let detail = easy.errorMessage ?? String(cString: curl_easy_strerror(code))
        let curlCode = Int(code.rawValue)
        func error(_ kind: HTTPClientError.Code, retriable: Bool, sent: Bool) -> Result<HTTPResponse, HTTPClientError> {
            .failure(
                HTTPClientError(
                    code: kind, message: detail, curlCode: curlCode, isRetriable: retriable,
                    requestMayHaveBeenSent: sent))
        }
        if transfer.exceededLimit || code == CURLE_FILESIZE_EXCEEDED {
            return .failure(
                HTTPClientError(
                    code: .responseTooLarge,
                    message: "the response body exceeds \(transfer.maxBodyBytes) bytes", curlCode: curlCode,
                    isRetriable: false, requestMayHaveBeenSent: true))
        }
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT:
            return error(.couldNotConnect, retriable: true, sent: false)
        case CURLE_OPERATION_TIMEDOUT:
            // Nothing was sent unless the transfer got past connecting (TCP and TLS).
            if easy.double(CURLINFO_PRETRANSFER_TIME) == 0 {
                return error(.connectTimeout, retriable: true, sent: false)
            }
            return error(.timeout, retriable: true, sent: true)
        case CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2,
            CURLE_HTTP2_STREAM:
            return error(.connectionReset, retriable: true, sent: true)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
            CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR,
            CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT, CURLE_USE_SSL_FAILED:
            return error(.tls, retriable: false, sent: false)
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return error(.invalidURL, retriable: false, sent: false)
        default:
            return error(.transport, retriable: false, sent: true)
        }
    }
}
