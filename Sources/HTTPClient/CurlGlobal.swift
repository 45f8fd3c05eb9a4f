import CCurl

/// `curl_global_init` exactly once per process (Swift `static let` initialisation is thread-safe).
enum CurlGlobal {
    static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK
}
