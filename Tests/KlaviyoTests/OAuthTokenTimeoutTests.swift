import HTTPClient
import Klaviyo
import Logging
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A token call honours its own timeout through the real HTTP client: the token manager bounds it by its lock's
/// lifetime, so a slow answer can never outlive the refresh lock.
@Suite("OAuth token call timeout", .timeLimit(.minutes(1)))
struct OAuthTokenTimeoutTests {
    /// A listening socket nobody accepts from: the kernel completes the handshake, the request is sent, no answer
    /// ever comes.
    final class SilentListener {
        let descriptor: Int32
        let port: Int

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            descriptor = fd
            port = Int(UInt16(bigEndian: address.sin_port))
            try #require(fd >= 0 && bound == 0 && listen(fd, 16) == 0)
        }

        deinit { close(descriptor) }
    }

    @Test func aRefreshWithATimeoutFailsWhenItRunsOutNotAtTheClientsDefault() async throws {
        let listener = try SilentListener()
        // The client's own timeout is far beyond the test's time limit: only the call's timeout can end it.
        let http = HTTPClient(
            configuration: HTTPClientConfiguration(requestTimeout: .seconds(600)), logger: Logger(label: "test"))
        defer { Task { await http.shutdown() } }
        let oauth = KlaviyoOAuthClient(
            baseURL: "http://127.0.0.1:\(listener.port)", clientID: "client_1", clientSecret: "secret",
            transport: http, userAgent: "klaviyo-relay/test")
        let error = await #expect(throws: KlaviyoOAuthError.self) {
            _ = try await oauth.refresh(refreshToken: "rt_1", timeout: .milliseconds(300))
        }
        #expect(error?.code == "transport")
        let text = error.map { "\($0)" } ?? ""
        #expect(!text.contains("rt_1"), "no secret in the error: \(text)")
    }
}
