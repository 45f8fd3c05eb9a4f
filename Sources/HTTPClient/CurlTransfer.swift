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
    /// last block (the final response, after any 1xx) is kept. Name and value are made from the bytes directly
    /// (no string for the whole line).
    func appendHeaderLine(_ bytes: UnsafeRawBufferPointer) {
        // Trim CR/LF as bytes: in Swift "\r\n" is a single Character.
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x0D || bytes[end - 1] == 0x0A { end -= 1 }
        if end == 0 { return }
        if bytes.starts(with: "HTTP/".utf8) {
            headers = HTTPHeaders()
            headers.reserveCapacity(16)
            return
        }
        guard let colon = bytes[..<end].firstIndex(of: UInt8(ascii: ":")) else { return }
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == 0x09 }
        func trimmed(_ range: Range<Int>) -> String {
            var lower = range.lowerBound
            var upper = range.upperBound
            while lower < upper, isSpace(bytes[lower]) { lower += 1 }
            while upper > lower, isSpace(bytes[upper - 1]) { upper -= 1 }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[lower..<upper]), as: UTF8.self)
        }
        headers.add(name: trimmed(0..<colon), value: trimmed((colon + 1)..<end))
    }

    /// Moves the collected response out.
    func takeResponse(status: Int) -> HTTPResponse {
        defer { body = [] }
        return HTTPResponse(status: status, headers: headers, body: body)
    }
}
