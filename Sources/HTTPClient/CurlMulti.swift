import CCurl

/// The libcurl multi handle, freed in `deinit`.
final class CurlMulti: @unchecked Sendable {
    // @unchecked Sendable is safe: every call but `wakeup()` is made on the loop thread only;
    // curl_multi_wakeup is documented as callable from any thread. The owner keeps this object alive until the
    // loop thread has exited, so wakeup never races with cleanup.
    let handle: UnsafeMutableRawPointer

    init?(maxConnectionsPerHost: Int, maxTotalConnections: Int) {
        guard let handle = curl_multi_init() else { return nil }
        self.handle = handle
        _ = ccurl_multi_setopt_long(handle, CURLMOPT_MAX_HOST_CONNECTIONS, maxConnectionsPerHost)
        _ = ccurl_multi_setopt_long(handle, CURLMOPT_MAX_TOTAL_CONNECTIONS, maxTotalConnections)
        _ = ccurl_multi_setopt_long(handle, CURLMOPT_MAXCONNECTS, maxTotalConnections)
    }

    deinit {
        curl_multi_cleanup(handle)
    }

    /// Makes a sleeping (or the next) `curl_multi_poll` return at once. Thread-safe.
    func wakeup() {
        _ = curl_multi_wakeup(handle)
    }
}
