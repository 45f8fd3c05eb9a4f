import CCurl

/// One libcurl easy handle plus the buffer of its header list; both freed in `deinit`.
///
/// Reused through a small free list after `curl_easy_reset` to save allocations.
final class CurlEasy: @unchecked Sendable {
    // @unchecked Sendable is safe: a handle is owned by one party at a time (the free list under its mutex, the
    // submitting task while it configures, then the loop thread until the transfer finishes); ownership moves
    // only through mutex-protected hand-offs, so the non-thread-safe easy handle is never used concurrently.
    let handle: UnsafeMutableRawPointer
    /// The header list's nodes and lines (``setHeaders(_:)``), kept across requests.
    private var headerBuffer: UnsafeMutableRawPointer?
    private var headerCapacity = 0
    /// libcurl writes a detailed message here on failure (CURLOPT_ERRORBUFFER).
    let errorBuffer: UnsafeMutablePointer<CChar>

    init?() {
        guard let handle = curl_easy_init() else { return nil }
        self.handle = handle
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        curl_easy_cleanup(handle)
        headerBuffer?.deallocate()
        errorBuffer.deallocate()
    }

    /// The message libcurl left in the error buffer, if any.
    var errorMessage: String? {
        let text = String(cString: errorBuffer)
        return text.isEmpty ? nil : text
    }

    /// Replaces the request header list (valid until the next `setHeaders` or `deinit`).
    ///
    /// The list's nodes and lines are laid out in one buffer the handle keeps and reuses: libcurl only reads a
    /// header list, and `curl_slist_append` would allocate twice per line (a node and a copy of the line).
    func setHeaders(_ lines: [String]) -> CURLcode {
        let nodeBytes = MemoryLayout<curl_slist>.stride * lines.count
        var needed = nodeBytes
        for line in lines { needed += line.utf8.count + 1 }
        if needed > headerCapacity {
            headerBuffer?.deallocate()
            headerCapacity = max(needed, 512)
            headerBuffer = .allocate(byteCount: headerCapacity, alignment: MemoryLayout<curl_slist>.alignment)
        }
        guard let buffer = headerBuffer, !lines.isEmpty else {
            return ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, nil)
        }
        let nodes = buffer.bindMemory(to: curl_slist.self, capacity: lines.count)
        var textOffset = nodeBytes
        for (index, line) in lines.enumerated() {
            var line = line
            let text = buffer + textOffset
            line.withUTF8 { utf8 in
                if let base = utf8.baseAddress { text.copyMemory(from: base, byteCount: utf8.count) }
                text.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
                textOffset += utf8.count + 1
            }
            let next = index + 1 < lines.count ? nodes + index + 1 : nil
            (nodes + index).initialize(
                to: curl_slist(data: text.assumingMemoryBound(to: CChar.self), next: next))
        }
        return ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, nodes)
    }

    /// Clears every option (the header list's buffer is kept for the next request); connections stay in the
    /// multi handle's cache.
    func reset() {
        curl_easy_reset(handle)
        errorBuffer[0] = 0
    }

    func long(_ info: CURLINFO) -> Int {
        var value = 0
        _ = ccurl_getinfo_long(handle, info, &value)
        return value
    }

    func double(_ info: CURLINFO) -> Double {
        var value = 0.0
        _ = ccurl_getinfo_double(handle, info, &value)
        return value
    }
}
