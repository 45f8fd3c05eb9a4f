import CCurl

/// One libcurl easy handle plus the header list it points to; both freed in `deinit`.
///
/// Reused through a small free list after `curl_easy_reset` to save allocations.
final class CurlEasy: @unchecked Sendable {
    // @unchecked Sendable is safe: a handle is owned by one party at a time (the free list under its mutex, the
    // submitting task while it configures, then the loop thread until the transfer finishes); ownership moves
    // only through mutex-protected hand-offs, so the non-thread-safe easy handle is never used concurrently.
    let handle: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    /// libcurl writes a detailed message here on failure (CURLOPT_ERRORBUFFER).
    let errorBuffer: UnsafeMutablePointer<CChar>

    init?() {
        guard let handle = curl_easy_init() else { return nil }
        self.handle = handle
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        if let headerList { curl_slist_free_all(headerList) }
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    /// The message libcurl left in the error buffer, if any.
    var errorMessage: String? {
        let text = String(cString: errorBuffer)
        return text.isEmpty ? nil : text
    }

    /// Replaces the request header list (kept alive until the next `setHeaders` / `reset` / `deinit`).
    func setHeaders(_ lines: [String]) -> CURLcode {
        if let headerList { curl_slist_free_all(headerList) }
        headerList = nil
        var list: UnsafeMutablePointer<curl_slist>?
        for line in lines {
            // withCString: a native string is already NUL-terminated, so no C copy is made (passing the String
            // itself converted it through an allocated array).
            guard let appended = line.withCString({ curl_slist_append(list, $0) }) else {
                if let list { curl_slist_free_all(list) }
                return CURLE_OUT_OF_MEMORY
            }
            list = appended
        }
        headerList = list
        return ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, list)
    }

    /// Clears every option and the header list; connections stay in the multi handle's cache.
    func reset() {
        curl_easy_reset(handle)
        errorBuffer[0] = 0
        if let headerList { curl_slist_free_all(headerList) }
        headerList = nil
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
