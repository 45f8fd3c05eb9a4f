import CCurl
import Synchronization

/// One request in flight: its easy handle, the buffers the C callbacks fill, and the continuation to resume.
final class CurlTransfer: @unchecked Sendable {
    // @unchecked Sendable is safe: the transfer is configured by the submitting task before it is handed to the
    // loop thread through a mutex; from then on `body`, `headers`, `exceededLimit` and `continuation` are only
    // touched on the loop thread (libcurl calls the callbacks from curl_multi_perform on that thread). The only
    // state shared with other threads is `cancelled`, an atomic.
    let easy: CurlEasy
    let maxBodyBytes: Int
    var continuation: UnsafeContinuation<HTTPResponse, any Error>?
    private(set) var body: [UInt8] = []
    private(set) var headers = HTTPHeaders()
    private(set) var exceededLimit = false
    let cancelled = Atomic<Bool>(false)

    init(easy: CurlEasy, maxBodyBytes: Int) {
        self.easy = easy
        self.maxBodyBytes = maxBodyBytes
    }

    var key: UnsafeMutableRawPointer { UnsafeMutableRawPointer(easy.handle) }

    /// Whether the transfer got past connecting (TCP and TLS), so request bytes may have been sent.
    /// Read on the loop thread before the handle is reset.
    var startedSending: Bool { easy.double(CURLINFO_PRETRANSFER_TIME) > 0 }

    /// Write callback body: append, or refuse (aborting the transfer) past the limit.
    func appendBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if body.count + bytes.count > maxBodyBytes {
            exceededLimit = true
            return false
        }
        body.append(contentsOf: bytes)
        return true
    }

    /// Header callback body: one raw header line (with CRLF). A status line starts a new block, so only the
    /// last block (the final response, after any 1xx) is kept.
    func appendHeaderLine(_ bytes: UnsafeRawBufferPointer) {
        // Trim CR/LF as bytes: in Swift "\r\n" is a single Character.
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x0D || bytes[end - 1] == 0x0A { end -= 1 }
        let line = Substring(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<end]), as: UTF8.self))
        if line.hasPrefix("HTTP/") {
            headers = HTTPHeaders()
            return
        }
        if line.isEmpty { return }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].trimmingSpaces
        let value = line[line.index(after: colon)...].trimmingSpaces
        headers.add(name: String(name), value: String(value))
    }

    /// Moves the collected response out.
    func takeResponse(status: Int) -> HTTPResponse {
        defer { body = [] }
        return HTTPResponse(status: status, headers: headers, body: body)
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" { result = result.dropLast() }
        return result
    }
}
